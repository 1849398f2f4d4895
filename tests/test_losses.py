"""The baselines' losses and shared parts on small hand-built inputs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from baselines.bc import gaussian_nll
from baselines.common.augment import random_shift, shift_by
from baselines.common.encoder import PixelEncoder
from baselines.common.sac import soft_update, squashed_sample, td_target
from baselines.common.sac_agent import curl_logits
from baselines.cql_curl import cql_gap
from baselines.td3bc import clipped_noise_action, td3_bc_actor_loss


def test_cql_gap_matches_a_direct_loop() -> None:
    rng = np.random.default_rng(0)
    batch, samples, temperature = 3, 5, 0.7
    sampled_q = rng.normal(size=(batch, samples, 1))
    log_density = rng.normal(size=(batch, samples, 1))
    data_q = rng.normal(size=(batch, 1))
    expected = 0.0
    for b in range(batch):
        terms = [(sampled_q[b, j, 0] - log_density[b, j, 0]) / temperature for j in range(samples)]
        expected += temperature * math.log(sum(math.exp(t) for t in terms)) / batch
    expected -= data_q.mean()
    got = cql_gap(*(torch.tensor(x) for x in (sampled_q, log_density, data_q)), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_cql_uniform_density_is_a_constant_shift() -> None:
    # Uniform actions on [-1, 1]^6 have density 0.5^6: subtracting its log adds 6 log 2.
    sampled_q, data_q = torch.zeros(2, 4, 1), torch.zeros(2, 1)
    log_density = torch.full((2, 4, 1), 6 * math.log(0.5))
    assert cql_gap(sampled_q, log_density, data_q, 1.0).item() == pytest.approx(
        math.log(4) + 6 * math.log(2)
    )


def test_curl_logits_and_labels() -> None:
    anchor = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    w = torch.tensor([[1.0, 0.5], [0.0, 1.0]])
    raw = anchor.numpy() @ w.numpy() @ positive.numpy().T
    logits = curl_logits(anchor, positive, w)
    np.testing.assert_allclose(logits.numpy(), raw - raw.max(axis=1, keepdims=True), rtol=1e-6)
    assert (logits.max(dim=1).values == 0).all()
    # Identity W and unit-norm distinct keys: each anchor's own key is its most similar one.
    keys = torch.nn.functional.normalize(
        torch.randn(16, 50, generator=torch.Generator().manual_seed(0))
    )
    assert (curl_logits(keys, keys, torch.eye(50)).argmax(1) == torch.arange(16)).all()


def test_td_target() -> None:
    q1, q2 = torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [2.5]])
    log_pi, reward, not_done = (
        torch.tensor([[-1.0], [0.5]]),
        torch.tensor([[1.0], [0.0]]),
        torch.tensor([[1.0], [0.0]]),
    )
    target = td_target(q1, q2, log_pi, torch.tensor(0.1), reward, not_done, 0.9)
    # Row 0: 1 + 0.9 * (min(1, 2) - 0.1 * -1) = 1.99; row 1 is terminal: reward only.
    torch.testing.assert_close(target, torch.tensor([[1.99], [0.0]]))


def test_squashed_gaussian_log_prob_matches_torch_distributions() -> None:
    mu, log_std = torch.tensor([[0.3, -0.2]]), torch.tensor([[-0.5, 0.1]])
    noise = torch.tensor([[0.7, -1.1]])
    action, log_prob = squashed_sample(mu, log_std, noise)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mu, log_std.exp()), torch.distributions.TanhTransform()
    )
    torch.testing.assert_close(action, torch.tanh(mu + noise * log_std.exp()))
    expected = dist.log_prob(action).sum(-1, keepdim=True)
    torch.testing.assert_close(log_prob, expected, atol=1e-4, rtol=1e-4)  # CURL's 1e-6 fudge
    torch.testing.assert_close(
        gaussian_nll(mu, log_std, action), -expected[0, 0], atol=1e-3, rtol=1e-3
    )


def test_shift_is_a_crop_of_the_replicate_padded_frame() -> None:
    obs = torch.randint(0, 256, (4, 9, 12, 12), dtype=torch.uint8)
    pad = 4
    padded = torch.nn.functional.pad(obs.float(), (pad,) * 4, mode="replicate")
    shifts = torch.tensor([[0, 0], [4, 4], [8, 1], [3, 7]])
    out = shift_by(obs, shifts, pad)
    assert out.shape == obs.shape and out.dtype == torch.uint8
    for b, (dy, dx) in enumerate(shifts.tolist()):
        assert torch.equal(out[b].float(), padded[b, :, dy : dy + 12, dx : dx + 12])
    assert torch.equal(out[1], obs[1])  # a shift of ``pad`` is the identity


def test_random_shift_shifts_within_the_pad() -> None:
    torch.manual_seed(0)
    obs = torch.randint(0, 256, (32, 9, 84, 84), dtype=torch.uint8)
    out = random_shift(obs, pad=4)
    assert out.shape == obs.shape and out.dtype == torch.uint8
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(out, obs)  # 32 images: (1/81)^32 chance that none moved
    candidates = torch.stack(
        [
            shift_by(obs, torch.tensor([[dy, dx]]).expand(32, 2), 4)
            for dy in range(9)
            for dx in range(9)
        ]
    )
    assert (candidates == out).flatten(2).all(2).any(0).all()  # every image is one of the 81


def test_encoder_shapes_and_scaling() -> None:
    encoder = PixelEncoder((9, 84, 84))
    assert encoder.conv.repr_dim == 32 * 35 * 35
    z = encoder(torch.full((2, 9, 84, 84), 255, dtype=torch.uint8))
    assert z.shape == (2, 50) and z.abs().max() < 1
    # /255 happens inside: uint8 255 and float 1.0 give the same conv features.
    torch.testing.assert_close(
        encoder.conv(torch.full((1, 9, 84, 84), 255, dtype=torch.uint8)),
        encoder.conv.convs(torch.ones(1, 9, 84, 84)).permute(0, 2, 3, 1).flatten(1),
    )


def test_soft_update() -> None:
    online, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = [
        0.1 * p + 0.9 * q for p, q in zip(online.parameters(), target.parameters(), strict=True)
    ]
    soft_update(online, target, 0.1)
    for got, want in zip(target.parameters(), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_td3_bc_actor_loss_and_clipped_noise() -> None:
    q = torch.tensor([[2.0], [-4.0]])
    action, data = torch.tensor([[0.5, 0.0], [0.0, 0.0]]), torch.zeros(2, 2)
    loss, bc = td3_bc_actor_loss(q, action, data, alpha=2.5)
    # lambda = 2.5 / 3; -lambda * mean(Q) = -2.5 / 3 * -1; MSE = 0.25 / 4.
    assert bc.item() == pytest.approx(0.0625)
    assert loss.item() == pytest.approx(2.5 / 3 + 0.0625)
    torch.manual_seed(0)
    mean = torch.tensor([[0.99, -0.99, 0.0]]).expand(1000, 3)
    noisy = clipped_noise_action(mean, std=1.0, clip=0.3)
    assert noisy.abs().max() < 1 and (noisy - mean).abs().max() <= 0.3 + 1e-6


def _td3bc_after_one_update(actor_critic: str) -> tuple[object, object]:
    """A real TD3+BC-on-states agent after one update (its actor steps at update 0)."""
    from baselines.td3bc import TD3BCAgent, TD3BCStateConfig
    from benchmark.data.sampler import TransitionBatch

    torch.manual_seed(0)
    config = dataclasses.replace(TD3BCStateConfig(), hidden_dim=32, actor_critic=actor_critic)
    agent = TD3BCAgent(config, (24,), 6, "cpu")
    g = torch.Generator().manual_seed(1)
    batch = TransitionBatch(
        obs=torch.randn(16, 24, generator=g),
        action=torch.rand(16, 6, generator=g) * 2 - 1,
        reward=torch.rand(16, 1, generator=g),
        next_obs=torch.randn(16, 24, generator=g),
        not_done=torch.ones(16, 1),
    )
    torch.manual_seed(2)
    agent.update(batch)
    return agent, batch


def test_td3bc_actor_reads_the_first_critic_and_only_the_actor_term_differs() -> None:
    first, _ = _td3bc_after_one_update("first")
    minimum, _ = _td3bc_after_one_update("min")
    # The critic step comes before the actor's and does not read the choice: bit for bit.
    for a, b in zip(first.critic.parameters(), minimum.critic.parameters(), strict=True):
        assert torch.equal(a, b)
    # The actor's step does: its parameters move differently.
    differs = [
        not torch.equal(a, b)
        for a, b in zip(first.actor.parameters(), minimum.actor.parameters(), strict=True)
    ]
    assert any(differs)


def test_td3bc_actor_loss_on_the_first_critic_is_the_published_one() -> None:
    agent, batch = _td3bc_after_one_update("first")
    h = batch.obs  # states: the conv trunk is the identity
    with torch.no_grad():
        q1, q2 = agent.critic(agent.encoder.projection(h), agent.actor(h))
        expected, _ = td3_bc_actor_loss(q1, agent.actor(h), batch.action, 2.5)
    got = agent.actor_step(h, batch.action, 0.0)["actor_loss"]
    assert not torch.equal(q1, torch.min(q1, q2))  # the heads disagree, so the choice matters
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
