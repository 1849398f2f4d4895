"""TD3+BC (Fujimoto and Gu 2021): on states as published, and from pixels as DrQ+BC (V-D4RL,
Lu et al. 2022: DrQ-v2's actor-critic with TD3+BC's actor term); one agent, the differences config
fields.

Networks are DrQ-v2's, built from the shared parts: the conv trunk is the shared CURL/DrQ one
(4 x 32 filters, 3x3, first stride 2: DrQ-v2's ``Encoder``), the critic's trunk
``Linear -> LayerNorm -> tanh`` is the shared encoder's projection (so conv + projection is the
shared :class:`PixelEncoder`), the actor has its own trunk on the detached conv output. Two
small departures from DrQ-v2, both from sharing the encoder: inputs are scaled x/255 (DrQ-v2:
x/255 - 0.5) and initialised as CURL's (delta-orthogonal convs; DrQ-v2: orthogonal).

Update, in DrQ-v2's order: critic (TD target from the target critic at a' = mu(s') + clipped
noise, with DrQ-v2's scheduled std, clip 0.3) steps the conv trunk and critic; then the actor,
on detached conv features and the *updated* critic, minimises TD3+BC's
``-lambda * mean Q(s, a) + MSE(a, a_data)`` with ``lambda = alpha / mean |Q|`` (alpha 2.5), where
``a`` is the policy's action with clipped noise (V-D4RL: the same sampled action in both terms);
then the soft target update of the critic (its trunk and Q heads; the conv is not copied: the
target uses the online conv, as DrQ-v2).

TD3+BC on states (Fujimoto and Gu 2021) is the same update on the state observation path
(identity trunk, no augmentation) with TD3's choices, each a config field: a target actor for
the next action (``target_actor``), constant target noise 0.2 clipped at 0.5, the actor and the
targets stepped every 2nd update (``actor_update_freq``), and the actor's terms on its
deterministic action (``actor_noise=False``), and the actor's Q term on the first critic
(``actor_critic="first"``; DrQ-v2 and V-D4RL take the minimum of both). Sources per field:
docs/sources.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.checkpoint import Checkpointable
from baselines.common.observation import (
    EncoderFields,
    head_feature_dim,
    make_augment,
    make_encoder,
)
from baselines.common.optim import adam
from baselines.common.sac import DoubleQ, head_projection, mlp, soft_update
from baselines.contract import (
    Count,
    Discount,
    Fraction,
    NonNegative,
    Positive,
    TransitionBatch,
    obs_kind_of,
)


@dataclass(frozen=True)
class TD3BCFields:
    """What DrQ+BC and TD3+BC share. Defaults: V-D4RL's ``drqbc`` code (``cfgs/``), itself
    DrQ-v2's (the pixel track's values; :class:`TD3BCStateConfig` sets TD3+BC's)."""

    batch_size: Count = 256  # V-D4RL cfgs/config.yaml
    lr: Positive = 3e-4  # V-D4RL cfgs/task/offline_dmc.yaml (overrides config.yaml's 1e-4)
    discount: Discount = 0.99  # V-D4RL cfgs/config.yaml
    critic_tau: Fraction = 0.01  # V-D4RL cfgs/algo/drqv2.yaml (critic_target_tau)
    hidden_dim: Count = 1024  # V-D4RL cfgs/algo/drqv2.yaml
    # V-D4RL's exploration std, cfgs/task/offline_dmc.yaml stddev_schedule linear(1.0, 0.1,
    # 250000), counts global steps, and its agent updates every 2nd one (cfgs/algo/drqv2.yaml
    # update_every_steps: 2): std reaches 0.1 after 125,000 updates, here counted in updates.
    # Its 1.1M steps are ~550k updates; the full profile gives every baseline the same 1M
    # (one budget for the leaderboard), so DrQ+BC trains ~1.8x V-D4RL's length there.
    stddev_init: NonNegative = 1.0  # V-D4RL stddev_schedule (above)
    stddev_final: NonNegative = 0.1  # V-D4RL stddev_schedule (above)
    stddev_steps: Count = 125_000  # V-D4RL: 250,000 global steps = 125,000 updates (above)
    stddev_clip: NonNegative = 0.3  # V-D4RL cfgs/algo/drqv2.yaml
    bc_alpha: NonNegative = 2.5  # V-D4RL cfgs/config.yaml bc_weight (TD3+BC's alpha)
    actor_update_freq: Count = 1  # DrQ-v2: the actor steps at every update
    target_actor: bool = False  # DrQ-v2: the next action comes from the online actor
    actor_noise: bool = True  # V-D4RL: the actor's Q and BC terms use the noisy action
    # Which critic the actor's Q term reads: "min" of the twin heads (DrQ-v2 drqv2.py
    # update_actor, V-D4RL drqbc) or the "first" one (TD3+BC paper, CORL td3_bc.py).
    actor_critic: Literal["min", "first"] = "min"


