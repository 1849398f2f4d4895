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

import torch
from torch import nn

from baselines.common.augment import random_shift
from baselines.common.encoder import ConvTrunk, PixelEncoder
from baselines.contract import obs_kind_of

Augment = Callable[[torch.Tensor], torch.Tensor]


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


def make_encoder(
    obs_shape: Sequence[int],
    feature_dim: int,
    num_layers: int,
    num_filters: int,
) -> PixelEncoder | StateEncoder:
    """The encoder of the observation kind (the conv arguments apply to pixels only)."""
    if obs_kind_of(obs_shape) == "state":
        return StateEncoder(obs_shape)
    shape = tuple(obs_shape)
    return PixelEncoder(shape, feature_dim, num_layers, num_filters)  # type: ignore[arg-type]


def make_trunk(
    obs_shape: Sequence[int], num_layers: int, num_filters: int
) -> ConvTrunk | StateTrunk:
    """The trunk alone, for heads that keep their own projection (BC)."""
    if obs_kind_of(obs_shape) == "state":
        return StateTrunk(obs_shape)
    return ConvTrunk(tuple(obs_shape), num_layers, num_filters)  # type: ignore[arg-type]


def make_augment(obs_shape: Sequence[int], pad: int) -> Augment:
    """Random shift by up to ``pad`` pixels for frames; the identity for states."""
    if obs_kind_of(obs_shape) == "state":
        return _identity
    return lambda obs: random_shift(obs, pad)


def _identity(obs: torch.Tensor) -> torch.Tensor:
    return obs
