"""The plain CORL-style references as VORB baselines, for the state track's parity check.

``benchmarks/corl_reference.py`` writes BC and TD3+BC the way CORL's single-file scripts do
(``nn.Sequential`` MLPs, separate twin critics with an optimiser each, default Adam, ``F.mse_loss``,
per-parameter soft updates). Wrapped here in the agent contract, they train through VORB's own
data (the state-only builds, normalised as VORB normalises them), sampler, seeding, evaluation
and results, so a difference between ``td3bc-state`` and ``td3bc-corl-ref`` (or ``bc-state`` and
``bc-corl-ref``) on the same datasets and seeds can only come from the update code:

    python -m benchmark.run --profile state --seeds 3 --results runs/reference-state \
        --algos benchmarks.corl_parity:ReferenceTD3BCAgent,benchmarks.corl_parity:ReferenceBCAgent \
        --datasets vorb/walker-walk/medium-v0 vorb/walker-walk/expert-v0

The configs are VORB's registered ones (same sizes, learning rates and TD3+BC choices), so the
two sides cannot drift apart in a hyperparameter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from baselines.bc import BCStateConfig
from baselines.td3bc import TD3BCStateConfig
from benchmark.data.sampler import TransitionBatch
from benchmarks.corl_reference import ReferenceBC, ReferenceTD3BC


def _as_state(obs: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(obs, dtype=torch.float32, device=device).unsqueeze(0)


class _ReferenceAgent:
    """What both references share: the actor acts, ``_parts()`` is what a checkpoint holds."""

    obs_kind = "state"
    reference: ReferenceBC | ReferenceTD3BC
    device: torch.device

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return self.reference.update(batch)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        return self.reference.actor(_as_state(obs, self.device))[0].cpu().numpy()

    def _parts(self) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {name: part.state_dict() for name, part in self._parts().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, part in self._parts().items():
            part.load_state_dict(state[name])


class ReferenceBCAgent(_ReferenceAgent):
    """CORL's ``any_percent_bc.py`` update (``ReferenceBC``) in VORB's agent contract."""

    Config = BCStateConfig
    name = "bc-corl-ref"
    summary = "BC on states as CORL's any_percent_bc.py writes it (parity reference)"

    def __init__(
        self, config: BCStateConfig, obs_shape: tuple[int, ...], action_dim: int, device: str
    ) -> None:
        self.device = torch.device(device)
        self.reference = ReferenceBC(config, obs_shape[0], action_dim)
        self.reference.actor.to(self.device)

    def _parts(self) -> dict[str, Any]:
        return {"actor": self.reference.actor, "actor_opt": self.reference.actor_optimizer}


class ReferenceTD3BCAgent(_ReferenceAgent):
    """CORL's ``td3_bc.py`` update (``ReferenceTD3BC``: the actor on the first critic, as
    published) in VORB's agent contract."""

    Config = TD3BCStateConfig
    name = "td3bc-corl-ref"
    summary = "TD3+BC on states as CORL's td3_bc.py writes it (parity reference)"

    def __init__(
        self, config: TD3BCStateConfig, obs_shape: tuple[int, ...], action_dim: int, device: str
    ) -> None:
        self.device = torch.device(device)
        self.reference = ReferenceTD3BC(config, obs_shape[0], action_dim)
        for module in self._modules().values():
            module.to(self.device)

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> float:
        """Q(s, pi(s)) as VORB's TD3+BC reports it: the min of the two critics."""
        state = _as_state(obs, self.device)
        action = self.reference.actor(state)
        ref = self.reference
        return float(torch.min(ref.critic_1(state, action), ref.critic_2(state, action)).item())

    def _modules(self) -> dict[str, nn.Module]:
        ref = self.reference
        return {
            "actor": ref.actor,
            "actor_target": ref.actor_target,
            "critic_1": ref.critic_1,
            "critic_2": ref.critic_2,
            "critic_1_target": ref.critic_1_target,
            "critic_2_target": ref.critic_2_target,
        }

    def _parts(self) -> dict[str, Any]:
        ref = self.reference
        return self._modules() | {
            "actor_opt": ref.actor_optimizer,
            "critic_1_opt": ref.critic_1_optimizer,
            "critic_2_opt": ref.critic_2_optimizer,
        }

    def state_dict(self) -> dict[str, Any]:
        return super().state_dict() | {"total_it": self.reference.total_it}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.reference.total_it = state["total_it"]
