"""Vectorised members (``baselines/common/members.py``): M agents in one model that never mix.

A member trained inside the group must follow exactly the path it would follow alone (its
gradient is its own loss's), and one member's divergence must leave the others untouched.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from baselines.common.members import EnsembleLinear
from benchmark import registry
from benchmark.sampler import TransitionBatch

MEMBERS, BATCH, STATE_DIM, ACTION_DIM = 3, 16, 24, 6


def batch(members: int | None, seed: int = 0) -> TransitionBatch:
    generator = torch.Generator().manual_seed(seed)
    lead = () if members is None else (members,)
    draw = lambda *shape: torch.randn(*lead, BATCH, *shape, generator=generator)  # noqa: E731
    return TransitionBatch(
        obs=draw(STATE_DIM),
        action=torch.tanh(draw(ACTION_DIM)),
        reward=draw(1).abs(),
        next_obs=draw(STATE_DIM),
        not_done=torch.ones(*lead, BATCH, 1),
    )


def agent(name: str, members: int | None, seed: int = 0) -> object:
    spec = registry.get(name)
    config = dataclasses.replace(spec.default_config(), hidden_dim=32)
    torch.manual_seed(seed)
    return spec.agent_class()(config, (STATE_DIM,), ACTION_DIM, "cpu", members)


def copy_member_into(group: torch.nn.Module, member: int, alone: torch.nn.Module) -> None:
    """Member ``member``'s ensemble weights into the unvectorised network of the same shape."""
    layers = [m for m in group.modules() if isinstance(m, EnsembleLinear)]
    linears = [m for m in alone.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == len(linears) > 0
    with torch.no_grad():
        for layer, linear in zip(layers, linears, strict=True):
            linear.weight.copy_(layer.weight[member].T)
            linear.bias.copy_(layer.bias[member, 0])


def test_a_member_learns_exactly_as_it_would_alone() -> None:
    """BC on states has no randomness in its update: 20 updates of member 1 inside a group of
    3 equal 20 updates of a lone agent started from member 1's weights, on member 1's batches."""
    group, alone = agent("bc-state", MEMBERS), agent("bc-state", None)
    copy_member_into(group.actor, 1, alone.actor)
    for step in range(20):
        batches = batch(MEMBERS, seed=step)
        group_loss = group.update(batches)["bc_loss"]
        member_batch = TransitionBatch(*(t[1] for t in dataclasses.astuple(batches)))
        alone_loss = alone.update(member_batch)["bc_loss"]
        assert group_loss.shape == (MEMBERS,)
        torch.testing.assert_close(group_loss[1], alone_loss, rtol=1e-5, atol=1e-6)
    lone_weights = [m.weight for m in alone.actor.modules() if isinstance(m, torch.nn.Linear)]
    member_weights = [m.weight[1].T for m in group.actor.modules() if isinstance(m, EnsembleLinear)]
    for mine, theirs in zip(member_weights, lone_weights, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["bc-state", "td3bc-state", "sac-state-offline", "cql-state"])
def test_a_diverged_member_leaves_its_siblings_finite(name: str) -> None:
    group = agent(name, MEMBERS)
    with torch.no_grad():  # member 0's critic (or BC actor) blows up
        net = getattr(group, "critic", None) or group.actor
        first = next(m for m in net.modules() if isinstance(m, EnsembleLinear))
        first.weight[0] = float("nan")
    for step in range(4):
        metrics = group.update(batch(MEMBERS, seed=step))
    for metric, value in metrics.items():
        value = torch.as_tensor(value)
        if value.ndim:  # per-member metrics: members 1 and 2 untouched by member 0's NaN
            assert value.shape == (MEMBERS,), metric
            assert torch.isfinite(value[1:]).all(), (metric, value)
    actions = group.act(np.zeros((MEMBERS, STATE_DIM), dtype=np.float32), deterministic=True)
    assert actions.shape == (MEMBERS, ACTION_DIM) and np.isfinite(actions[1:]).all()


def test_members_need_state_observations() -> None:
    spec = registry.get("bc-pixels")
    with pytest.raises(ValueError, match="need state observations"):
        spec.agent_class()(spec.default_config(), (9, 84, 84), ACTION_DIM, "cpu", 2)
