"""Plain per-seed state updates in the style of CORL's single-file algorithms, for speed only.

The yardsticks for the state baselines' updates (``benchmarks/test_bench_state_vs_reference.py``):
BC, TD3+BC, SAC and CQL written as a single-file offline RL script writes them, one agent per
seed: ``nn.Sequential`` MLPs, *separate* twin critics (one module and one optimiser each),
PyTorch's default (non-fused) Adam, ``F.mse_loss``, sequential optimiser steps (alpha, actor,
critic), per-parameter soft target updates and a ``.item()`` per logged metric at every update.
Sizes, learning rates and per-algorithm choices come from VORB's registered configs (passed in),
so the two sides cannot drift apart; where VORB's function differs from CORL's (the
tanh-rescaled log std) the reference computes VORB's, so the speed comparison is of the same
function. TD3+BC's actor reads the config's ``actor_critic`` as VORB's does: the first critic
for ``td3bc-state`` (CORL's ``critic_1(state, pi)``). ``benchmarks/corl_parity.py`` trains BC
and TD3+BC from here through VORB's data and evaluation (the state track's parity check).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from baselines.bc import BCStateConfig
from baselines.cql_curl import CQLStateConfig
from baselines.sac_curl import SACStateConfig
from baselines.td3bc import TD3BCStateConfig
from benchmark.data.sampler import TransitionBatch


def mlp(in_dim: int, hidden_dim: int, out_dim: int, depth: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
        in_dim = hidden_dim
    return nn.Sequential(*layers, nn.Linear(in_dim, out_dim))


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    for target_param, source_param in zip(target.parameters(), source.parameters(), strict=True):
        target_param.data.copy_((1 - tau) * target_param.data + tau * source_param.data)


class Critic(nn.Module):
    """One Q function on (state, action)."""

    def __init__(self, state_dim: int, action_dim: int, hidden_dim: int, depth: int = 2) -> None:
        super().__init__()
        self.net = mlp(state_dim + action_dim, hidden_dim, 1, depth)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([state, action], dim=-1))


class TanhGaussianActor(nn.Module):
    """SAC's actor with ``torch.distributions`` (as CORL's SAC-N and CQL): a tanh-squashed
    Gaussian, log std squashed into [lo, hi] (VORB's parameterisation)."""

    def __init__(
        self, state_dim: int, action_dim: int, hidden_dim: int, depth: int, lo: float, hi: float
    ) -> None:
        super().__init__()
        self.net = mlp(state_dim, hidden_dim, 2 * action_dim, depth)
        self.lo, self.hi = lo, hi

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.net(state).chunk(2, dim=-1)
        log_std = self.lo + 0.5 * (self.hi - self.lo) * (torch.tanh(log_std) + 1)
        dist = Normal(mu, log_std.exp())
        pre_tanh = dist.rsample()
        action = torch.tanh(pre_tanh)
        log_prob = dist.log_prob(pre_tanh).sum(-1, keepdim=True)
        log_prob = log_prob - torch.log(1 - action.pow(2) + 1e-6).sum(-1, keepdim=True)
        return action, log_prob


class ReferenceBC:
    """CORL's ``any_percent_bc.py``: an MLP with a tanh output, MSE to the dataset action."""

    def __init__(self, config: BCStateConfig, state_dim: int, action_dim: int) -> None:
        self.actor = nn.Sequential(mlp(state_dim, config.hidden_dim, action_dim), nn.Tanh())
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.lr)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        actor_loss = F.mse_loss(self.actor(batch.obs), batch.action)
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        return {"actor_loss": actor_loss.item()}


