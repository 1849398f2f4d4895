"""SAC + CURL (Srinivas, Laskin and Abbeel, 2020), online or offline (the registry decides),
and the same SAC on states (Haarnoja et al. 2018).

One file, top to bottom: the configs (pixels: the CURL paper's walker values; states: the SAC
paper's and cleanrl's), the agent, its losses and its update. Shared parts (encoder,
augmentation, SAC heads, checkpointing) live in ``baselines/common``. The observation path is
built from the observation shape (``baselines/common/observation.py``): on states the trunk is
the identity, there is no augmentation and no CURL loss; the update below is otherwise the same
code for both tracks.

The update, and how it differs from the CURL reference code
-----------------------------------------------------------
The reference code runs three updates in sequence on one sampled batch (critic, then actor and
temperature every 2nd step, then CURL), re-encoding the observation each time: 7 conv forwards
and 2 conv backwards on an actor step. Here one update does:

1. augment ``obs``, ``next_obs`` and the CURL positive (an independent crop of ``obs``);
2. no-grad: the online conv trunk on ``next_obs`` (the policy's next action, as CURL's
   ``actor(next_obs)`` whose conv weights are the critic's); the *target* encoder on
   ``next_obs`` and the positive together (target Q features and CURL's momentum keys: CURL's key
   encoder is the critic target's encoder);
3. with grad: the online encoder on ``obs`` once. Its output ``z`` feeds the critic *and* is
   CURL's anchor (the reference uses the same cropped ``obs`` as anchor); the conv output ``h``,
   detached, feeds the actor (CURL's actor sees detached conv features through its own
   projection), and ``z`` detached feeds the actor's Q (CURL: ``critic(obs, pi,
   detach_encoder=True)``, whose gradient the reference never applies to the critic);
4. gradients: ``critic + CURL`` loss into encoder, Q heads and W (one Adam: all three use
   lr 1e-3, betas (0.9, 0.999)); actor loss into the actor; alpha loss into log alpha; then the
   soft target updates.

Documented sharing (the only differences from the sequential reference update):
- the actor loss and the CURL loss are computed at the parameters the critic loss sees (the
  start of the update), not after the critic's optimiser step: all losses are simultaneous;
- the encoder gets one Adam step on the summed critic + CURL gradient (the reference steps it
  with three Adams in turn: the critic's, then ``encoder_optimizer`` and ``cpc_optimizer`` on the
  same CURL gradient);
- the CURL keys use the target encoder before this update's soft update (the reference updates
  it between the critic and CURL steps on target-update steps).
"""

from __future__ import annotations

