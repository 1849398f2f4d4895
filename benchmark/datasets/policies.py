"""The behaviour policies the datasets are collected with: loading, acting, saving.

A checkpoint in ``datasets/policies/`` holds a state SAC actor's weights (its ``trunk.0``,
``trunk.2``, ``trunk.4`` layers: 24 -> 256 -> 256 -> 2 x 6), its config (only ``log_std_min`` and
``log_std_max`` are read) and its dims. Collection acts through :class:`NumpyActor`, the actor's
forward pass in numpy with noise from a numpy Generator, so a dataset is reproducible from its
data seed; the recipes' digests depend on this arithmetic: change it only with new dataset
versions. ``python -m benchmark.datasets train-behaviour`` (``train_behaviour.py``) trains
new policies; this module needs torch only to read and write checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.atomic import atomic_write
from benchmark.datasets.recipes import REPO_ROOT

POLICY_DIR = REPO_ROOT / "datasets" / "policies"
_LAYER_KEY = re.compile(r"trunk\.(\d+)\.(weight|bias)")


class CheckpointError(RuntimeError):
    """A behaviour-policy checkpoint is missing or cannot be read."""


class NumpyActor:
    """A tanh-Gaussian actor's forward pass in numpy (about 10x faster per call than torch for
    one state): ReLU MLP -> mean and raw log std; log std squashed into [min, max] by tanh, as
    ``baselines.common.sac.SquashedGaussianActor`` does."""

    def __init__(
        self, layers: list[tuple[np.ndarray, np.ndarray]], log_std_bounds: tuple[float, float]
    ) -> None:
        self.layers = layers  # (weight (out, in), bias (out,)) per Linear layer, float32
        self.log_std_min, self.log_std_max = log_std_bounds

    @classmethod
    def from_state_dict(
        cls, actor_state: Mapping[str, Any], log_std_bounds: tuple[float, float]
    ) -> NumpyActor:
        """From an actor's state dict (``trunk.<i>.weight``/``bias`` torch tensors, float32)."""
        layers: dict[int, dict[str, np.ndarray]] = {}
        for key, tensor in actor_state.items():
            match = _LAYER_KEY.fullmatch(key)
            if match is None:
                raise ValueError(
                    f"unexpected actor parameter {key!r} (expected trunk.<i>.weight/bias)"
                )
            layers.setdefault(int(match[1]), {})[match[2]] = tensor.detach().float().numpy()
        ordered = [layers[index] for index in sorted(layers)]
        return cls([(layer["weight"], layer["bias"]) for layer in ordered], log_std_bounds)

    def check_dims(self, obs_dim: int, action_dim: int) -> None:
        """Raise ValueError unless the layers chain ``obs_dim`` -> ... -> ``2 * action_dim``."""
        width = obs_dim
        for index, (weight, bias) in enumerate(self.layers):
            if weight.ndim != 2 or weight.shape[1] != width or bias.shape != weight.shape[:1]:
                raise ValueError(
                    f"layer {index}: weight {weight.shape}, bias {bias.shape} after width {width}"
                )
            width = weight.shape[0]
        if not self.layers or width != 2 * action_dim:
            raise ValueError(f"the actor outputs {width} values, expected 2 x {action_dim}")

    def mean_log_std(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(state, dtype=np.float32)
        for i, (weight, bias) in enumerate(self.layers):
            x = x @ weight.T + bias
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0)
        mean, raw = np.split(x, 2, axis=-1)
        low, high = self.log_std_min, self.log_std_max
        return mean, low + 0.5 * (high - low) * (np.tanh(raw) + 1.0)

    def act(
        self, state: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> np.ndarray:
        mean, log_std = self.mean_log_std(state)
        if deterministic:
            return np.tanh(mean).astype(np.float32)
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        return np.tanh(mean + np.exp(log_std) * noise).astype(np.float32)


def random_policy_action(rng: np.random.Generator, action_dim: int = 6) -> np.ndarray:
    """Uniform random action in [-1, 1], float32 (the ``random`` behaviour policy)."""
    return rng.uniform(-1.0, 1.0, size=action_dim).astype(np.float32)


def save_checkpoint(
    path: Path,
    actor_state: Mapping[str, Any],
    config: Mapping[str, Any],
    obs_dim: int,
    action_dim: int,
    meta: dict[str, Any],
) -> None:
    """The actor's weights only (float32, a few hundred KB), its config and dims (atomic)."""
    import torch

    state = {k: v.detach().clone().float().contiguous() for k, v in actor_state.items()}
    payload = {
        "actor": state,
        "config": dict(config),
        "obs_dim": obs_dim,
        "action_dim": action_dim,
        "meta": meta,
    }
    atomic_write(path, lambda file: torch.save(payload, file))


class BehaviourPolicy:
    """A trained SAC actor loaded from a checkpoint, acting with numpy noise (reproducible)."""

    def __init__(
        self, actor: NumpyActor, obs_dim: int, action_dim: int, meta: dict[str, Any]
    ) -> None:
        self._actor = actor
        self.obs_dim, self.action_dim, self.meta = obs_dim, action_dim, meta

    @classmethod
    def load(cls, path: str | Path) -> BehaviourPolicy:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"behaviour policy checkpoint not found: {path}")
        try:
            import torch

            payload = torch.load(path, map_location="cpu", weights_only=True)
            config = payload["config"]
            bounds = (float(config["log_std_min"]), float(config["log_std_max"]))
            actor = NumpyActor.from_state_dict(payload["actor"], bounds)
            actor.check_dims(payload["obs_dim"], payload["action_dim"])
        except Exception as error:  # any unreadable file: name the path, keep the cause
            raise CheckpointError(
                f"cannot read behaviour policy checkpoint {path}: {type(error).__name__}: {error}"
            ) from error
        return cls(actor, payload["obs_dim"], payload["action_dim"], payload["meta"])

    def act(
        self, state: np.ndarray, rng: np.random.Generator, deterministic: bool = False
    ) -> np.ndarray:
        """state float64 (obs_dim,) -> action float32 (action_dim,) in [-1, 1].

        The Gaussian noise is drawn from ``rng``, so collection is reproducible from a data seed.
        """
        return self._actor.act(state, rng, deterministic)