class ReferenceTD3BC:
    """CORL's ``td3_bc.py``: target policy smoothing, actor and targets every 2nd update,
    ``lambda = alpha / mean|Q|``, the actor on ``critic_1`` (or on min(Q1, Q2) where the
    config's ``actor_critic`` says ``min``)."""

    def __init__(self, config: TD3BCStateConfig, state_dim: int, action_dim: int) -> None:
        cfg = self.config = config
        self.actor = nn.Sequential(mlp(state_dim, cfg.hidden_dim, action_dim), nn.Tanh())
        self.critic_1 = Critic(state_dim, action_dim, cfg.hidden_dim)
        self.critic_2 = Critic(state_dim, action_dim, cfg.hidden_dim)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_1_target = copy.deepcopy(self.critic_1)
        self.critic_2_target = copy.deepcopy(self.critic_2)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.lr)
        self.critic_1_optimizer = torch.optim.Adam(self.critic_1.parameters(), lr=cfg.lr)
        self.critic_2_optimizer = torch.optim.Adam(self.critic_2.parameters(), lr=cfg.lr)
        self.total_it = 0

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg, log_dict = self.config, {}
        self.total_it += 1
        state, action = batch.obs, batch.action
        with torch.no_grad():
            noise = (torch.randn_like(action) * cfg.stddev_init).clamp(
                -cfg.stddev_clip, cfg.stddev_clip
            )
            next_action = (self.actor_target(batch.next_obs) + noise).clamp(-1, 1)
            target_q = torch.min(
                self.critic_1_target(batch.next_obs, next_action),
                self.critic_2_target(batch.next_obs, next_action),
            )
            target_q = batch.reward + batch.not_done * cfg.discount * target_q
        current_q1, current_q2 = self.critic_1(state, action), self.critic_2(state, action)
        critic_loss = F.mse_loss(current_q1, target_q) + F.mse_loss(current_q2, target_q)
        log_dict["critic_loss"] = critic_loss.item()
        self.critic_1_optimizer.zero_grad()
        self.critic_2_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_1_optimizer.step()
        self.critic_2_optimizer.step()
        if self.total_it % cfg.actor_update_freq == 0:
            pi = self.actor(state)
            q = self.critic_1(state, pi)
            if cfg.actor_critic == "min":
                q = torch.min(q, self.critic_2(state, pi))
            lmbda = cfg.bc_alpha / q.abs().mean().detach()
            actor_loss = -lmbda * q.mean() + F.mse_loss(pi, action)
            log_dict["actor_loss"] = actor_loss.item()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            self.actor_optimizer.step()
            soft_update(self.critic_1_target, self.critic_1, cfg.critic_tau)
            soft_update(self.critic_2_target, self.critic_2, cfg.critic_tau)
            soft_update(self.actor_target, self.actor, cfg.critic_tau)
        return log_dict