@dataclass(frozen=True)
class DrQBCConfig(EncoderFields, TD3BCFields):
    """DrQ+BC on pixels: :class:`TD3BCFields` and the pixel encoder's fields."""


@dataclass(frozen=True)
class TD3BCStateConfig(TD3BCFields):
    """TD3+BC on states. Defaults: the TD3+BC paper (Fujimoto and Gu 2021) as CORL's
    ``algorithms/offline/td3_bc.py`` runs it; sources per field in docs/sources.md."""

    batch_size: int = 256  # TD3+BC paper / CORL td3_bc.py
    lr: float = 3e-4  # TD3+BC paper / CORL td3_bc.py (actor and critic)
    discount: float = 0.99  # TD3+BC paper / CORL td3_bc.py
    critic_tau: float = 0.005  # TD3+BC paper / CORL td3_bc.py tau
    hidden_dim: int = 256  # TD3+BC paper / CORL: 256-256 actor and critics
    stddev_init: float = 0.2  # TD3 target policy noise 0.2 (CORL policy_noise), constant
    stddev_final: float = 0.2  # constant: TD3 has no schedule
    stddev_clip: float = 0.5  # TD3 noise_clip 0.5
    bc_alpha: float = 2.5  # TD3+BC paper alpha
    actor_update_freq: int = 2  # TD3 policy_freq 2 (actor and targets)
    target_actor: bool = True  # TD3: the next action from the target actor
    actor_noise: bool = False  # TD3+BC: pi(s), no noise, in both actor terms
    actor_critic: Literal["min", "first"] = "first"  # TD3+BC paper / CORL: critic_1(s, pi(s))


class DeterministicActor(nn.Module):
    """DrQ-v2's actor: trunk (projection) on conv features, MLP, tanh mean."""

    def __init__(
        self,
        repr_dim: int,
        feature_dim: int,
        hidden_dim: int,
        action_dim: int,
        pixels: bool = True,
    ) -> None:
        super().__init__()
        self.projection = head_projection(repr_dim, feature_dim, pixels)
        in_dim = feature_dim if pixels else repr_dim
        self.policy = mlp(in_dim, hidden_dim, action_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.policy(self.projection(h)))


