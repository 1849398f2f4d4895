"""The observation path: the one place where the pixel and the state track differ.

Every baseline keeps one implementation of its losses and update; what it sees is built here,
once, from the observation shape the harness hands it:

- ``pixels`` (uint8 stacks, (9, 84, 84)): CURL's conv trunk and projection
  (:class:`~baselines.common.encoder.PixelEncoder`), DrQ/CURL random-shift augmentation, and
  the CURL loss where the algorithm has one;
- ``state`` (float32 vectors, (24,), normalised by the dataset's mean and std): the identity
  trunk, so the heads' own MLPs (CORL's 256-unit networks) are the whole network; no
  augmentation and no CURL (there is nothing to crop, and the state is already compact).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from baselines.common.augment import random_shift
from baselines.common.encoder import ConvTrunk, PixelEncoder
from baselines.contract import Count, NonNegativeInt, obs_kind_of

Augment = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EncoderFields:
    """The pixel encoder's fields: only pixel configs carry them (a state config has no encoder).

    CURL (paper, Table 3), DrQ-v2 and V-D4RL all use these values (docs/sources.md)."""

    feature_dim: Count = 50  # CURL paper, Table 3 (latent dimension); V-D4RL cfgs/config.yaml
    num_layers: Count = 4  # CURL paper, Table 3; DrQ-v2 encoder: 4 conv layers
    num_filters: Count = 32  # CURL paper, Table 3; DrQ-v2 encoder: 32 filters
    aug_pad: NonNegativeInt = 4  # DrQ / DrQ-v2 RandomShiftsAug(pad=4): 84x84 frames (augment.py)


def encoder_fields(obs_shape: Sequence[int], config: Any) -> EncoderFields | None:
    """``config``'s encoder fields for a pixel observation; None for a state."""
    if obs_kind_of(obs_shape) == "state":
        return None
    if not isinstance(config, EncoderFields):
        raise ValueError(
            f"{type(config).__name__} has no pixel encoder fields (feature_dim, num_layers, "
            f"num_filters, aug_pad), so it cannot see pixels of shape {tuple(obs_shape)}: "
            "use the baseline's pixel config, or a state observation"
        )
    return config


class StateTrunk(nn.Module):
    """The state track's trunk: the normalised state itself (``repr_dim`` = its size)."""

    def __init__(self, obs_shape: Sequence[int]) -> None:
        super().__init__()
        self.repr_dim = int(obs_shape[0])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs


class StateEncoder(nn.Module):
    """:class:`PixelEncoder`'s interface for states: ``conv`` is the identity trunk and
    ``projection`` the identity, so ``feature_dim`` is the state's size."""

    def __init__(self, obs_shape: Sequence[int]) -> None:
        super().__init__()
        self.conv = StateTrunk(obs_shape)
        self.projection = nn.Identity()
        self.feature_dim = self.conv.repr_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs


def make_encoder(obs_shape: Sequence[int], config: Any) -> PixelEncoder | StateEncoder:
    """The encoder of the observation kind (pixels: from ``config``'s :class:`EncoderFields`)."""
    if (pixel := encoder_fields(obs_shape, config)) is None:
        return StateEncoder(obs_shape)
    shape: tuple[int, int, int] = tuple(obs_shape)  # type: ignore[assignment]
    return PixelEncoder(shape, pixel.feature_dim, pixel.num_layers, pixel.num_filters)


def make_trunk(obs_shape: Sequence[int], config: Any) -> ConvTrunk | StateTrunk:
    """The trunk alone, for heads that keep their own projection (BC)."""
    if (pixel := encoder_fields(obs_shape, config)) is None:
        return StateTrunk(obs_shape)
    shape: tuple[int, int, int] = tuple(obs_shape)  # type: ignore[assignment]
    return ConvTrunk(shape, pixel.num_layers, pixel.num_filters)


def make_augment(obs_shape: Sequence[int], config: Any) -> Augment:
    """Random shift by up to ``aug_pad`` pixels for frames; the identity for states."""
    if (pixel := encoder_fields(obs_shape, config)) is None:
        return _identity
    pad = pixel.aug_pad
    return lambda obs: random_shift(obs, pad)


def head_feature_dim(obs_shape: Sequence[int], config: Any) -> int:
    """The width a head's projection maps conv features to (pixels); the state's size (states,
    where the projection is the identity)."""
    pixel = encoder_fields(obs_shape, config)
    return int(obs_shape[0]) if pixel is None else pixel.feature_dim


def _identity(obs: torch.Tensor) -> torch.Tensor:
    return obs
