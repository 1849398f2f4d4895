"""Vectorised members (``baselines/common/members.py``): M agents in one model that never mix.

A member trained inside the group must follow exactly the path it would follow alone (its
gradient is its own loss's), and one member's divergence must leave the others untouched; on
states and on pixels (grouped-conv trunk, ``baselines/common/encoder.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from baselines.common.augment import random_shift
from baselines.common.encoder import MemberLayerNorm, PixelEncoder
from baselines.common.members import EnsembleLinear
from benchmark.data.sampler import FrameReplay, MemberFrameReplay, TransitionBatch
from benchmark.data.state_replay import MemberReplay, StateReplay, member_replay
from benchmark.harness import registry

MEMBERS, BATCH, STATE_DIM, ACTION_DIM = 3, 16, 24, 6
PIXELS = (9, 32, 32)  # 3 stacked RGB frames, small: the trunk's output is 9 x 9 x filters
PIXEL_BASELINES = ["sac-curl-offline", "sac-curl-online", "cql-curl", "drqbc", "bc-pixels"]
TINY = {"hidden_dim": 32, "num_filters": 8, "feature_dim": 16}


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


def pixel_batch(members: int | None, seed: int = 0, size: int = 8) -> TransitionBatch:
    generator = torch.Generator().manual_seed(seed)
    lead = () if members is None else (members,)
    frames = lambda: torch.randint(  # noqa: E731
        0, 256, (*lead, size, *PIXELS), generator=generator, dtype=torch.uint8
    )
    return TransitionBatch(
        obs=frames(),
        action=torch.tanh(torch.randn(*lead, size, ACTION_DIM, generator=generator)),
        reward=torch.rand(*lead, size, 1, generator=generator),
        next_obs=frames(),
        not_done=torch.ones(*lead, size, 1),
    )


def pixel_agent(name: str, members: int | None, seed: int = 0, **overrides: object) -> object:
    spec = registry.get(name)
    config = dataclasses.replace(spec.default_config(), **TINY, **overrides)
    torch.manual_seed(seed)
    return spec.agent_class()(config, PIXELS, ACTION_DIM, "cpu", members)


def member_of(batch: TransitionBatch, member: int) -> TransitionBatch:
    return TransitionBatch(*(t[member] for t in dataclasses.astuple(batch)))


def copy_member_into(group: torch.nn.Module, member: int, alone: torch.nn.Module) -> None:
    """Member ``member``'s weights into the unvectorised network of the same shape: ensemble
    linears, grouped convs (member m's output channels) and per-member LayerNorms."""
    kinds = (EnsembleLinear, MemberLayerNorm, torch.nn.Conv2d)
    layers = [m for m in group.modules() if isinstance(m, kinds)]
    plain = [m for m in alone.modules() if isinstance(m, (torch.nn.Linear, torch.nn.LayerNorm))]
    plain += [m for m in alone.modules() if isinstance(m, torch.nn.Conv2d)]
    order = {torch.nn.Conv2d: 1}  # compare convs in module order after the others
    layers.sort(key=lambda m: order.get(type(m), 0))
    assert len(layers) == len(plain) > 0
    with torch.no_grad():
        for layer, lone in zip(layers, plain, strict=True):
            if isinstance(layer, EnsembleLinear):
                lone.weight.copy_(layer.weight[member].T)
                lone.bias.copy_(layer.bias[member, 0])
            elif isinstance(layer, MemberLayerNorm):
                lone.weight.copy_(layer.weight[member, 0])
                lone.bias.copy_(layer.bias[member, 0])
            else:
                rows = slice(member * lone.out_channels, (member + 1) * lone.out_channels)
                lone.weight.copy_(layer.weight[rows])
                lone.bias.copy_(layer.bias[rows])


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


# -- pixels -----------------------------------------------------------------------------------
def test_a_grouped_encoder_member_is_the_lone_encoder() -> None:
    """The vectorised pixel encoder (grouped convs, ensemble projection, per-member LayerNorm)
    computes, for member 1, the forward and the parameter gradients of a lone encoder holding
    member 1's weights; no gradient reaches the other members' weights."""
    torch.manual_seed(0)
    group, alone = PixelEncoder(PIXELS, 16, 4, 8, MEMBERS), PixelEncoder(PIXELS, 16, 4, 8)
    copy_member_into(group, 1, alone)
    obs = torch.randint(0, 256, (MEMBERS, 5, *PIXELS), dtype=torch.uint8)
    out, lone_out = group(obs), alone(obs[1])
    assert out.shape == (MEMBERS, 5, 16) and group.conv.repr_dim == alone.conv.repr_dim
    torch.testing.assert_close(out[1], lone_out, rtol=1e-5, atol=1e-6)
    weights = torch.randn(5, 16)
    (out[1] * weights).sum().backward()
    (lone_out * weights).sum().backward()
    group_conv = [m for m in group.modules() if isinstance(m, torch.nn.Conv2d)]
    lone_conv = [m for m in alone.modules() if isinstance(m, torch.nn.Conv2d)]
    for grouped, lone in zip(group_conv, lone_conv, strict=True):
        channels = lone.out_channels
        torch.testing.assert_close(grouped.weight.grad[channels : 2 * channels], lone.weight.grad)
        torch.testing.assert_close(grouped.bias.grad[channels : 2 * channels], lone.bias.grad)
        assert not grouped.weight.grad[:channels].any()
        assert not grouped.weight.grad[2 * channels :].any()
    fc, lone_fc = group.projection.fc, alone.projection.fc
    torch.testing.assert_close(fc.weight.grad[1].T, lone_fc.weight.grad, rtol=1e-5, atol=1e-6)
    assert not fc.weight.grad[0].any() and not fc.weight.grad[2].any()
    ln, lone_ln = group.projection.ln, alone.projection.ln
    torch.testing.assert_close(ln.weight.grad[1, 0], lone_ln.weight.grad, rtol=1e-5, atol=1e-6)


def test_grouped_convs_are_initialised_per_member_as_alone() -> None:
    """Each member's kernels: zero but for a delta-orthogonal centre with the ReLU gain, as
    ``orthogonal_init`` gives the unvectorised conv; the members' draws differ."""
    torch.manual_seed(0)
    first = PixelEncoder(PIXELS, 16, 4, 8, MEMBERS).conv.convs[0]
    gain = torch.nn.init.calculate_gain("relu")
    kernels = first.weight.detach().view(MEMBERS, 8, 9, 3, 3)
    centres = kernels[..., 1, 1]
    for centre in centres:  # (8, 9): 8 orthonormal rows, times the gain
        torch.testing.assert_close(centre @ centre.T, gain**2 * torch.eye(8), atol=1e-5, rtol=0)
    off_centre = kernels.clone()
    off_centre[..., 1, 1] = 0
    assert not off_centre.any()
    assert not torch.allclose(centres[0], centres[1])


def test_member_shifts_are_per_image() -> None:
    """Members' frames are shifted as M * B independent images, in one draw of the global RNG."""
    obs = torch.randint(0, 256, (MEMBERS, 4, *PIXELS), dtype=torch.uint8)
    torch.manual_seed(3)
    shifted = random_shift(obs, 4)
    torch.manual_seed(3)
    flat = random_shift(obs.flatten(0, 1), 4)
    assert shifted.shape == obs.shape
    assert torch.equal(shifted, flat.view(obs.shape))


@pytest.mark.parametrize("name", PIXEL_BASELINES)
def test_pixel_members_train_and_act(name: str) -> None:
    group = pixel_agent(name, MEMBERS)
    for step in range(3):  # updates 0 and 2 step the actors of the every-2nd baselines
        metrics = group.update(pixel_batch(MEMBERS, seed=step))
    assert metrics
    for metric, value in metrics.items():
        value = torch.as_tensor(value)
        assert value.shape in ((MEMBERS,), ()), metric
        assert torch.isfinite(value).all(), (metric, value)
    assert sum(torch.as_tensor(v).shape == (MEMBERS,) for v in metrics.values()) >= 1
    obs = np.random.default_rng(0).integers(0, 256, (MEMBERS, *PIXELS), dtype=np.uint8)
    for deterministic in (True, False):
        actions = group.act(obs, deterministic=deterministic)
        assert actions.shape == (MEMBERS, ACTION_DIM) and np.abs(actions).max() <= 1
    if hasattr(group, "value"):
        values = group.value(obs)
        assert values.shape == (MEMBERS,) and np.isfinite(values).all()


def test_a_pixel_member_learns_exactly_as_it_would_alone() -> None:
    """Pixel BC without augmentation (``aug_pad=0``: every shift is the identity) has no
    randomness in its update: member 1 of a group of 3 follows a lone agent started from its
    weights on its batches. (With augmentation the group draws M * B shifts at once, so member
    1's shifts are not the lone agent's; the encoder test above covers the grouped conv.)"""
    group = pixel_agent("bc-pixels", MEMBERS, aug_pad=0)
    alone = pixel_agent("bc-pixels", None, aug_pad=0)
    copy_member_into(group.conv, 1, alone.conv)
    copy_member_into(group.actor, 1, alone.actor)
    for step in range(6):
        batches = pixel_batch(MEMBERS, seed=step)
        group_loss = group.update(batches)["bc_loss"]
        alone_loss = alone.update(member_of(batches, 1))["bc_loss"]
        assert group_loss.shape == (MEMBERS,)
        torch.testing.assert_close(group_loss[1], alone_loss, rtol=1e-5, atol=1e-6)
    lone_conv = [m for m in alone.conv.modules() if isinstance(m, torch.nn.Conv2d)]
    group_conv = [m for m in group.conv.modules() if isinstance(m, torch.nn.Conv2d)]
    for grouped, lone in zip(group_conv, lone_conv, strict=True):
        channels = lone.out_channels
        mine = grouped.weight[channels : 2 * channels]
        torch.testing.assert_close(mine, lone.weight, rtol=1e-4, atol=1e-5)
    lone_fc = alone.actor.projection.fc.weight
    torch.testing.assert_close(group.actor.projection.fc.weight[1].T, lone_fc, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["sac-curl-offline", "cql-curl"])
def test_a_diverged_pixel_member_leaves_its_siblings_finite(name: str) -> None:
    group = pixel_agent(name, MEMBERS)
    first_conv = group.encoder.conv.convs[0]
    with torch.no_grad():  # member 0's encoder blows up: its first conv's kernels
        first_conv.weight[: first_conv.out_channels // MEMBERS] = float("nan")
    for step in range(4):
        metrics = group.update(pixel_batch(MEMBERS, seed=step))
    for metric, value in metrics.items():
        assert value.shape == (MEMBERS,), metric
        assert torch.isfinite(value[1:]).all(), (metric, value)
        assert not torch.isfinite(value[0]) or metric in ("alpha",), (metric, value)
    obs = np.zeros((MEMBERS, *PIXELS), dtype=np.uint8)
    actions = group.act(obs, deterministic=True)
    assert np.isfinite(actions[1:]).all() and np.isfinite(group.value(obs)[1:]).all()


# Fixed before pixel members existed (commit 0b2766f): members=None must not change.
UNVECTORISED_NAMES_SHA256 = "ff98a1038ff505398ad6c43510575a3fa72cca9d192398af4fc74701cd01f1f4"
UNVECTORISED_FINGERPRINT = 75.26427674991133
UNVECTORISED_METRICS = {"critic_loss": 3.9058022, "q1": -0.0993619, "curl_loss": 2.3674932}


def test_unvectorised_pixel_agents_are_unchanged() -> None:
    """A fixed-seed pixel SAC-CURL agent after 2 updates: its parameter names, a fingerprint of
    its parameters (a fixed random projection of all of them) and its metrics, as computed on
    the code before pixel members. A different random draw or module changes all three."""
    torch.manual_seed(0)
    agent = pixel_agent("sac-curl-offline", None)
    for step in range(2):
        metrics = agent.update(pixel_batch(None, seed=step))
    named: dict[str, torch.Tensor] = {}
    for part in ("encoder", "encoder_target", "critic", "critic_target", "actor"):
        named |= {f"{part}.{n}": p for n, p in getattr(agent, part).named_parameters()}
    named |= {"curl_w": agent.curl_w, "log_alpha": agent.log_alpha}
    names = hashlib.sha256("\n".join(named).encode()).hexdigest()
    assert names == UNVECTORISED_NAMES_SHA256
    weights = torch.Generator().manual_seed(1)
    fingerprint = sum(
        float(
            (
                p.detach().double() * torch.rand(p.shape, generator=weights, dtype=torch.float64)
            ).sum()
        )
        for p in named.values()
    )
    assert fingerprint == pytest.approx(UNVECTORISED_FINGERPRINT, rel=1e-6)
    for metric, value in UNVECTORISED_METRICS.items():
        assert float(metrics[metric]) == pytest.approx(value, rel=1e-5), metric


def test_member_options_that_cannot_be_vectorised_are_refused() -> None:
    bc = registry.get("bc-pixels")
    with pytest.raises(ValueError, match="policy='gaussian'"):
        config = dataclasses.replace(bc.default_config(), policy="gaussian")
        bc.agent_class()(config, PIXELS, ACTION_DIM, "cpu", 2)
    cql = registry.get("cql-curl")
    with pytest.raises(ValueError, match="with_lagrange"):
        config = dataclasses.replace(cql.default_config(), with_lagrange=True)
        cql.agent_class()(config, PIXELS, ACTION_DIM, "cpu", 2)
    with pytest.raises(ValueError, match="members must be >= 1"):
        bc.agent_class()(bc.default_config(), PIXELS, ACTION_DIM, "cpu", 0)
    with pytest.raises(ValueError, match="state \\(D,\\) or pixel"):
        bc.agent_class()(bc.default_config(), (32, 32), ACTION_DIM, "cpu", 2)


# -- the member frame replay ----------------------------------------------------------------
def frame_replay(member: int, steps: int) -> FrameReplay:
    """One episode whose frame t is filled with ``100 * member + t`` and whose actions are
    ``member``: every sampled value says which replay it came from."""
    replay = FrameReplay(steps, (3, 8, 8), ACTION_DIM)
    frames = np.arange(steps + 1, dtype=np.uint8)[:, None, None, None] + 100 * member
    replay.add_episode(
        np.broadcast_to(frames, (steps + 1, 8, 8, 3)),
        np.full((steps, ACTION_DIM), float(member), dtype=np.float32),
        np.arange(steps, dtype=np.float32),
        np.zeros(steps),
    )
    return replay


def test_member_frame_replay_samples_each_member_from_its_own_replay() -> None:
    replays = [frame_replay(0, 5), frame_replay(1, 40)]
    members = member_replay(replays)
    assert isinstance(members, MemberFrameReplay)
    assert (members.members, members.obs_shape, members.action_dim) == (2, (9, 8, 8), ACTION_DIM)
    assert len(members) == 45 and members.to("cpu") is members
    sample = members.sample(64, torch.Generator().manual_seed(0))
    assert sample.obs.shape == sample.next_obs.shape == (2, 64, 9, 8, 8)
    assert sample.obs.dtype == torch.uint8
    assert sample.action.shape == (2, 64, ACTION_DIM)
    assert sample.reward.shape == sample.not_done.shape == (2, 64, 1)
    for member, steps in enumerate((5, 40)):
        assert (sample.action[member] == member).all()
        frame = sample.obs[member, :, -1, 0, 0].long() - 100 * member  # the newest frame: t
        assert (frame >= 0).all() and (frame < steps).all()
        assert torch.equal(sample.reward[member, :, 0].long(), frame)  # reward t at obs t
        assert torch.equal(sample.next_obs[member, :, -1, 0, 0].long() - 100 * member, frame + 1)
    assert sample.reward[1].max() >= 5  # member 1 reaches beyond member 0's 5 transitions
    again = members.sample(64, torch.Generator().manual_seed(0))
    other = members.sample(64, torch.Generator().manual_seed(1))
    assert all(
        torch.equal(a, b)
        for a, b in zip(dataclasses.astuple(sample), dataclasses.astuple(again), strict=True)
    )
    assert not torch.equal(sample.obs, other.obs)


def test_member_replay_picks_the_replay_kind_and_refuses_mixtures() -> None:
    states = [StateReplay(4, STATE_DIM, ACTION_DIM) for _ in range(2)]
    for replay in states:
        replay.add_episode(np.zeros((3, STATE_DIM)), np.zeros((2, ACTION_DIM)), np.zeros(2), [0, 0])
    assert isinstance(member_replay(states), MemberReplay)
    with pytest.raises(ValueError, match=r"FrameReplay.*StateReplay"):
        member_replay([states[0], frame_replay(0, 3)])
    with pytest.raises(ValueError, match="got 0 replays"):
        member_replay([])
    with pytest.raises(ValueError, match="must share obs_shape"):
        MemberFrameReplay([frame_replay(0, 3), FrameReplay(3, (3, 4, 4), ACTION_DIM)])
