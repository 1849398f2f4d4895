"""Training metrics between two evaluations: averaged on the device, read once per evaluation.

Every update returns its metrics as 0-d tensors (or plain numbers) without reading them: a read
(``.item()``) would make the host wait for the device at every update. :class:`MetricsAccumulator`
adds them up where they live and reads all of them in one transfer when the harness evaluates.
Its sums are part of a checkpoint, so a resumed cell's averages equal an uninterrupted one's.

Tensors are recognised by what they do (``detach``), and torch is imported only to stack them:
the runner imports this module, and the commands that import the runner (``--help``, ``--plan``)
must start without torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class MetricsAccumulator:
    """Per-metric running sums and counts (metrics that only some updates return, such as the
    actor's every second update, are averaged over the updates that returned them)."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor | float] = {}
        self._counts: dict[str, int] = {}

    def add(self, metrics: dict[str, torch.Tensor | float]) -> None:
        for name, value in metrics.items():
            if _is_tensor(value):
                value = value.detach().float()
            self._sums[name] = self._sums[name] + value if name in self._sums else value
            self._counts[name] = self._counts.get(name, 0) + 1

    def __bool__(self) -> bool:
        return bool(self._counts)

    def means(self) -> dict[str, float]:
        """The averages since the last reset, sorted by name, read in one device transfer."""
        names = sorted(self._counts)
        tensors = [self._sums[name] for name in names]
        on_device = [t for t in tensors if _is_tensor(t)]
        # One stack on the device, one transfer (all metrics live on the training device).
        values = iter(_stack(on_device).cpu().tolist() if on_device else [])
        sums = [next(values) if _is_tensor(t) else float(t) for t in tensors]
        return {name: total / self._counts[name] for name, total in zip(names, sums, strict=True)}

    def reset(self) -> None:
        self._sums.clear()
        self._counts.clear()

    def state_dict(self) -> dict[str, Any]:
        sums = {k: v.cpu() if _is_tensor(v) else v for k, v in self._sums.items()}
        return {"sums": sums, "counts": dict(self._counts)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str) -> None:
        self._sums = {k: v.to(device) if _is_tensor(v) else v for k, v in state["sums"].items()}
        self._counts = dict(state["counts"])


def _is_tensor(value: object) -> bool:
    return hasattr(value, "detach")  # a tensor; metrics are otherwise plain numbers


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    import torch  # late: keeps torch out of --help and --plan (module docstring)

    return torch.stack(tensors)


def first_non_finite(means: dict[str, float]) -> str | None:
    """The name of the first metric whose average is NaN or infinite (a NaN anywhere in the
    window makes its sum NaN, so averages catch every diverged update)."""
    return next((name for name, value in means.items() if not math.isfinite(value)), None)
