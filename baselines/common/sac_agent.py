"""The SAC agent SAC-CURL and CQL-CURL are built on (``baselines/sac_curl.py`` describes the
fused update and how it differs from the CURL reference code).

:class:`SoftActorCritic` holds the networks (encoder, twin Q heads, squashed Gaussian actor,
their targets), the optimisers, one update (augment, the algorithm's ``losses``, one backward,
every optimiser's step, the soft target updates), acting, the value estimate and checkpointing.
Its subclasses write their whole loss in ``losses`` from the named pieces below: the soft TD
target, the critic's forward, SAC's actor and temperature losses and CURL's loss. The fields
both algorithms share are here too: :class:`SACFields` and, on pixels, :class:`CURLFields`.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from baselines.common.checkpoint import Checkpointable
from baselines.common.observation import (
    EncoderFields,
    head_feature_dim,
    make_augment,
    make_encoder,
)
from baselines.common.optim import adam, bf16_autocast
from baselines.common.sac import (
    DoubleQ,
    SquashedGaussianActor,
    soft_update,
    target_entropy,
    td_target,
)
from baselines.contract import (
    Beta,
    Count,
    Discount,
    Fraction,
    NonNegativeInt,
    Positive,
    TransitionBatch,
    obs_kind_of,
)


@dataclass(frozen=True)
class SACFields:
    """SAC's fields, shared by SAC-CURL, CQL-CURL and their state configs. Defaults: the CURL
    paper (Srinivas et al. 2020), Table 3 and walker settings (the pixel track's;
    ``SACStateConfig`` sets the SAC paper's)."""

    batch_size: Count = 128  # CURL paper, Table 3 (512 only for cheetah); ref. code argparse: 32
    discount: Discount = 0.99  # CURL paper, Table 3
    critic_lr: Positive = 1e-3  # CURL paper, Table 3 (2e-4 only for cheetah); also the encoder's
    actor_lr: Positive = 1e-3  # CURL paper, Table 3
    beta1: Beta = 0.9  # CURL paper, Table 3: Adam (beta1, beta2) for encoder, actor, Q: (.9, .999)
    alpha_lr: Positive = 1e-4  # CURL paper, Table 3; ref. code agent default 1e-3 (argparse 1e-4)
    alpha_beta1: Beta = 0.5  # CURL paper, Table 3: Adam betas for alpha (.5, .999)
    init_temperature: Positive = 0.1  # CURL paper, Table 3; ref. code agent default 0.01
    critic_tau: Fraction = 0.01  # CURL paper, Table 3 (Q EMA); ref. code agent default 0.005
    actor_update_freq: Count = 2  # CURL ref. code (curl_sac.py agent default and argparse)
    critic_target_update_freq: Count = 2  # CURL paper, Table 3
    hidden_dim: Count = 1024  # CURL paper, Table 3 (MLP hidden units); ref. code agent default 256
    log_std_min: float = -10.0  # CURL ref. code argparse (actor_log_std_min)
    log_std_max: float = 2.0  # CURL ref. code argparse (actor_log_std_max)
    replay_capacity: Count = 100_000  # CURL paper, Table 3
    initial_random_steps: NonNegativeInt = 1_000  # CURL paper, Table 3 (initial steps)
    compile: bool = False  # torch.compile(fullgraph=True) the update's forward (VORB; benchmarks/)
    amp: bool = False  # bf16 autocast around the forward passes (VORB; meant for GPUs)
    hidden_depth: Count = 2  # CURL ref. code: 2 hidden layers in actor trunk and Q functions
    backup_entropy: bool = True  # SAC: the TD target's soft value includes -alpha log pi


@dataclass(frozen=True)
class CURLFields(EncoderFields):
    """The pixel encoder's fields and CURL's: pixel configs only."""

    curl_lr: Positive = 1e-3  # CURL ref. code ``encoder_lr`` (W and, with the critic, the encoder)
    encoder_tau: Fraction = 0.05  # CURL paper, Table 3 (encoder EMA); ref. code agent default 0.005


def curl_fields(config: Any) -> CURLFields:
    """``config``'s CURL fields (pixels only: the agent asks once it sees frames)."""
    if not isinstance(config, CURLFields):
        raise ValueError(f"{type(config).__name__} has no CURL fields (curl_lr, encoder_tau)")
    return config


class SoftActorCritic(Checkpointable):
    """SAC's networks, optimisers and update, with a CURL-trained encoder on pixels; an
    algorithm subclasses it with its ``losses`` (SAC-CURL's, CQL-CURL's). The ``Agent`` of
    ``baselines.contract``."""

    def __init__(
        self,
        config: SACFields,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: torch.device | str,
    ) -> None:
        self.config, self.action_dim = config, action_dim
        self.device = torch.device(device)
        cfg = config
        # CURL (its loss, its W, the positive crop) exists on pixels only.
        self.curl = obs_kind_of(obs_shape) == "pixels"
        self.augment = make_augment(obs_shape, cfg)
        self.encoder = make_encoder(obs_shape, cfg)
        feature_dim = self.encoder.feature_dim
        self.critic = DoubleQ(feature_dim, action_dim, cfg.hidden_dim, cfg.hidden_depth)
        self.actor = SquashedGaussianActor(
            self.encoder.conv.repr_dim,
            head_feature_dim(obs_shape, cfg),
            cfg.hidden_dim,
            action_dim,
            cfg.log_std_min,
            cfg.log_std_max,
            cfg.hidden_depth,
            pixels=self.curl,
        )
        for module in (self.encoder, self.critic, self.actor):
            module.to(self.device)
        critic_groups: list[dict[str, Any]] = [
            {"params": [*self.encoder.parameters(), *self.critic.parameters()]}
        ]
        self.critic_params = [*self.encoder.parameters(), *self.critic.parameters()]
        if self.curl:
            # CURL's bilinear similarity W (ref. code: torch.rand init).
            curl = curl_fields(cfg)
            self.curl_w = nn.Parameter(torch.rand(curl.feature_dim, curl.feature_dim))
            self.curl_w.data = self.curl_w.data.to(self.device)
            critic_groups.append({"params": [self.curl_w], "lr": curl.curl_lr})
            self.critic_params.append(self.curl_w)
        self.encoder_target = copy.deepcopy(self.encoder).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        # CURL's actor copies (ties) the critic's conv weights: here it *uses* the critic's conv.
        self.actor.projection.load_state_dict(self.encoder.projection.state_dict())
        self.log_alpha = torch.full(
            (), float(np.log(cfg.init_temperature)), device=self.device
        ).requires_grad_()
        self.target_entropy = target_entropy(action_dim)

        betas = (cfg.beta1, 0.999)
        self.critic_opt = adam(critic_groups, lr=cfg.critic_lr, betas=betas)
        self.actor_opt = adam(self.actor.parameters(), lr=cfg.actor_lr, betas=betas)
        self.alpha_opt = adam([self.log_alpha], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999))
        self.updates = 0
        actor_params = [*self.actor.parameters(), self.log_alpha]
        self._params = {False: self.critic_params, True: [*self.critic_params, *actor_params]}
        self._optimisers = {
            False: (self.critic_opt,),
            True: (self.critic_opt, self.actor_opt, self.alpha_opt),
        }

        self._conv = self.encoder.conv
        self._target_encoder = self.encoder_target
        # The update's forward in its two fixed shapes (critic only; critic, actor and alpha):
        # the every-2nd choice is made by ``update``, outside, so each is branch-free.
        self._losses = {
            with_actor: functools.partial(self.losses, with_actor=with_actor)
            for with_actor in (False, True)
        }
        if cfg.compile:
            self._losses = {
                flag: torch.compile(losses, fullgraph=True) for flag, losses in self._losses.items()
            }

    # -- the Agent protocol ------------------------------------------------------------------
    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        """One fused SAC + CURL update (see the module docstring).

        Metrics are 0-d tensors left on the device: reading them would
        synchronise the host with the device at every update; the harness averages them and
        reads them once per evaluation."""
        cfg = self.config
        update_actor = self.updates % cfg.actor_update_freq == 0
        update_target = self.updates % cfg.critic_target_update_freq == 0
        self.updates += 1
        obs = self.augment(batch.obs)
        next_obs = self.augment(batch.next_obs)
        # CURL's positive: an independent crop of obs, encoded with next_obs by the target.
        positive = self.augment(batch.obs) if self.curl else batch.obs.narrow(0, 0, 0)
        total, metrics = self._losses[update_actor](batch, obs, next_obs, positive)

        optimisers = self._optimisers[update_actor]
        for optimiser in optimisers:
            optimiser.zero_grad(set_to_none=True)
        total.backward(inputs=self._params[update_actor])  # each loss reaches its own parameters
        for optimiser in optimisers:
            optimiser.step()
        if update_target:
            soft_update(self.critic, self.critic_target, cfg.critic_tau)
            if self.curl:  # a state's encoder has no parameters
                soft_update(self.encoder, self.encoder_target, curl_fields(cfg).encoder_tau)
        return {name: value.detach().float() for name, value in metrics.items()}

    def losses(
        self,
        batch: TransitionBatch,
        obs: torch.Tensor,
        next_obs: torch.Tensor,
        positive: torch.Tensor,
        with_actor: bool,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The algorithm's whole loss at the parameters the update starts from, and its
        metrics: each term reaches only its own parameters, so one backward serves all."""
        raise NotImplementedError

    # -- the pieces of the losses, named ------------------------------------------------------
    def soft_td_target(
        self,
        batch: TransitionBatch,
        next_obs: torch.Tensor,
        positive: torch.Tensor,
        alpha: torch.Tensor,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """No grad: SAC's soft TD target from the target critic at a' ~ pi(s'), the policy's
        (mu, log_std) at s', and CURL's keys of the positives (the target encoder sees s' and
        the positives in one pass)."""
        cfg = self.config
        size = next_obs.shape[0]
        with torch.no_grad():
            next_policy = self.actor(self._conv(next_obs))
            next_action, next_log_pi = self.actor.sample(*next_policy)
            keys = self._target_encoder(torch.cat([next_obs, positive]))
            z_next, z_positive = keys.split([size, keys.shape[0] - size])
            target_q = td_target(
                *self.critic_target(z_next, next_action),
                next_log_pi * cfg.backup_entropy,
                alpha,
                batch.reward,
                batch.not_done,
                cfg.discount,
            )
        return target_q, next_policy, z_positive

    def critic_forward(
        self, obs: torch.Tensor, action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """With grad: conv features h and encoder output z of ``obs``, and both Q heads at the
        dataset's actions."""
        h = self._conv(obs)
        z = self.encoder.projection(h)
        return h, z, *self.critic(z, action)

    def critic_metrics(
        self, critic_loss: torch.Tensor, q1: torch.Tensor, curl_loss: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        metrics = {"critic_loss": critic_loss, "q1": q1.mean()}
        if self.curl:
            metrics["curl_loss"] = curl_loss
        return metrics

    def actor_losses(
        self, h: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """SAC's actor loss (on detached features, the Q heads' weights as constants: it reaches
        the actor alone) and the temperature's loss toward the target entropy."""
        pi, log_pi = self.actor.sample(*self.actor(h.detach()))
        frozen = {k: v.detach() for k, v in self.critic.named_parameters()}
        actor_q = torch.min(*functional_call(self.critic, frozen, (z.detach(), pi)))
        actor_loss = (alpha * log_pi - actor_q).float().mean()
        alpha_loss = (self.log_alpha.exp() * (-log_pi - self.target_entropy).detach()).mean()
        metrics = {"actor_loss": actor_loss, "alpha": alpha, "entropy": (-log_pi).mean()}
        return actor_loss, alpha_loss, metrics

    def curl_loss(self, z: torch.Tensor, z_positive: torch.Tensor) -> torch.Tensor:
        """CURL's InfoNCE loss of the anchors ``z`` against the keys (0 on states: no CURL)."""
        if not self.curl:
            return torch.zeros((), device=z.device)
        logits = curl_logits(z, z_positive, self.curl_w).float()
        labels = torch.arange(logits.shape[-1], device=logits.device)
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        """uint8 (C*stack, H, W) frames or a (D,) state -> action in [-1, 1] (no augmentation)."""
        x = torch.as_tensor(obs, device=self.device)[None]
        with bf16_autocast(self.config.amp, self.device):
            mu, log_std = self.actor(self._conv(x))
            action = torch.tanh(mu) if deterministic else self.actor.sample(mu, log_std)[0]
        return action[0].float().cpu().numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> float:
        """The critic's estimate Q(s, pi(s)) for the deterministic action: min of the two heads
        (the value SAC bootstraps with). A soft Q: it includes the entropy bonus the TD target
        adds (``-alpha log pi`` per future step), which the environment's return does not."""
        x = torch.as_tensor(obs, device=self.device)[None]
        with bf16_autocast(self.config.amp, self.device):
            h = self._conv(x)
            action = torch.tanh(self.actor(h)[0])
            q = torch.min(*self.critic(self.encoder.projection(h), action))
        return float(q.float().item())

    # -- checkpointing -----------------------------------------------------------------------
    def _parts(self) -> dict[str, Any]:
        parts = {
            "encoder": self.encoder,
            "encoder_target": self.encoder_target,
            "critic": self.critic,
            "critic_target": self.critic_target,
            "actor": self.actor,
            "log_alpha": self.log_alpha,
            "critic_opt": self.critic_opt,
            "actor_opt": self.actor_opt,
            "alpha_opt": self.alpha_opt,
            "updates": self.updates,
        }
        if self.curl:
            parts["curl_w"] = self.curl_w
        return parts


# -- losses (pure functions, tested on hand-built inputs) -------------------------------------
def curl_logits(anchor: torch.Tensor, positive: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """CURL's bilinear logits ``anchor W positive^T`` (B, B), each row minus its max (as the
    reference, for stability); the positives are the diagonal (labels ``arange(B)``)."""
    logits = anchor @ (w @ positive.transpose(-2, -1))
    return logits - logits.max(dim=-1, keepdim=True).values
