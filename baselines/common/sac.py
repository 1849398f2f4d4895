"""SAC pieces shared by the SAC-family baselines: the tanh-Gaussian actor, the double critic,
the learned temperature and soft target updates (CURL's ``curl_sac.py`` conventions)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.encoder import Projection, orthogonal_init


def mlp(in_dim: int, hidden_dim: int, out_dim: int, depth: int = 2) -> nn.Sequential:
    """``depth`` hidden ReLU layers (2: CURL's actor trunk and Q functions; CORL's CQL: 3),
    orthogonally initialised."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True)]
        in_dim = hidden_dim
    net = nn.Sequential(*layers, nn.Linear(in_dim, out_dim))
    net.apply(orthogonal_init)
    return net


def squashed_sample(
    mu: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(mu + std * noise) and its log-density (CURL's ``gaussian_logprob`` + ``squash``).

    Shapes broadcast; the last dimension is the action; log-probs keep it as size 1.
    """
    pre_tanh = mu + noise * log_std.exp()
    log_prob = (-0.5 * noise.pow(2) - log_std).sum(-1, keepdim=True) - 0.5 * math.log(
        2 * math.pi
    ) * noise.shape[-1]
    action = torch.tanh(pre_tanh)
    log_prob = log_prob - torch.log(torch.relu(1 - action.pow(2)) + 1e-6).sum(-1, keepdim=True)
    return action, log_prob


def head_projection(repr_dim: int, feature_dim: int, pixels: bool) -> nn.Module:
    """A head's own encoder projection: CURL's ``fc -> LayerNorm -> tanh`` on conv features;
    the identity on states (no encoder to project)."""
    return Projection(repr_dim, feature_dim) if pixels else nn.Identity()


class SquashedGaussianActor(nn.Module):
    """CURL's actor: its own encoder projection on the (detached) shared conv output, an MLP,
    a tanh-squashed Gaussian with ``log_std`` squashed into [log_std_min, log_std_max].

    On states (``pixels=False``) the projection is the identity: the MLP sees the state. Its
    layers are then named as the behaviour policies' actor (``trunk.0``, ``trunk.2``...)."""

    def __init__(
        self,
        repr_dim: int,
        feature_dim: int,
        hidden_dim: int,
        action_dim: int,
        log_std_min: float = -10.0,
        log_std_max: float = 2.0,
        depth: int = 2,
        pixels: bool = True,
    ) -> None:
        super().__init__()
        self.projection = head_projection(repr_dim, feature_dim, pixels)
        in_dim = feature_dim if pixels else repr_dim
        self.trunk = mlp(in_dim, hidden_dim, 2 * action_dim, depth)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Conv features (B, repr_dim) -> pre-tanh mean and log std, each (B, action_dim)."""
        mu, log_std = self.trunk(self.projection(h)).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (log_std + 1)
        return mu, log_std

    def sample(
        self, mu: torch.Tensor, log_std: torch.Tensor, num_samples: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised actions and log-probs: (..., A), (..., 1); or with ``num_samples``
        n, (..., n, A), (..., n, 1). Noise comes from torch's global RNG."""
        if num_samples is not None:
            mu, log_std = mu.unsqueeze(-2), log_std.unsqueeze(-2)
            noise = torch.randn(
                (*mu.shape[:-2], num_samples, mu.shape[-1]), device=mu.device, dtype=mu.dtype
            )
        else:
            noise = torch.randn_like(mu)
        return squashed_sample(mu, log_std, noise)


class DoubleQ(nn.Module):
    """Two Q heads on (features, action), CURL's ``QFunction`` x 2."""

    def __init__(
        self,
        feature_dim: int,
        action_dim: int,
        hidden_dim: int,
        depth: int = 2,
    ) -> None:
        super().__init__()
        self.q1 = mlp(feature_dim + action_dim, hidden_dim, 1, depth)
        self.q2 = mlp(feature_dim + action_dim, hidden_dim, 1, depth)

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (..., F), action (..., A) -> Q1, Q2 each (..., 1); leading dims broadcast."""
        if z.shape[:-1] != action.shape[:-1]:
            z = z.expand(*action.shape[:-1], z.shape[-1])
        za = torch.cat([z, action], dim=-1)
        if za.dim() == 2:
            return self.q1(za), self.q2(za)
        # nn.Linear on (B, N, F) (CQL's sampled actions) is ~25% slower on the CPU than on the
        # same rows as one (B * N, F) matrix, with bit-equal results: flatten, then restore.
        flat = za.reshape(-1, za.shape[-1])
        shape = (*za.shape[:-1], 1)
        return self.q1(flat).reshape(shape), self.q2(flat).reshape(shape)


@torch.no_grad()
def soft_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, parameters only (one fused kernel)."""
    target_params = list(target.parameters())
    if target_params:  # the state track's identity encoder has none
        torch._foreach_lerp_(target_params, list(online.parameters()), tau)


def target_entropy(action_dim: int) -> float:
    """SAC's default target entropy, -|A| (CURL)."""
    return -float(action_dim)


# -- losses (pure functions, tested on hand-built inputs) -------------------------------------
def td_target(
    target_q1: torch.Tensor,
    target_q2: torch.Tensor,
    next_log_pi: torch.Tensor,
    alpha: torch.Tensor,
    reward: torch.Tensor,
    not_done: torch.Tensor,
    discount: float,
) -> torch.Tensor:
    """SAC's soft TD target r + gamma * not_done * (min(Q1', Q2') - alpha log pi(a'|s')), (B, 1)."""
    soft_value = torch.min(target_q1, target_q2).float() - alpha * next_log_pi.float()
    return reward + not_done * discount * soft_value


def double_q_loss(q1: torch.Tensor, q2: torch.Tensor, target_q: torch.Tensor) -> torch.Tensor:
    """Both Q heads' mean squared error to one target (computed in fp32)."""
    return F.mse_loss(q1.float(), target_q) + F.mse_loss(q2.float(), target_q)
