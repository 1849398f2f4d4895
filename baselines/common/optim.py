"""The optimiser every baseline uses: Adam with its fused kernel.

Fused Adam does the whole update of all parameters in one kernel per tensor group instead of a
dozen elementwise passes per tensor; on the CPU it is about 10x faster than the default loop for
the ~7.5M parameters of a SAC-CURL agent (2M of them in each 39,200 x 50 encoder projection).
Same algorithm (Adam, Kingma and Ba 2015); results equal the loop's up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adam(
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
) -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr, betas, fused=True)``."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
