"""The CURL pixel encoder, shared by every pixel baseline.

Architecture (CURL, Srinivas et al. 2020, appendix and ``encoder.py`` of the reference code):
4 conv layers of 32 filters, 3x3, the first with stride 2, ReLU after each; then a linear
projection to ``feature_dim`` (50), layer norm and tanh. Which source each choice follows
(``docs/sources.md``, "Deliberate differences"):

- the ReLU after the *last* conv layer: CURL's ``encoder.py`` and DrQ-v2's ``Encoder`` (a ReLU
  after every conv); the original CQL-CURL code (``src/model/modules.py``) has none there;
- the tanh after the LayerNorm: the original CQL-CURL code, and DrQ-v2's ``Linear ->
  LayerNorm -> Tanh`` trunk. CURL's actor and critic build their encoders with
  ``output_logits=True`` (``curl_sac.py``), so CURL itself has no tanh there (its
  ``PixelEncoder`` applies one only with the default ``output_logits=False``, which neither
  uses). ``benchmarks/curl_reference.py`` copies the tanh too, so the speed reference shares
  this choice.

The flattened conv size is found with a
dummy forward (84x84 input: 32 x 35 x 35), never tabulated. Inputs are uint8 frame stacks,
scaled by 1/255 inside.

The encoder is split in two so that heads can share the conv trunk but keep their own
projection, as CURL's actor does (its conv weights are tied to the critic's, its ``fc`` and
``ln`` are its own, and it sees the conv output detached): :class:`ConvTrunk` is the conv part,
:class:`Projection` the ``fc -> LayerNorm -> tanh`` part, :class:`PixelEncoder` both.

The conv trunk runs in channels-last memory format (faster oneDNN/cuDNN kernels; the first,
9-channel stride-2 layer is 3x faster on the CPU), and the conv output is flattened in that
memory order, (H, W, C), which is a free view; CURL flattens (C, H, W). The two differ only by
a fixed permutation of the projection's input columns: the same function class, the same
(permutation-invariant) orthogonal initialisation distribution and, Adam being elementwise,
the same training dynamics; flattening (C, H, W) would copy the 20 MB conv output of a
128-batch forwards and its gradient backwards (measured: the fused SAC-CURL update is ~12%
faster on the CPU this way).

With ``members`` M (``baselines/common/members.py``) the modules hold M independent encoders:
the convs are grouped convolutions (M groups: member m's kernels see only member m's channels),
the input (M, B, C, H, W) is laid out as (B, M*C, H, W) and the output comes back as
(M, B, repr_dim), each member's flattened in the same (H, W, C) order; the projection is an
:class:`~baselines.common.members.EnsembleLinear` and a :class:`MemberLayerNorm`. Each member
is initialised as the unvectorised module is. ``members=None`` builds exactly the modules (and
draws exactly the random numbers) it always has.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.members import linear


def orthogonal_init(module: nn.Module) -> None:
    """CURL's ``weight_init``: orthogonal linear weights; delta-orthogonal conv kernels
    (only the kernel's centre is orthogonal, scaled by the ReLU gain); zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.orthogonal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        nn.init.zeros_(module.weight)
        centre = module.weight.shape[2] // 2
        nn.init.orthogonal_(
            module.weight.data[:, :, centre, centre], gain=nn.init.calculate_gain("relu")
        )
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def init_member_conv_(conv: nn.Conv2d, members: int) -> None:
    """``orthogonal_init`` per member of a grouped conv: member m's kernels are the output
    channels ``m * C_out .. (m + 1) * C_out`` (each a delta-orthogonal kernel of its own)."""
    out_channels = conv.out_channels // members
    centre = conv.weight.shape[2] // 2
    with torch.no_grad():
        nn.init.zeros_(conv.weight)
        for member in range(members):
            rows = slice(member * out_channels, (member + 1) * out_channels)
            nn.init.orthogonal_(
                conv.weight.data[rows, :, centre, centre], gain=nn.init.calculate_gain("relu")
            )
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


def conv(in_channels: int, out_channels: int, stride: int, members: int | None) -> nn.Conv2d:
    """A 3x3 conv, or with ``members`` M independent ones as one conv of M groups."""
    groups = members or 1
    return nn.Conv2d(groups * in_channels, groups * out_channels, 3, stride, groups=groups)


class ConvTrunk(nn.Module):
    """uint8 (B, C, H, W) -> float (B, repr_dim): scale, 4 conv layers, flatten (H, W, C).
    With ``members``: (M, B, C, H, W) -> (M, B, repr_dim), one grouped conv per layer.

    Each conv, the last included, is followed by a ReLU (CURL, DrQ-v2; the original CQL-CURL
    code has none after its last conv)."""

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        num_layers: int = 4,
        num_filters: int = 32,
        members: int | None = None,
    ) -> None:
        super().__init__()
        self.members = members
        layers: list[nn.Module] = [
            conv(obs_shape[0], num_filters, 2, members),
            nn.ReLU(inplace=True),
        ]
        for _ in range(num_layers - 1):
            layers += [conv(num_filters, num_filters, 1, members), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        if members is None:
            self.apply(orthogonal_init)
        else:
            for layer in self.convs:
                if isinstance(layer, nn.Conv2d):
                    init_member_conv_(layer, members)
        self.to(memory_format=torch.channels_last)
        lead = (1,) if members is None else (members, 1)
        with torch.no_grad():
            self.repr_dim = int(
                self.forward(torch.zeros((*lead, *obs_shape), dtype=torch.uint8)).shape[-1]
            )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.members is not None:
            return self._forward_members(obs)
        x = (obs / 255.0).contiguous(memory_format=torch.channels_last)
        return self.convs(x).permute(0, 2, 3, 1).flatten(1)

    def _forward_members(self, obs: torch.Tensor) -> torch.Tensor:
        """(M, B, C, H, W) -> (M, B, repr_dim): the members side by side as channel groups."""
        members, batch, channels, height, width = obs.shape
        # Gathered straight into channels-last order (B, H, W, M*C): one copy, then a view.
        grouped = obs.permute(1, 3, 4, 0, 2).reshape(batch, height, width, members * channels)
        x = (grouped.permute(0, 3, 1, 2) / 255.0).contiguous(memory_format=torch.channels_last)
        y = self.convs(x).permute(0, 2, 3, 1)  # (B, H', W', M * C'), a view in memory order
        y = y.unflatten(-1, (members, -1)).permute(3, 0, 1, 2, 4)  # (M, B, H', W', C')
        return y.flatten(2)


class MemberLayerNorm(nn.Module):
    """``members`` independent LayerNorms over the last (feature) dimension of (M, ..., F):
    normalisation as ``nn.LayerNorm``'s, the elementwise affine per member, shaped (M, 1, F)."""

    def __init__(self, members: int, features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.members, self.features, self.eps = members, features, eps
        self.weight = nn.Parameter(torch.ones(members, 1, features))
        self.bias = nn.Parameter(torch.zeros(members, 1, features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normalised = F.layer_norm(x, (self.features,), eps=self.eps)
        # (M, 1, F) -> (M, 1, ..., 1, F): broadcast over however many batch dims x has.
        shape = (self.members, *(1,) * (x.ndim - 2), self.features)
        return torch.addcmul(self.bias.view(shape), normalised, self.weight.view(shape))

    def extra_repr(self) -> str:
        return f"members={self.members}, features={self.features}, eps={self.eps}"


def layer_norm(features: int, members: int | None) -> nn.Module:
    """``nn.LayerNorm``, or its :class:`MemberLayerNorm` of ``members``."""
    return nn.LayerNorm(features) if members is None else MemberLayerNorm(members, features)


class Projection(nn.Module):
    """The encoder head: ``tanh(LayerNorm(Linear(h)))``. The tanh follows the original CQL-CURL
    code and DrQ-v2; CURL's actor and critic (``output_logits=True``) stop at the LayerNorm."""

    def __init__(self, repr_dim: int, feature_dim: int, members: int | None = None) -> None:
        super().__init__()
        self.fc = linear(repr_dim, feature_dim, members)  # EnsembleLinear: orthogonal per member
        self.ln = layer_norm(feature_dim, members)
        self.apply(orthogonal_init)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.ln(self.fc(h)))


class PixelEncoder(nn.Module):
    """The full CURL encoder: :class:`ConvTrunk` then :class:`Projection`."""

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        feature_dim: int = 50,
        num_layers: int = 4,
        num_filters: int = 32,
        members: int | None = None,
    ) -> None:
        super().__init__()
        self.conv = ConvTrunk(obs_shape, num_layers, num_filters, members)
        self.projection = Projection(self.conv.repr_dim, feature_dim, members)
        self.feature_dim = feature_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.projection(self.conv(obs))