import contextlib
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
from baselines.common.observation import make_augment, make_encoder
from baselines.common.optim import adam
from baselines.common.sac import (
    DoubleQ,
    SquashedGaussianActor,
    double_q_loss,
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
class SACCURLConfig:
    """SAC + CURL. Defaults: CURL paper (Srinivas et al. 2020), Table 3 and walker settings."""

    batch_size: Count = 128  # CURL paper, Table 3 (512 only for cheetah); ref. code argparse: 32
    discount: Discount = 0.99  # CURL paper, Table 3
    critic_lr: Positive = 1e-3  # CURL paper, Table 3 (2e-4 only for cheetah); also the encoder's
    actor_lr: Positive = 1e-3  # CURL paper, Table 3
    curl_lr: Positive = 1e-3  # CURL ref. code ``encoder_lr`` (W and, with the critic, the encoder)
    beta1: Beta = 0.9  # CURL paper, Table 3: Adam (beta1, beta2) for encoder, actor, Q: (.9, .999)
    alpha_lr: Positive = 1e-4  # CURL paper, Table 3; ref. code agent default 1e-3 (argparse 1e-4)
    alpha_beta1: Beta = 0.5  # CURL paper, Table 3: Adam betas for alpha (.5, .999)
    init_temperature: Positive = 0.1  # CURL paper, Table 3; ref. code agent default 0.01
    critic_tau: Fraction = 0.01  # CURL paper, Table 3 (Q EMA); ref. code agent default 0.005
    encoder_tau: Fraction = 0.05  # CURL paper, Table 3 (encoder EMA); ref. code agent default 0.005
    actor_update_freq: Count = 2  # CURL ref. code (curl_sac.py agent default and argparse)
    critic_target_update_freq: Count = 2  # CURL paper, Table 3
    feature_dim: Count = 50  # CURL paper, Table 3 (latent dimension)
    hidden_dim: Count = 1024  # CURL paper, Table 3 (MLP hidden units); ref. code agent default 256
    num_layers: Count = 4  # CURL paper, Table 3 (conv layers)
    num_filters: Count = 32  # CURL paper, Table 3
    log_std_min: float = -10.0  # CURL ref. code argparse (actor_log_std_min)
    log_std_max: float = 2.0  # CURL ref. code argparse (actor_log_std_max)
    aug_pad: NonNegativeInt = 4  # DrQ's pad 4: 84x84 frames (CURL crops 100->84); augment.py
    replay_capacity: Count = 100_000  # CURL paper, Table 3
    initial_random_steps: NonNegativeInt = 1_000  # CURL paper, Table 3 (initial steps)
    compile: bool = False  # torch.compile(fullgraph=True) the update's forward (VORB; benchmarks/)
    amp: bool = False  # bf16 autocast around the forward passes (VORB; meant for GPUs)
    hidden_depth: Count = 2  # CURL ref. code: 2 hidden layers in actor trunk and Q functions
    backup_entropy: bool = True  # SAC: the TD target's soft value includes -alpha log pi


@dataclass(frozen=True)
class SACStateConfig(SACCURLConfig):
    """SAC on states, online or offline. Defaults: the SAC paper (Haarnoja et al. 2018,
    arXiv:1812.05905, Table 1) and cleanrl's ``sac_continuous_action.py`` where the paper is
    silent; sources per field in docs/sources.md ("State track"). Pixel-only fields (conv,
    CURL, augmentation) are unused on states. Kept equal to the pixel track on purpose: the
    discount (0.99), the twin critics and the target entropy -|A|."""

    batch_size: int = 256  # SAC paper, Table 1 (also CORL's batch)
    critic_lr: float = 3e-4  # SAC paper, Table 1
    actor_lr: float = 3e-4  # SAC paper, Table 1
    alpha_lr: float = 3e-4  # SAC paper, Table 1 (the temperature shares the learning rate)
    alpha_beta1: float = 0.9  # SAC paper: Adam with default betas everywhere
    init_temperature: float = 1.0  # cleanrl sac_continuous_action: log_alpha starts at 0
    critic_tau: float = 0.005  # SAC paper, Table 1
    encoder_tau: float = 0.005  # unused on states (no encoder parameters)
    actor_update_freq: int = 1  # SAC paper: one actor step per critic step
    critic_target_update_freq: int = 1  # SAC paper, Table 1 (target update interval 1)
    hidden_dim: int = 256  # SAC paper, Table 1
    log_std_min: float = -5.0  # cleanrl / pytorch_sac (LOG_STD_MIN)
    log_std_max: float = 2.0  # cleanrl / pytorch_sac (LOG_STD_MAX)
    replay_capacity: int = 1_000_000  # SAC paper, Table 1
    initial_random_steps: int = 5_000  # cleanrl learning_starts (online only)


class SACCURLAgent(Checkpointable):
    """SAC with a CURL-trained pixel encoder, or SAC on states; the ``Agent`` of
    ``baselines.contract``."""

    def __init__(
        self,
        config: SACCURLConfig,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: torch.device | str,
    ) -> None:
        self.config, self.action_dim = config, action_dim
        self.device = torch.device(device)
        cfg = config
        # CURL (its loss, its W, the positive crop) exists on pixels only.
        self.curl = obs_kind_of(obs_shape) == "pixels"
        self.augment = make_augment(obs_shape, cfg.aug_pad)
        self.encoder = make_encoder(obs_shape, cfg.feature_dim, cfg.num_layers, cfg.num_filters)
        feature_dim = self.encoder.feature_dim
        self.critic = DoubleQ(feature_dim, action_dim, cfg.hidden_dim, cfg.hidden_depth)
        self.actor = SquashedGaussianActor(
            self.encoder.conv.repr_dim,
            cfg.feature_dim,
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
            self.curl_w = nn.Parameter(torch.rand(cfg.feature_dim, cfg.feature_dim))
            self.curl_w.data = self.curl_w.data.to(self.device)
            critic_groups.append({"params": [self.curl_w], "lr": cfg.curl_lr})
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
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.config.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

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
            soft_update(self.encoder, self.encoder_target, cfg.encoder_tau)
        return {name: value.detach().float() for name, value in metrics.items()}

    def losses(
        self,
        batch: TransitionBatch,
        obs: torch.Tensor,
        next_obs: torch.Tensor,
        positive: torch.Tensor,
        with_actor: bool,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """SAC-CURL's whole loss, every term at the parameters the update starts from, in the
        order it is computed: the soft TD target, the critic's regression on it, CURL, and
        (``with_actor``) the actor and the temperature.

        Returns their sum (each term reaches only its own parameters) and the metrics. For a
        fixed ``with_actor`` there is no Python branching on tensors and no host sync, so
        ``torch.compile(fullgraph=True)`` captures it whole (``tests/test_baselines.py``)."""
        alpha = self.log_alpha.detach().exp()
        with self._autocast():
            target_q, _, z_positive = self.soft_td_target(batch, next_obs, positive, alpha)
            h, z, q1, q2 = self.critic_forward(obs, batch.action)
            critic_loss = double_q_loss(q1, q2, target_q)
            curl_loss = self.curl_loss(z, z_positive)
            metrics = self.critic_metrics(critic_loss, q1, curl_loss)
            if with_actor:
                actor_loss, alpha_loss, actor_metrics = self.actor_losses(h, z, alpha)
                metrics |= actor_metrics
        total = critic_loss + curl_loss
        if with_actor:
            total = total + actor_loss + alpha_loss
        return total, metrics

    # -- the pieces of the loss, named (CQL-CURL's loss uses them too) ---------------------------
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
        with self._autocast():
            mu, log_std = self.actor(self._conv(x))
            action = torch.tanh(mu) if deterministic else self.actor.sample(mu, log_std)[0]
        return action[0].float().cpu().numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> float:
        """The critic's estimate Q(s, pi(s)) for the deterministic action: min of the two heads
        (the value SAC bootstraps with). A soft Q: it includes the entropy bonus the TD target
        adds (``-alpha log pi`` per future step), which the environment's return does not."""
        x = torch.as_tensor(obs, device=self.device)[None]
        with self._autocast():
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
