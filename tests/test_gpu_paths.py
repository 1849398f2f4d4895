"""GPU-only checks (skipped without CUDA): each fast-path variant of the update learns like eager
fp32: the same seed, the same batches, ``CHECK_UPDATES`` updates, the mean of each loss over the
last ``WINDOW`` updates within ``TOLERANCE`` (relative). Speed: ``benchmarks/test_bench_gpu.py``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from benchmarks.test_bench_gpu import NAMES, batches, make_update, variant_context

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CHECK_UPDATES, WINDOW, TOLERANCE = 200, 50, 0.10


def loss_means(name: str, variant: str) -> dict[str, float]:
    update, data = make_update(name, variant), batches(CHECK_UPDATES, seed=1)
    history: list[dict[str, Any]] = []
    with variant_context(variant):
        for batch in data:
            history.append(update(batch))
    last = history[-WINDOW:]
    names = [key for key in last[-1] if key.endswith("loss")]
    return {
        key: float(torch.stack([torch.as_tensor(m[key]).float() for m in last if key in m]).mean())
        for key in names
    }


@pytest.mark.parametrize("variant", ["compile", "tf32", "bf16"])
@pytest.mark.parametrize("name", NAMES)
def test_variant_learns_like_eager_fp32(name: str, variant: str) -> None:
    reference, candidate = loss_means(name, "eager"), loss_means(name, variant)
    for key, value in reference.items():
        assert candidate[key] == pytest.approx(value, rel=TOLERANCE, abs=1e-3), key
