"""Choices that follow a source, checked against it: DrQ+BC's exploration schedule in V-D4RL's
units, and CQL-CURL's switch for the original CQL-CURL's policy-action term."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from baselines.cql_curl import CQLCURLAgent, CQLCURLConfig
from baselines.td3bc import DrQBCConfig, TD3BCAgent
from benchmark.data.sampler import TransitionBatch

OBS, ACTIONS = (9, 84, 84), 6


def vd4rl_stddev(global_step: int) -> float:
    """V-D4RL's ``stddev_schedule: linear(1.0, 0.1, 250000)`` (DrQ-v2's ``utils.schedule``),
    evaluated at the global step its agent is given."""
    mix = min(max(global_step / 250_000, 0.0), 1.0)
    return (1.0 - mix) * 1.0 + mix * 0.1


def test_drqbc_exploration_std_follows_vd4rl_in_updates() -> None:
    agent = TD3BCAgent(dataclasses.replace(DrQBCConfig(), hidden_dim=32), OBS, ACTIONS, "cpu")
    # V-D4RL updates at every 2nd global step: its k-th update sees global step 2k.
    for update in (0, 1, 10_000, 62_500, 124_999, 125_000, 200_000, 550_000):
        agent.updates = update
        assert agent.stddev() == pytest.approx(vd4rl_stddev(2 * update), abs=1e-12)
    agent.updates = 125_000
    assert agent.stddev() == pytest.approx(0.1)


# -- CQL-CURL's policy-action term ----------------------------------------------------------
# log std bounds around 0 (std ~1 at initialisation): with CQL-CURL's (-10, 2) the initial
# policy is so narrow that its importance weights make the policy actions' share of the
# logsumexp vanish, and the two switches would agree to float precision.
SMALL = dict(batch_size=4, hidden_dim=32, num_sampled_actions=3, log_std_min=-1.0, log_std_max=1.0)


def cql_agent(policy_actions: str) -> CQLCURLAgent:
    torch.manual_seed(0)  # the same initial parameters for both switches
    config = dataclasses.replace(CQLCURLConfig(), **SMALL, policy_actions=policy_actions)
    return CQLCURLAgent(config, OBS, ACTIONS, "cpu")


def random_batch(size: int = 4) -> TransitionBatch:
    generator = torch.Generator().manual_seed(1)
    frames = lambda: torch.randint(0, 256, (size, *OBS), dtype=torch.uint8, generator=generator)  # noqa: E731
    return TransitionBatch(
        obs=frames(),
        action=torch.rand((size, ACTIONS), generator=generator) * 2 - 1,
        reward=torch.rand((size, 1), generator=generator),
        next_obs=frames(),
        not_done=torch.ones((size, 1)),
    )


def penalty_actions(agent: CQLCURLAgent, batch: TransitionBatch) -> tuple:
    h = agent._conv(batch.obs)
    z = agent.encoder.projection(h)
    with torch.no_grad():
        next_policy = agent.actor(agent._conv(batch.next_obs))
    torch.manual_seed(2)
    actions, log_density = agent.cql_actions(h, z, next_policy)
    return h, next_policy, actions, log_density


def test_the_original_policy_term_uses_tanh_means_with_gradient_to_the_encoder() -> None:
    batch, n = random_batch(), SMALL["num_sampled_actions"]
    _, _, sampled, log_density_s = penalty_actions(cql_agent("sampled"), batch)
    original_agent = cql_agent("tanh_mean")
    h, next_policy, original, log_density = penalty_actions(original_agent, batch)
    assert torch.equal(log_density, log_density_s)  # the separate sample's log-densities
    assert torch.equal(original[:, :n], sampled[:, :n])  # the uniform actions
    assert not torch.equal(original[:, n:], sampled[:, n:])
    mean_s = torch.tanh(original_agent.actor(h)[0])
    assert torch.equal(original[:, n : 2 * n], mean_s[:, None].expand(-1, n, -1))
    assert torch.equal(original[:, 2 * n :], torch.tanh(next_policy[0])[:, None].expand(-1, n, -1))
    # The gradient path: through the actions at s into the conv output (shared CNN), in the
    # original only; the sampled actions are constants.
    assert not sampled.requires_grad
    (grad,) = torch.autograd.grad(original[:, n : 2 * n].sum(), h)
    assert grad.abs().sum() > 0


def test_the_switch_changes_only_the_cql_penalty_of_an_update() -> None:
    batch, metrics, agents = random_batch(), {}, {}
    for mode in ("sampled", "tanh_mean"):
        agents[mode] = cql_agent(mode)
        torch.manual_seed(3)
        metrics[mode] = agents[mode].update(batch)
    sampled, original = metrics["sampled"], metrics["tanh_mean"]
    assert sampled.keys() == original.keys()
    for name in sampled.keys() - {"cql_gap1", "cql_gap2"}:  # every other term, bit for bit
        assert torch.equal(sampled[name], original[name]), name
    assert not torch.equal(sampled["cql_gap1"], original["cql_gap1"])
    actor = [dict(agent.actor.named_parameters()) for agent in agents.values()]
    assert all(torch.equal(actor[0][k], actor[1][k]) for k in actor[0])  # the actor loss alone
    conv = [list(agent.encoder.conv.parameters()) for agent in agents.values()]
    assert not all(torch.equal(a, b) for a, b in zip(*conv, strict=True))


def test_an_unknown_policy_actions_value_is_refused() -> None:
    config = dataclasses.replace(CQLCURLConfig(), **SMALL, policy_actions="mean")
    with pytest.raises(ValueError, match="policy_actions must be one of sampled, tanh_mean"):
        CQLCURLAgent(config, OBS, ACTIONS, "cpu")
