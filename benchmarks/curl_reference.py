"""A straightforward SAC-CURL update in the style of the CURL reference code, for speed only.

The yardstick for ``baselines/sac_curl.py``'s fused update: the same architecture, batch and
losses, written as the reference code runs them (``curl_sac.py``): three sequential updates on
one batch (critic; actor and temperature every 2nd step; CURL), each encoding the observation
again, so 7 conv-trunk forwards and 2 backwards on an actor step; contiguous (channels-first)
memory, non-inplace ReLUs and PyTorch's default Adam, with the reference's five optimisers
(critic, actor, alpha, encoder, CURL). Not used for training anything.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from baselines.common.augment import random_crop
from baselines.common.encoder import orthogonal_init
from baselines.common.sac import mlp, squashed_sample, td_target
from baselines.common.sac_agent import curl_logits
from baselines.sac_curl import SACCURLConfig
from benchmark.data.sampler import TransitionBatch


class ReferenceEncoder(nn.Module):
    """CURL's ``PixelEncoder``: convs, flatten, optional detach, fc, LayerNorm, tanh. The tanh
    is VORB's encoder's (the original CQL-CURL code's); CURL's actor and critic use
    ``output_logits=True``, without it: the reference shares VORB's choice, so the speed
    comparison is of the same function."""

    def __init__(self, obs_shape: tuple[int, int, int], feature_dim: int, filters: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(obs_shape[0], filters, 3, stride=2), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Conv2d(filters, filters, 3, stride=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            repr_dim = self.convs(torch.zeros(1, *obs_shape)).flatten(1).shape[1]
        self.fc, self.ln = nn.Linear(repr_dim, feature_dim), nn.LayerNorm(feature_dim)
        self.apply(orthogonal_init)

    def forward(self, obs: torch.Tensor, detach: bool = False) -> torch.Tensor:
        h = self.convs(obs.float() / 255.0).flatten(1)
        if detach:
            h = h.detach()
        return torch.tanh(self.ln(self.fc(h)))


class ReferenceSACCURL:
    """CURL's ``CurlSacAgent.update`` with the VORB defaults (paper values)."""

    def __init__(
        self, config: SACCURLConfig, obs_shape: tuple[int, int, int], action_dim: int
    ) -> None:
        cfg = self.config = config
        self.critic_encoder = ReferenceEncoder(obs_shape, cfg.feature_dim, cfg.num_filters)
        self.q1 = mlp(cfg.feature_dim + action_dim, cfg.hidden_dim, 1)
        self.q2 = mlp(cfg.feature_dim + action_dim, cfg.hidden_dim, 1)
        self.actor_encoder = ReferenceEncoder(obs_shape, cfg.feature_dim, cfg.num_filters)
        self.actor_encoder.convs = self.critic_encoder.convs  # CURL ties the conv weights
        self.actor_trunk = mlp(cfg.feature_dim, cfg.hidden_dim, 2 * action_dim)
        self.target_encoder = copy.deepcopy(self.critic_encoder)
        self.target_q1, self.target_q2 = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.w = nn.Parameter(torch.rand(cfg.feature_dim, cfg.feature_dim))
        self.log_alpha = torch.tensor(math.log(cfg.init_temperature), requires_grad=True)
        critic = [*self.critic_encoder.parameters(), *self.q1.parameters(), *self.q2.parameters()]
        actor = [*self.actor_encoder.parameters(), *self.actor_trunk.parameters()]
        self.critic_opt = torch.optim.Adam(critic, lr=cfg.critic_lr, betas=(cfg.beta1, 0.999))
        self.actor_opt = torch.optim.Adam(actor, lr=cfg.actor_lr, betas=(cfg.beta1, 0.999))
        self.alpha_opt = torch.optim.Adam(
            [self.log_alpha], lr=cfg.alpha_lr, betas=(cfg.alpha_beta1, 0.999)
        )
        self.encoder_opt = torch.optim.Adam(self.critic_encoder.parameters(), lr=cfg.curl_lr)
        curl = [self.w, *self.critic_encoder.parameters(), *self.target_encoder.parameters()]
        self.cpc_opt = torch.optim.Adam(curl, lr=cfg.curl_lr)
        self.target_entropy, self.step = -float(action_dim), 0

    def actor(self, obs: torch.Tensor, detach: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.actor_trunk(self.actor_encoder(obs, detach)).chunk(2, dim=-1)
        lo, hi = self.config.log_std_min, self.config.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(log_std) + 1)
        return squashed_sample(mu, log_std, torch.randn_like(mu))

    def critic(
        self, obs: torch.Tensor, action: torch.Tensor, detach: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        za = torch.cat([self.critic_encoder(obs, detach), action], dim=-1)
        return self.q1(za), self.q2(za)

    def update(self, batch: TransitionBatch) -> None:
        cfg = self.config
        obs = random_crop(batch.obs, cfg.aug_pad).contiguous()
        next_obs = random_crop(batch.next_obs, cfg.aug_pad).contiguous()
        positive = random_crop(batch.obs, cfg.aug_pad).contiguous()
        alpha = self.log_alpha.exp()
        # critic
        with torch.no_grad():
            next_action, next_log_pi = self.actor(next_obs)
            za = torch.cat([self.target_encoder(next_obs), next_action], dim=-1)
            target = td_target(
                self.target_q1(za),
                self.target_q2(za),
                next_log_pi,
                alpha.detach(),
                batch.reward,
                batch.not_done,
                cfg.discount,
            )
        q1, q2 = self.critic(obs, batch.action)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        # actor and temperature
        if self.step % cfg.actor_update_freq == 0:
            pi, log_pi = self.actor(obs, detach=True)
            actor_q = torch.min(*self.critic(obs, pi, detach=True))
            actor_loss = (alpha.detach() * log_pi - actor_q).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            self.alpha_opt.zero_grad()
            alpha_loss = (self.log_alpha.exp() * (-log_pi - self.target_entropy).detach()).mean()
            alpha_loss.backward()
            self.alpha_opt.step()
        if self.step % cfg.critic_target_update_freq == 0:
            with torch.no_grad():
                for online, target_net, tau in (
                    (self.q1, self.target_q1, cfg.critic_tau),
                    (self.q2, self.target_q2, cfg.critic_tau),
                    (self.critic_encoder, self.target_encoder, cfg.encoder_tau),
                ):
                    for p, tp in zip(online.parameters(), target_net.parameters(), strict=True):
                        tp.data.copy_(tau * p.data + (1 - tau) * tp.data)
        # CURL
        z_anchor = self.critic_encoder(obs)
        with torch.no_grad():
            z_positive = self.target_encoder(positive)
        logits = curl_logits(z_anchor, z_positive, self.w)
        curl_loss = F.cross_entropy(logits, torch.arange(logits.shape[0]))
        self.encoder_opt.zero_grad()
        self.cpc_opt.zero_grad()
        curl_loss.backward()
        self.encoder_opt.step()
        self.cpc_opt.step()
        self.step += 1
