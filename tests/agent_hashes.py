"""sha256 of every built-in baseline's parameters and optimiser state after 3 updates.

Run as a script (``python tests/agent_hashes.py``), it prints ``{name: sha256}`` as JSON; the
invariant test (``tests/test_invariants.py``) runs it in a subprocess whose CPU dispatch it
chooses. Everything an update reads is fixed here: the seed (0), the config (the registered
defaults, shrunk), and one batch of 8 real transitions of the pixel walker
(``tests/data/walker_episode.npz``: 12 steps of uniform random actions from seed 7, rendered by
the pixel walker) gathered by hand, so the hashes depend on the agents and nothing else.
Each update sees the same batch (its augmentations and sampled actions differ: the RNG moves).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "data" / "walker_episode.npz"
INDICES = [0, 1, 3, 5, 6, 8, 10, 11]  # transitions of the 12-step episode in the batch
SMALL = {"batch_size": 8, "hidden_dim": 32, "num_filters": 8}
UPDATES = 3


def batch_arrays(kind: str) -> dict[str, np.ndarray]:
    """The batch as arrays: frame stacks of 3 (the first frame repeated at the start) or states
    normalised by the episode's mean and std; ``not_done`` is 1 (no termination)."""
    data = np.load(FIXTURE)
    if kind == "state":
        states = data["states"].astype(np.float32)
        mean, std = states[:-1].mean(0), states[:-1].std(0) + 1e-3
        obs = (states - mean) / std
        now, then = obs[INDICES], obs[[i + 1 for i in INDICES]]
    else:
        frames = data["frames"].transpose(0, 3, 1, 2)  # (T + 1, 3, 84, 84)

        def stack(t: int) -> np.ndarray:
            return np.concatenate([frames[max(t - k, 0)] for k in (2, 1, 0)])

        now = np.stack([stack(i) for i in INDICES])
        then = np.stack([stack(i + 1) for i in INDICES])
    return {
        "obs": now,
        "action": data["actions"][INDICES],
        "reward": data["rewards"][INDICES, None],
        "next_obs": then,
        "not_done": np.ones((len(INDICES), 1), np.float32),
    }


def tensor_leaves(state: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf of a nested state dict by path, in a fixed order."""
    if isinstance(state, dict):
        return [
            leaf
            for key in sorted(state, key=str)
            for leaf in tensor_leaves(state[key], f"{prefix}/{key}")
        ]
    if isinstance(state, list | tuple):
        return [leaf for i, v in enumerate(state) for leaf in tensor_leaves(v, f"{prefix}/{i}")]
    return [(prefix, state)]


def digest(state: dict[str, Any]) -> str:
    """sha256 over each leaf's path, then its dtype, shape and bytes (tensors) or repr."""
    sha = hashlib.sha256()
    for path, leaf in tensor_leaves(state):
        sha.update(path.encode())
        if isinstance(leaf, torch.Tensor):
            leaf = leaf.detach().cpu().contiguous()
            sha.update(f"{leaf.dtype}{tuple(leaf.shape)}".encode())
            sha.update(leaf.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            sha.update(repr(leaf).encode())
    return sha.hexdigest()


# Variants hashed beside the registered defaults: name -> (baseline, config fields it changes).
VARIANTS = {"cql-curl+lagrange": ("cql-curl", {"with_lagrange": True, "target_action_gap": 1.0})}


def agent_hash(name: str) -> str:
    from benchmark.harness import registry

    base, changes = VARIANTS.get(name, (name, {}))
    spec = registry.get(base)
    config = spec.default_config()
    fields = {f.name for f in dataclasses.fields(config)}
    config = dataclasses.replace(config, **{k: v for k, v in SMALL.items() if k in fields})
    config = dataclasses.replace(config, **changes)
    arrays = batch_arrays(spec.obs_kind)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    agent = spec.agent_class()(config, arrays["obs"].shape[1:], arrays["action"].shape[1], "cpu")
    batch_type = type_of_batch()
    batch = batch_type(
        *(torch.as_tensor(arrays[k]) for k in ("obs", "action", "reward", "next_obs", "not_done"))
    )
    for _ in range(UPDATES):
        agent.update(batch)
    return digest(agent.state_dict())


def type_of_batch() -> type:
    """The batch type, wherever it lives (it moved to the contract)."""
    try:
        from baselines.contract import TransitionBatch
    except ImportError:
        from benchmark.data.sampler import TransitionBatch
    return TransitionBatch


def main() -> None:
    # VORB_CODE: the checkout whose agents are hashed (a frozen reference copy), else this one.
    sys.path.insert(0, os.environ.get("VORB_CODE", str(REPO)))
    torch.set_num_threads(1)
    from benchmark.harness import registry

    names = [n for n in registry.names() if not registry.get(n).external] + list(VARIANTS)
    print(json.dumps({name: agent_hash(name) for name in (sys.argv[1:] or names)}, indent=1))


if __name__ == "__main__":
    main()
