"""CQL-CURL: SAC + CURL with the CQL(H) conservative penalty on both critics (Kumar et al. 2020).

:meth:`CQLCURLAgent.losses` below is the whole loss, in the order it is computed: SAC's soft TD
target, the critics' regression on it, the CQL(H) penalty (and with ``with_lagrange`` the loss of
its weight alpha'), CURL, the actor and the temperature. The pieces it shares with SAC-CURL are
methods and functions named from ``baselines/common/sac_agent.py`` and ``baselines/common/sac.py``;
the update around it (one backward of the summed losses, then every optimiser's step, alpha''s
too, then the soft target updates) is SAC-CURL's, in ``SoftActorCritic``. For each Q head:

    CQL(H) = w * ( T * mean_s logsumexp_j (Q(s, a_j) - log mu(a_j | s)) / T  -  mean Q(s, a_data) )

over 3 x ``num_sampled_actions`` actions a_j per state: uniform in [-1, 1]^A (log density
A log 0.5), the current policy at s and the current policy at s' (both evaluated at s, minus their
log-probs): the importance-weighted estimator of CQL's code (``cat_q1`` in ``cql.py``). Sampled
actions and log-probs are constants for this term; its gradient trains the Q heads and encoder.

``policy_actions`` chooses the policy's actions in that term. ``sampled`` (default) is the CQL
paper's code, CQL(H): n reparameterised samples of the policy at s and at s', held constant.
``tanh_mean`` is the original CQL-CURL code (``src/agent/cql.py``): the policy's tanh mean
repeated n times, with the log-densities of a separate sample, and the penalty's gradient
reaching the shared conv trunk through the actions at s (the actor sees the conv output ``h``);
the actions at s' are the tanh mean without gradient here, since s' is encoded once, without
gradient, for the TD target. Only the penalty's policy actions change (tested); the actor's
own parameters are stepped by the actor loss alone either way.

With ``with_lagrange`` the weight becomes w * alpha' with alpha' = exp(log alpha') clipped to
[0, 1e6], trained to hold the penalty (before alpha') at ``target_action_gap`` (CQL's Lagrange
variant: minimise -alpha' (gap - target), per head averaged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch.func import functional_call

from baselines.common.optim import adam, bf16_autocast
from baselines.common.sac import double_q_loss
from baselines.common.sac_agent import CURLFields, SACFields, SoftActorCritic
from baselines.contract import Choice, Count, NonNegative, Positive, TransitionBatch

SAMPLED, TANH_MEAN = "sampled", "tanh_mean"
POLICY_ACTIONS = (SAMPLED, TANH_MEAN)

# The original CQL-CURL code (its src/agent/cql.py and scripts/train_cql_curl_offline.py; the
# values are recorded in docs/sources.md, "CQL-CURL") is the source of every default below that
# differs from SAC-CURL's CURL-paper values.


@dataclass(frozen=True)
class CQLFields:
    """CQL(H)'s fields; defaults are the original CQL-CURL code's values."""

    min_q_weight: NonNegative = 10.0  # original CQL-CURL code (there 1 and 10 work, 0.1 fails)
    num_sampled_actions: Count = 8  # original CQL-CURL code: 8 of each kind (CQL code: 10)
    cql_temperature: Positive = 1.0  # original CQL-CURL code (CQL code ``temp``)
    with_lagrange: bool = False  # original CQL-CURL code: no Lagrange multiplier
    target_action_gap: float = 10.0  # CQL code ``lagrange_thresh`` (used only with_lagrange)
    alpha_prime_lr: Positive = 3e-4  # CQL code: alpha' uses the Q-function lr (here critic_lr)
    # CQL code's sampled policy actions, or the original CQL-CURL's tanh mean (module docstring)
    policy_actions: Annotated[str, Choice(POLICY_ACTIONS)] = "sampled"


@dataclass(frozen=True)
class CQLCURLConfig(CQLFields, CURLFields, SACFields):
    """SAC-CURL's fields (the pixel encoder's and CURL's included) plus CQL(H)'s; defaults are
    the original CQL-CURL code's values.

    Where the original differs from the CURL paper (learning rates, sampled actions) the original
    wins here; SAC-CURL keeps the CURL paper's values. The encoder is stepped by the one critic
    optimiser at ``critic_lr`` on the summed critic + CURL gradient (the original steps it once
    more with CURL's ``encoder_optimizer`` at ``curl_lr``; see ``baselines/sac_curl.py``), and W
    uses ``curl_lr``.
    """

    batch_size: int = 128  # original CQL-CURL code (also the CURL paper's walker value)
    actor_lr: float = 1e-4  # original CQL-CURL code (CURL paper: 1e-3)
    critic_lr: float = 3e-4  # original CQL-CURL code (CURL paper: 1e-3)
    curl_lr: float = 1e-3  # original CQL-CURL code (CURL's encoder_lr)
    alpha_lr: float = 1e-4  # original CQL-CURL code (beta1 0.5, as the CURL paper)
    init_temperature: float = 0.1  # original CQL-CURL code


@dataclass(frozen=True)
class CQLStateConfig(CQLFields, SACFields):
    """CQL on states: the same penalty and update; defaults are CORL's ``algorithms/offline/
    cql.py`` (its TrainConfig; the CQL paper's continuous-control settings), sources per field
    in docs/sources.md ("State track"). At these sizes an update costs ~13 GFLOP (31 Q
    evaluations per state on two 3x256 Qs): it is compute-bound on a CPU."""

    batch_size: int = 256  # CORL cql.py
    actor_lr: float = 3e-5  # CORL cql.py policy_lr
    critic_lr: float = 3e-4  # CORL cql.py qf_lr
    alpha_lr: float = 3e-5  # CORL cql.py: the temperature's Adam uses policy_lr
    alpha_beta1: float = 0.9  # CORL cql.py: default Adam betas
    beta1: float = 0.9  # CORL cql.py: default Adam betas
    init_temperature: float = 1.0  # CORL cql.py: log_alpha starts at 0
    critic_tau: float = 5e-3  # CORL cql.py soft_target_update_rate
    actor_update_freq: int = 1  # CORL cql.py: actor and critics step together
    critic_target_update_freq: int = 1  # CORL cql.py target_update_period
    hidden_dim: int = 256  # CORL cql.py: 256-unit layers
    hidden_depth: int = 3  # CORL cql.py q_n_hidden_layers (its actor has 3 hidden layers too)
    log_std_min: float = -5.0  # VORB's SAC bounds (CORL: clamp(-20, 2) after an offset of -1)
    log_std_max: float = 2.0  # VORB's SAC bounds (CORL's upper clamp too)
    min_q_weight: float = 10.0  # CORL cql.py cql_alpha
    num_sampled_actions: int = 10  # CORL cql.py cql_n_actions (CQL paper: 10)
    cql_temperature: float = 1.0  # CORL cql.py cql_temp
    with_lagrange: bool = False  # CORL cql.py cql_lagrange
    backup_entropy: bool = False  # CORL cql.py backup_entropy
    alpha_prime_lr: float = 3e-4  # CORL cql.py: alpha' uses qf_lr (used only with_lagrange)


class CQLCURLAgent(SoftActorCritic):
    """SAC-CURL with CQL(H) on both critics (and optionally its Lagrange multiplier)."""

    config: CQLCURLConfig | CQLStateConfig

    def __init__(
        self,
        config: CQLCURLConfig | CQLStateConfig,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: torch.device | str,
    ) -> None:
        if config.policy_actions not in POLICY_ACTIONS:
            raise ValueError(
                f"policy_actions must be one of {', '.join(POLICY_ACTIONS)}, "
                f"got {config.policy_actions!r}"
            )
        super().__init__(config, obs_shape, action_dim, device)
        self.log_alpha_prime = torch.zeros((), device=self.device, requires_grad=True)
        self.alpha_prime_opt = adam([self.log_alpha_prime], lr=config.alpha_prime_lr)
        if config.with_lagrange:  # alpha' is stepped with the others, after the one backward
            for with_actor in (False, True):
                self._params[with_actor] = [*self._params[with_actor], self.log_alpha_prime]
                self._optimisers[with_actor] = (*self._optimisers[with_actor], self.alpha_prime_opt)

    def losses(
        self,
        batch: TransitionBatch,
        obs: torch.Tensor,
        next_obs: torch.Tensor,
        positive: torch.Tensor,
        with_actor: bool,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """CQL-CURL's whole loss at the parameters the update starts from (module docstring);
        a pure forward: the update steps every optimiser after one backward of the sum."""
        cfg = self.config
        alpha = self.log_alpha.detach().exp()
        with bf16_autocast(self.config.amp, self.device):
            # 1. the soft TD target (no grad) and 2. both critics' regression on it
            target_q, next_policy, z_positive = self.soft_td_target(
                batch, next_obs, positive, alpha
            )
            h, z, q1, q2 = self.critic_forward(obs, batch.action)
            critic_loss = double_q_loss(q1, q2, target_q)
            # 3. CQL(H) on each head, over the 3n sampled actions of each state
            actions, log_density = self.cql_actions(h, z, next_policy)
            sampled_q1, sampled_q2 = self.critic(z.unsqueeze(-2), actions)  # (B, 3n, 1) each
            gap1 = cfg.min_q_weight * cql_gap(sampled_q1, log_density, q1, cfg.cql_temperature)
            gap2 = cfg.min_q_weight * cql_gap(sampled_q2, log_density, q2, cfg.cql_temperature)
            metrics = {"cql_gap1": gap1, "cql_gap2": gap2}
            penalty, alpha_prime_loss = gap1 + gap2, None
            if cfg.with_lagrange:  # the penalty weighted by alpha', a constant to the critic
                alpha_prime = self.log_alpha_prime.exp().clamp(0.0, 1e6)
                penalty = alpha_prime.detach() * (gap1 + gap2 - 2 * cfg.target_action_gap)
                alpha_prime_loss = alpha_prime_lagrange_loss(
                    alpha_prime, gap1, gap2, cfg.target_action_gap
                )
                metrics["alpha_prime"] = alpha_prime.detach()
            # 4. CURL, then 5. the actor and 6. the temperature
            curl_loss = self.curl_loss(z, z_positive)
            metrics |= self.critic_metrics(critic_loss, q1, curl_loss)
            if with_actor:
                actor_loss, alpha_loss, actor_metrics = self.actor_losses(h, z, alpha)
                metrics |= actor_metrics
        total = critic_loss + penalty + curl_loss
        if with_actor:
            total = total + actor_loss + alpha_loss
        if alpha_prime_loss is not None:  # reaches log alpha' alone
            total = total + alpha_prime_loss
        return total, metrics

    def cql_actions(
        self, h: torch.Tensor, z: torch.Tensor, next_policy: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The penalty's 3n actions per state, (..., B, 3n, A), and their log-densities,
        (..., B, 3n, 1): uniform, the policy at s, the policy at s' (``policy_actions``)."""
        samples, tanh_mean = (
            self.config.num_sampled_actions,
            self.config.policy_actions == TANH_MEAN,
        )
        with torch.set_grad_enabled(tanh_mean and torch.is_grad_enabled()):
            # With grad into h (the shared CNN), as the original; the actor's own weights as
            # constants: the update backpropagates all its losses at once, and the penalty
            # must not train the actor (the original's critic optimiser never steps it).
            frozen = {k: v.detach() for k, v in self.actor.named_parameters()}
            policy = functional_call(self.actor, frozen, (h if tanh_mean else h.detach(),))
        with torch.no_grad():
            shape = (*z.shape[:-1], samples, self.action_dim)  # (B, n, A)
            uniform = torch.empty(shape, device=z.device).uniform_(-1, 1)
            at_s, log_pi_s = self.actor.sample(*(t.detach() for t in policy), num_samples=samples)
            at_next, log_pi_next = self.actor.sample(*next_policy, num_samples=samples)
            uniform_log_density = torch.full_like(log_pi_s, self.action_dim * math.log(0.5))
            log_density = torch.cat([uniform_log_density, log_pi_s, log_pi_next], dim=-2)
        if tanh_mean:  # the samples above gave the log-densities only
            at_s = torch.tanh(policy[0]).unsqueeze(-2).expand_as(at_s)
            at_next = torch.tanh(next_policy[0]).unsqueeze(-2).expand_as(at_next)
        return torch.cat([uniform, at_s, at_next], dim=-2), log_density

    def _parts(self) -> dict[str, Any]:
        return super()._parts() | {
            "log_alpha_prime": self.log_alpha_prime,
            "alpha_prime_opt": self.alpha_prime_opt,
        }


def cql_gap(
    sampled_q: torch.Tensor,
    log_density: torch.Tensor,
    data_q: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """CQL(H)'s gap, before its weight: T * mean logsumexp((Q(s,a_j) - log mu_j) / T) - mean Q(s,a).

    sampled_q, log_density: (B, N, 1) over the N sampled actions of each state; data_q: (B, 1).
    """
    soft_max = torch.logsumexp((sampled_q - log_density) / temperature, dim=-2)
    return soft_max.mean() * temperature - data_q.mean()


def alpha_prime_lagrange_loss(
    alpha_prime: torch.Tensor, gap1: torch.Tensor, gap2: torch.Tensor, target_gap: float
) -> torch.Tensor:
    """CQL's Lagrange step for alpha': minimise -alpha' (gap - target), averaged over the two
    heads; the gaps are constants to it."""
    excess = torch.stack([gap1, gap2]).detach() - target_gap
    return -0.5 * (alpha_prime * excess).sum()
