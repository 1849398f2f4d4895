"""Vectorised cells: M independent agents ("members") trained as one model.

A member is one cell (a seed, on one dataset). Its networks are slices of ensemble layers with a
leading member dimension: :class:`EnsembleLinear` holds M weight matrices and multiplies M
batches in one batched matmul, so M small networks cost one kernel launch per layer instead of
M (on small state networks, launches and Python, not arithmetic, are most of an update's time).

The members never mix: every batch, sampled action, noise draw, temperature and target is the
member's own; each loss is reduced per member (:func:`member_mean`, shape (M,)) and the update
backpropagates their *sum*, so member m's gradient is exactly the gradient of its own loss, as
if it trained alone. Adam is elementwise, so each member's optimiser state is its own slices of
the shared tensors. ``members=None`` is the unvectorised agent: the reductions are the plain
scalar ones (bit for bit what the baselines computed before members existed).

Tensors of a vectorised agent carry the member dimension first: observations (M, B, D) or
frame stacks (M, B, C, H, W), actions (M, B, A), Q values (M, B, 1), metrics (M,).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class EnsembleLinear(nn.Module):
    """``members`` independent linear layers: (M, ..., in) -> (M, ..., out) in one bmm."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(members, 1, out_features))
        self.orthogonal_()

    @torch.no_grad()
    def orthogonal_(self) -> None:
        """Each member orthogonally initialised as an ``nn.Linear`` (CURL's ``weight_init``)."""
        for member in range(self.members):
            matrix = torch.empty(self.out_features, self.in_features)
            nn.init.orthogonal_(matrix)
            self.weight[member] = matrix.T
        self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(self.members, -1, self.in_features)
        out = torch.baddbmm(self.bias, flat, self.weight)
        return out.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"members={self.members}, in={self.in_features}, out={self.out_features}"


def linear(in_features: int, out_features: int, members: int | None) -> nn.Module:
    """``nn.Linear``, or its :class:`EnsembleLinear` of ``members``."""
    if members is None:
        return nn.Linear(in_features, out_features)
    return EnsembleLinear(members, in_features, out_features)


def member_mean(x: torch.Tensor, members: int | None) -> torch.Tensor:
    """The mean of each member's elements: a scalar unvectorised, (M,) with members."""
    return x.mean() if members is None else x.flatten(1).mean(1)


def member_mse(a: torch.Tensor, b: torch.Tensor, members: int | None) -> torch.Tensor:
    """Mean squared error per member (``F.mse_loss`` unvectorised)."""
    return F.mse_loss(a, b) if members is None else (a - b).pow(2).flatten(1).mean(1)


def member_scalar(value: float, members: int | None, device: torch.device) -> torch.Tensor:
    """A learnable-scalar initial value: shape () unvectorised, (M, 1, 1) with members (so it
    broadcasts against (M, B, 1) per-member tensors)."""
    shape = () if members is None else (members, 1, 1)
    return torch.full(shape, float(value), device=device)


def per_member(x: torch.Tensor, members: int | None) -> torch.Tensor:
    """A per-member quantity as a metric: () unvectorised, (M,) with members."""
    return x.reshape(()) if members is None else x.reshape(members)


def as_batch(obs: np.ndarray, members: int | None, device: torch.device) -> torch.Tensor:
    """An acting observation as a batch of one: (1, ...) unvectorised; with members the M
    observations (one per member, (M, ...)) as (M, 1, ...)."""
    x = torch.as_tensor(obs, device=device)
    return x[None] if members is None else x[:, None]


def first(x: torch.Tensor, members: int | None) -> torch.Tensor:
    """The batch-of-one result back: (...) unvectorised, (M, ...) with members."""
    return x[0] if members is None else x[:, 0]


def check_members(members: int | None, obs_shape: tuple[int, ...]) -> None:
    """``members`` is None or a positive count, on a state (D,) or pixel (C, H, W) observation
    (pixels: the conv trunk is a grouped convolution, ``baselines/common/encoder.py``)."""
    if members is None:
        return
    if members < 1:
        raise ValueError(f"members must be >= 1, got {members}")
    if len(obs_shape) not in (1, 3):
        raise ValueError(
            f"vectorised cells (members={members}) need a state (D,) or pixel (C, H, W) "
            f"observation; got shape {obs_shape}"
        )


LOG_2PI = math.log(2 * math.pi)