class TD3BCAgent(Checkpointable):
    """DrQ-v2 + TD3+BC from pixels, or TD3+BC on states; the ``Agent`` of
    ``baselines.contract``."""

    def __init__(
        self,
        config: DrQBCConfig | TD3BCStateConfig,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: torch.device | str,
    ) -> None:
        cfg = config
        self.config, self.device = config, torch.device(device)
        pixels = obs_kind_of(obs_shape) == "pixels"
        self.augment = make_augment(obs_shape, cfg)
        self.encoder = make_encoder(obs_shape, cfg)
        self.critic = DoubleQ(self.encoder.feature_dim, action_dim, cfg.hidden_dim)
        self.actor = DeterministicActor(
            self.encoder.conv.repr_dim,
            head_feature_dim(obs_shape, cfg),
            cfg.hidden_dim,
            action_dim,
            pixels,
        )
        for module in (self.encoder, self.critic, self.actor):
            module.to(self.device)
        self.target_projection = copy.deepcopy(self.encoder.projection).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # TD3's target actor (TD3+BC on states); DrQ-v2 bootstraps with the online actor.
        self.actor_target = (
            copy.deepcopy(self.actor).requires_grad_(False) if cfg.target_actor else self.actor
        )
        self.critic_params = [*self.encoder.parameters(), *self.critic.parameters()]
        # DrQ-v2 has encoder and critic optimisers with the same settings: one Adam is the same.
        self.critic_opt = adam(self.critic_params, lr=cfg.lr)
        self.actor_opt = adam(self.actor.parameters(), lr=cfg.lr)
        self.updates = 0

    def stddev(self) -> float:
        """DrQ-v2's ``linear(init, final, steps)`` schedule at the current update."""
        cfg = self.config
        mix = min(self.updates / cfg.stddev_steps, 1.0)
        return (1.0 - mix) * cfg.stddev_init + mix * cfg.stddev_final

    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor | float]:
        cfg = self.config
        std = self.stddev()
        update_actor = self.updates % cfg.actor_update_freq == 0
        obs = self.augment(batch.obs)
        next_obs = self.augment(batch.next_obs)
        h = self.encoder.conv(obs)
        with torch.no_grad():
            h_next = self.encoder.conv(next_obs)
            next_action = clipped_noise_action(self.actor_target(h_next), std, cfg.stddev_clip)
            target_q = torch.min(*self.critic_target(self.target_projection(h_next), next_action))
            target_q = batch.reward + batch.not_done * cfg.discount * target_q
        q1, q2 = self.critic(self.encoder.projection(h), batch.action)
        critic_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        self.updates += 1
        metrics = {"critic_loss": critic_loss, "q1": q1.mean()}
        if update_actor:
            metrics |= self.actor_step(h.detach(), batch.action, std)
            soft_update(self.encoder.projection, self.target_projection, cfg.critic_tau)
            soft_update(self.critic, self.critic_target, cfg.critic_tau)
            if cfg.target_actor:
                soft_update(self.actor, self.actor_target, cfg.critic_tau)
        # On the device: the harness reads metrics once per evaluation, not per update.
        return {name: value.detach() for name, value in metrics.items()} | {"stddev": std}

    def actor_step(
        self, h: torch.Tensor, data_action: torch.Tensor, std: float
    ) -> dict[str, torch.Tensor]:
        """TD3+BC's actor step on detached features and the updated critic."""
        cfg = self.config
        action = self.actor(h)
        if cfg.actor_noise:
            action = clipped_noise_action(action, std, cfg.stddev_clip)
        q1, q2 = self.critic(self.encoder.projection(h), action)
        q = q1 if cfg.actor_critic == "first" else torch.min(q1, q2)
        actor_loss, bc_loss = td3_bc_actor_loss(q, action, data_action, cfg.bc_alpha)
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward(inputs=list(self.actor.parameters()))
        self.actor_opt.step()
        return {"actor_loss": actor_loss, "bc_loss": bc_loss}

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """The mean action; with ``deterministic=False``, plus unclipped scheduled noise
        (DrQ-v2's ``dist.sample(clip=None)``), clamped to [-1, 1]."""
        action = self.actor(self.encoder.conv(torch.as_tensor(obs, device=self.device)[None]))
        if not deterministic:
            action = (action + self.stddev() * torch.randn_like(action)).clamp(-1.0, 1.0)
        return action[0].cpu().numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> float:
        """The critic's estimate Q(s, pi(s)) for the mean action (min of the two heads, the
        value TD3 bootstraps with)."""
        h = self.encoder.conv(torch.as_tensor(obs, device=self.device)[None])
        q = torch.min(*self.critic(self.encoder.projection(h), self.actor(h)))
        return float(q.item())

    def _parts(self) -> dict[str, Any]:
        parts = {
            "encoder": self.encoder,
            "critic": self.critic,
            "actor": self.actor,
            "target_projection": self.target_projection,
            "critic_target": self.critic_target,
            "critic_opt": self.critic_opt,
            "actor_opt": self.actor_opt,
            "updates": self.updates,
        }
        if self.config.target_actor:
            parts["actor_target"] = self.actor_target
        return parts


def clipped_noise_action(mean: torch.Tensor, std: float, clip: float) -> torch.Tensor:
    """DrQ-v2's ``TruncatedNormal.sample(clip)``: mean + clamp(std * eps, +-clip), clamped into
    (-1, 1) with a straight-through gradient (the clamp passes gradients unchanged)."""
    noisy = mean + (std * torch.randn_like(mean)).clamp(-clip, clip)
    bound = 1.0 - 1e-6
    return noisy - noisy.detach() + noisy.detach().clamp(-bound, bound)


def td3_bc_actor_loss(
    q: torch.Tensor,
    action: torch.Tensor,
    data_action: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TD3+BC (Fujimoto and Gu 2021, eq. 5): -lambda mean Q + MSE, lambda = alpha / mean|Q|
    (not differentiated). Returns (total loss, the MSE term)."""
    bc_loss = F.mse_loss(action, data_action)
    lam = alpha / q.detach().abs().mean()
    return -lam * q.mean() + bc_loss, bc_loss
