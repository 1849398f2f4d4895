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
"""

from __future__ import annotations

import torch
from torch import nn


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


class ConvTrunk(nn.Module):
    """uint8 (B, C, H, W) -> float (B, repr_dim): scale, 4 conv layers, flatten (H, W, C).

    Each conv, the last included, is followed by a ReLU (CURL, DrQ-v2; the original CQL-CURL
    code has none after its last conv)."""

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        num_layers: int = 4,
        num_filters: int = 32,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(obs_shape[0], num_filters, 3, 2),
            nn.ReLU(inplace=True),
        ]
        for _ in range(num_layers - 1):
            layers += [nn.Conv2d(num_filters, num_filters, 3, 1), nn.ReLU(inplace=True)]
        self.convs = nn.Sequential(*layers)
        self.apply(orthogonal_init)
        self.to(memory_format=torch.channels_last)
        with torch.no_grad():
            self.repr_dim = int(
                self.forward(torch.zeros((1, *obs_shape), dtype=torch.uint8)).shape[-1]
            )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs / 255.0).contiguous(memory_format=torch.channels_last)
        return self.convs(x).permute(0, 2, 3, 1).flatten(1)


class Projection(nn.Module):
    """The encoder head: ``tanh(LayerNorm(Linear(h)))``. The tanh follows the original CQL-CURL
    code and DrQ-v2; CURL's actor and critic (``output_logits=True``) stop at the LayerNorm."""

    def __init__(self, repr_dim: int, feature_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(repr_dim, feature_dim)
        self.ln = nn.LayerNorm(feature_dim)
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
    ) -> None:
        super().__init__()
        self.conv = ConvTrunk(obs_shape, num_layers, num_filters)
        self.projection = Projection(self.conv.repr_dim, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.projection(self.conv(obs))