class ReferenceSAC:
    """SAC with a learned temperature and twin critics, CORL's update order (alpha, actor,
    critic, targets); ``backup_entropy`` and the Q depth from the config (CQL reuses it)."""

    def __init__(self, config: SACStateConfig, state_dim: int, action_dim: int) -> None:
        cfg = self.config = config
        depth = cfg.hidden_depth
        self.actor = TanhGaussianActor(
            state_dim, action_dim, cfg.hidden_dim, depth, cfg.log_std_min, cfg.log_std_max
        )
        self.critic_1 = Critic(state_dim, action_dim, cfg.hidden_dim, depth)
        self.critic_2 = Critic(state_dim, action_dim, cfg.hidden_dim, depth)
        self.target_critic_1 = copy.deepcopy(self.critic_1)
        self.target_critic_2 = copy.deepcopy(self.critic_2)
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), requires_grad=True)
        self.target_entropy = -float(action_dim)
        betas = (cfg.beta1, 0.999)
        self.actor_optimizer = torch.optim.Adam(
            self.actor.parameters(), lr=cfg.actor_lr, betas=betas
        )
        critics = [*self.critic_1.parameters(), *self.critic_2.parameters()]
        self.critic_optimizer = torch.optim.Adam(critics, lr=cfg.critic_lr, betas=betas)
        self.alpha_optimizer = torch.optim.Adam(
            [self.log_alpha], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999)
        )

    def q(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.critic_1(state, action), self.critic_2(state, action)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        cfg, log_dict = self.config, {}
        state, action = batch.obs, batch.action
        pi, log_pi = self.actor(state)
        alpha_loss = (self.log_alpha.exp() * (-log_pi - self.target_entropy).detach()).mean()
        log_dict["alpha_loss"] = alpha_loss.item()
        self.alpha_optimizer.zero_grad()
        alpha_loss.backward()
        self.alpha_optimizer.step()
        alpha = self.log_alpha.exp().detach()
        log_dict["alpha"] = alpha.item()

        actor_loss = (alpha * log_pi - torch.min(*self.q(state, pi))).mean()
        log_dict["actor_loss"] = actor_loss.item()
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()

        with torch.no_grad():
            next_action, next_log_pi = self.actor(batch.next_obs)
            target_q = torch.min(
                self.target_critic_1(batch.next_obs, next_action),
                self.target_critic_2(batch.next_obs, next_action),
            )
            if cfg.backup_entropy:
                target_q = target_q - alpha * next_log_pi
            target_q = batch.reward + batch.not_done * cfg.discount * target_q
        q1, q2 = self.q(state, action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        critic_loss = critic_loss + self.penalty(batch, q1, q2, log_dict)
        log_dict["critic_loss"] = critic_loss.item()
        log_dict["q1"] = q1.mean().item()
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        soft_update(self.target_critic_1, self.critic_1, cfg.critic_tau)
        soft_update(self.target_critic_2, self.critic_2, cfg.critic_tau)
        return log_dict

    def penalty(
        self, batch: TransitionBatch, q1: torch.Tensor, q2: torch.Tensor, log_dict: dict
    ) -> torch.Tensor:
        return torch.zeros(())


class ReferenceCQL(ReferenceSAC):
    """CORL's ``cql.py`` (no Lagrange, no clipping of the gap): SAC plus, per critic,
    ``cql_alpha * (T * logsumexp(Q(s, a_j) - log mu(a_j)) / T - Q(s, a_data))`` over n uniform,
    n current-policy and n next-policy actions per state (importance-sampled)."""

    config: CQLStateConfig

    def penalty(
        self, batch: TransitionBatch, q1: torch.Tensor, q2: torch.Tensor, log_dict: dict
    ) -> torch.Tensor:
        cfg, n = self.config, self.config.num_sampled_actions
        state, action_dim = batch.obs, batch.action.shape[-1]
        batch_size = state.shape[0]
        random_actions = batch.action.new_empty((batch_size, n, action_dim)).uniform_(-1, 1)
        repeated_state = state.unsqueeze(1).repeat(1, n, 1)
        repeated_next = batch.next_obs.unsqueeze(1).repeat(1, n, 1)
        current_actions, current_log_pis = self.actor(repeated_state)
        next_actions, next_log_pis = self.actor(repeated_next)
        current_actions, current_log_pis = current_actions.detach(), current_log_pis.detach()
        next_actions, next_log_pis = next_actions.detach(), next_log_pis.detach()
        random_density = math.log(0.5**action_dim)
        loss = torch.zeros(())
        for name, critic, q_data in (("1", self.critic_1, q1), ("2", self.critic_2, q2)):
            cat_q = torch.cat(
                [
                    critic(repeated_state, random_actions) - random_density,
                    critic(repeated_state, next_actions) - next_log_pis,
                    critic(repeated_state, current_actions) - current_log_pis,
                ],
                dim=1,
            )
            temp = cfg.cql_temperature
            ood_q = torch.logsumexp(cat_q / temp, dim=1) * temp
            gap = (ood_q - q_data).mean() * cfg.min_q_weight
            log_dict[f"cql_gap{name}"] = gap.item()
            loss = loss + gap
        return loss
