"""SAC + CURL (Srinivas, Laskin and Abbeel, 2020), online or offline (the registry decides),
and the same SAC on states (Haarnoja et al. 2018).

One file, top to bottom: the configs (pixels: the CURL paper's walker values; states: the SAC
paper's and cleanrl's) and the agent's whole loss (``SACCURLAgent.losses``). The agent it
subclasses, shared with CQL-CURL (networks, optimisers, the update below around ``losses``, the
named pieces of the loss), is ``baselines/common/sac_agent.py``; the other shared parts
(encoder, augmentation, SAC heads, checkpointing) live in ``baselines/common`` too. The
observation path is built from the observation shape (``baselines/common/observation.py``): on
states the trunk is the identity, there is no augmentation and no CURL loss; the update is
otherwise the same code for both tracks.

The update, and how it differs from the CURL reference code
-----------------------------------------------------------
The reference code runs three updates in sequence on one sampled batch (critic, then actor and
temperature every 2nd step, then CURL), re-encoding the observation each time: 7 conv forwards
and 2 conv backwards on an actor step. Here one update does:

1. augment ``obs``, ``next_obs`` and the CURL positive (an independent crop of ``obs``);
2. no-grad: the online conv trunk on ``next_obs`` (the policy's next action, as CURL's
   ``actor(next_obs)`` whose conv weights are the critic's); the *target* encoder on
   ``next_obs`` and the positive together (target Q features and CURL's momentum keys: CURL's key
   encoder is the critic target's encoder);
3. with grad: the online encoder on ``obs`` once. Its output ``z`` feeds the critic *and* is
   CURL's anchor (the reference uses the same cropped ``obs`` as anchor); the conv output ``h``,
   detached, feeds the actor (CURL's actor sees detached conv features through its own
   projection), and ``z`` detached feeds the actor's Q (CURL: ``critic(obs, pi,
   detach_encoder=True)``, whose gradient the reference never applies to the critic);
4. gradients: ``critic + CURL`` loss into encoder, Q heads and W (one Adam: all three use
   lr 1e-3, betas (0.9, 0.999)); actor loss into the actor; alpha loss into log alpha; then the
   soft target updates.

Documented sharing (the only differences from the sequential reference update):
- the actor loss and the CURL loss are computed at the parameters the critic loss sees (the
  start of the update), not after the critic's optimiser step: all losses are simultaneous;
- the encoder gets one Adam step on the summed critic + CURL gradient (the reference steps it
  with three Adams in turn: the critic's, then ``encoder_optimizer`` and ``cpc_optimizer`` on the
  same CURL gradient);
- the CURL keys use the target encoder before this update's soft update (the reference updates
  it between the critic and CURL steps on target-update steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from baselines.common.optim import bf16_autocast
from baselines.common.sac import double_q_loss
from baselines.common.sac_agent import CURLFields, SACFields, SoftActorCritic
from baselines.contract import TransitionBatch


@dataclass(frozen=True)
class SACCURLConfig(CURLFields, SACFields):
    """SAC + CURL on pixels. Defaults: the CURL paper (Srinivas et al. 2020), Table 3 and walker
    settings: :class:`SACFields`, the pixel encoder's fields and CURL's."""


@dataclass(frozen=True)
class SACStateConfig(SACFields):
    """SAC on states, online or offline. Defaults: the SAC paper (Haarnoja et al. 2018,
    arXiv:1812.05905, Table 1) and cleanrl's ``sac_continuous_action.py`` where the paper is
    silent; sources per field in docs/sources.md ("State track"). Kept equal to the pixel track
    on purpose: the discount (0.99), the twin critics and the target entropy -|A|."""

    batch_size: int = 256  # SAC paper, Table 1 (also CORL's batch)
    critic_lr: float = 3e-4  # SAC paper, Table 1
    actor_lr: float = 3e-4  # SAC paper, Table 1
    alpha_lr: float = 3e-4  # SAC paper, Table 1 (the temperature shares the learning rate)
    alpha_beta1: float = 0.9  # SAC paper: Adam with default betas everywhere
    init_temperature: float = 1.0  # cleanrl sac_continuous_action: log_alpha starts at 0
    critic_tau: float = 0.005  # SAC paper, Table 1
    actor_update_freq: int = 1  # SAC paper: one actor step per critic step
    critic_target_update_freq: int = 1  # SAC paper, Table 1 (target update interval 1)
    hidden_dim: int = 256  # SAC paper, Table 1
    log_std_min: float = -5.0  # cleanrl / pytorch_sac (LOG_STD_MIN)
    log_std_max: float = 2.0  # cleanrl / pytorch_sac (LOG_STD_MAX)
    replay_capacity: int = 1_000_000  # SAC paper, Table 1
    initial_random_steps: int = 5_000  # cleanrl learning_starts (online only)


class SACCURLAgent(SoftActorCritic):
    """SAC with a CURL-trained pixel encoder, or SAC on states; the ``Agent`` of
    ``baselines.contract``."""

    def losses(
        self,
        batch: TransitionBatch,
        obs: torch.Tensor,
        next_obs: torch.Tensor,
        positive: torch.Tensor,
        with_actor: bool,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """SAC-CURL's whole loss, every term at the parameters the update starts from, in the
        order it is computed: the soft TD target, the critic's regression on it, CURL, and
        (``with_actor``) the actor and the temperature.

        Returns their sum (each term reaches only its own parameters) and the metrics. For a
        fixed ``with_actor`` there is no Python branching on tensors and no host sync, so
        ``torch.compile(fullgraph=True)`` captures it whole (``tests/test_baselines.py``)."""
        alpha = self.log_alpha.detach().exp()
        with bf16_autocast(self.config.amp, self.device):
            target_q, _, z_positive = self.soft_td_target(batch, next_obs, positive, alpha)
            h, z, q1, q2 = self.critic_forward(obs, batch.action)
            critic_loss = double_q_loss(q1, q2, target_q)
            curl_loss = self.curl_loss(z, z_positive)
            metrics = self.critic_metrics(critic_loss, q1, curl_loss)
            if with_actor:
                actor_loss, alpha_loss, actor_metrics = self.actor_losses(h, z, alpha)
                metrics |= actor_metrics
        total = critic_loss + curl_loss
        if with_actor:
            total = total + actor_loss + alpha_loss
        return total, metrics
