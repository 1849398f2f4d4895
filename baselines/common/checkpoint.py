"""Save/restore of an agent's parts: modules, optimisers, plain tensors (e.g. log temperature)
and counters, as one nested dict of tensors and numbers (``torch.save``-able)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def capture(parts: dict[str, Any]) -> dict[str, Any]:
    """``{name: module | optimizer | tensor | int | float}`` -> a state dict (tensors cloned)."""
    state: dict[str, Any] = {}
    for name, part in parts.items():
        if isinstance(part, nn.Module | torch.optim.Optimizer):
            state[name] = part.state_dict()
        elif isinstance(part, torch.Tensor):
            state[name] = part.detach().clone()
        elif isinstance(part, int | float):
            state[name] = part
        else:
            raise TypeError(f"cannot checkpoint {name!r} of type {type(part).__name__}")
    return state


def restore(parts: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """Load ``state`` into the modules, optimisers and tensors of ``parts`` (in place).

    Returns the numbers (counters) stored, which the caller assigns back itself. A missing or
    extra name is an error: a checkpoint of another baseline never half-loads.
    """
    if set(parts) != set(state):
        raise KeyError(f"checkpoint holds {sorted(state)}, agent expects {sorted(parts)}")
    numbers: dict[str, Any] = {}
    for name, part in parts.items():
        if isinstance(part, nn.Module | torch.optim.Optimizer):
            part.load_state_dict(state[name])
        elif isinstance(part, torch.Tensor):
            with torch.no_grad():
                part.copy_(state[name])
        else:
            numbers[name] = state[name]
    return numbers


class Checkpointable:
    """Mixin for agents: ``state_dict``/``load_state_dict`` from the agent's ``_parts()``
    (name -> module, optimiser, tensor or counter); counters are assigned back as attributes."""

    def _parts(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return capture(self._parts())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, value in restore(self._parts(), state).items():
            setattr(self, name, value)
