"""Behaviour cloning from pixels (V-D4RL's BC baseline, Lu et al. 2022).

The shared CURL/DrQ conv trunk and an actor head (projection ``Linear -> LayerNorm -> tanh``,
then an MLP), trained end to end on randomly shifted frames to reproduce the dataset's actions.

Two policy kinds:
- ``deterministic`` (default): ``a = tanh(mu(s))``, loss = mean squared error to the dataset
  action. V-D4RL's BC computes the MSE on an action sampled with DrQ-v2's clipped exploration
  noise (std scheduled 1.0 -> 0.1, clip 0.3); we clone the mean, the zero-noise case, so that
  the acted and the trained action are the same.
- ``gaussian``: a tanh-squashed Gaussian (SAC's actor), loss = negative log-likelihood of the
  dataset action (clipped to +-(1 - 1e-6) before ``atanh``).

On states (CORL's ``any_percent_bc.py``) the same agent runs on the state observation path:
identity trunk, no augmentation, a 256-256 MLP with a tanh output and the MSE loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from baselines.common.checkpoint import Checkpointable
from baselines.common.observation import (
    EncoderFields,
    head_feature_dim,
    make_augment,
    make_trunk,
)
from baselines.common.optim import adam, bf16_autocast
from baselines.common.sac import SquashedGaussianActor, squashed_sample
from baselines.contract import Count, Positive, TransitionBatch, obs_kind_of


@dataclass(frozen=True)
class BCFields:
    """What BC on pixels and on states share. Defaults: V-D4RL's ``drqbc`` code (``cfgs/``)."""

    batch_size: Count = 256  # V-D4RL cfgs/config.yaml
    lr: Positive = 3e-4  # V-D4RL cfgs/task/offline_dmc.yaml (overrides config.yaml's 1e-4)
    hidden_dim: Count = 1024  # V-D4RL cfgs/algo/bc.yaml
    policy: Literal["deterministic", "gaussian"] = "deterministic"  # VORB: MSE or NLL (above)
    log_std_min: float = -10.0  # CURL actor bounds (gaussian policy only)
    log_std_max: float = 2.0  # CURL actor bounds (gaussian policy only)
    # bf16 autocast around the forward passes (VORB; off by default). Measured on this AVX512-BF16
    # CPU, one thread: 0.59 s an update at batch 256 against 1.42 s in fp32 (2.4x); the loss
    # follows fp32's (tests/test_baselines.py). The demo profile turns it on.
    amp: bool = False


@dataclass(frozen=True)
class BCConfig(EncoderFields, BCFields):
    """Pixel behaviour cloning: :class:`BCFields` and the pixel encoder's fields."""


@dataclass(frozen=True)
class BCStateConfig(BCFields):
    """BC on states. Defaults: CORL's ``algorithms/offline/any_percent_bc.py`` (256-256 MLP,
    tanh output, MSE, Adam 3e-4, batch 256); sources in docs/sources.md. Kept equal to the
    pixel track on purpose: the deterministic policy and its MSE loss, batch and lr."""

    hidden_dim: int = 256  # CORL any_percent_bc.py: 256-256 actor


class BCAgent(Checkpointable):
    """BC from pixels or states; the ``Agent`` of
    ``baselines.contract``."""

    def __init__(
        self,
        config: BCConfig | BCStateConfig,
        obs_shape: tuple[int, ...],
        action_dim: int,
        device: torch.device | str,
    ) -> None:
        if config.policy not in ("deterministic", "gaussian"):
            raise ValueError(f"policy must be 'deterministic' or 'gaussian', got {config.policy!r}")
        self.config, self.device = config, torch.device(device)
        self.augment = make_augment(obs_shape, config)
        self.conv = make_trunk(obs_shape, config).to(self.device)
        self.actor = SquashedGaussianActor(
            self.conv.repr_dim,
            head_feature_dim(obs_shape, config),
            config.hidden_dim,
            action_dim,
            config.log_std_min,
            config.log_std_max,
            pixels=obs_kind_of(obs_shape) == "pixels",
        ).to(self.device)
        self.params = [*self.conv.parameters(), *self.actor.parameters()]
        self.opt = adam(self.params, lr=config.lr)
        self.updates = 0

    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        with bf16_autocast(self.config.amp, self.device):
            mu, log_std = self.actor(self.conv(self.augment(batch.obs)))
        mu, log_std = mu.float(), log_std.float()
        if self.config.policy == "deterministic":
            loss = F.mse_loss(torch.tanh(mu), batch.action)
        else:
            loss = gaussian_nll(mu, log_std, batch.action)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.updates += 1
        return {"bc_loss": loss.detach()}  # on the device: read once per evaluation

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        with bf16_autocast(self.config.amp, self.device):
            mu, log_std = self.actor(self.conv(torch.as_tensor(obs, device=self.device)[None]))
        mu, log_std = mu.float(), log_std.float()
        if deterministic or self.config.policy == "deterministic":
            return torch.tanh(mu)[0].cpu().numpy()
        return self.actor.sample(mu, log_std)[0][0].cpu().numpy()

    def _parts(self) -> dict[str, Any]:
        return {"conv": self.conv, "actor": self.actor, "opt": self.opt, "updates": self.updates}


def gaussian_nll(mu: torch.Tensor, log_std: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``action`` under tanh(N(mu, exp(log_std)))."""
    bound = 1.0 - 1e-6
    pre_tanh = torch.atanh(action.clamp(-bound, bound))
    _, log_prob = squashed_sample(mu, log_std, (pre_tanh - mu) / log_std.exp())
    return -log_prob.mean()
