"""Tiny pixel behaviour cloning: a VORB baseline that lives in its own package.

The whole contract (docs/agent-contract.md in VORB): a frozen config dataclass with defaults, and
an agent class with ``update``, ``act``, ``state_dict`` and ``load_state_dict``, built as
``TinyBCAgent(config, obs_shape, action_dim, device)``. It imports nothing from VORB: batches are
duck-typed (``obs`` uint8 (B, 9, 84, 84) and ``action`` float32 (B, action_dim), on ``device``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class TinyBCConfig:
    """Every field can be changed from the command line: ``--set lr=3e-4``."""

    batch_size: int = 64  # read by VORB's offline trainer (the smoke profile sets 8)
    lr: float = 1e-3  # Adam; a tiny network tolerates a large step
    channels: int = 16  # filters of each of the two stride-2 conv layers
    hidden_dim: int = 128


class TinyBCAgent:
    """Tiny pixel behaviour cloning (two stride-2 convs, MSE to the dataset's actions)."""

    Config = TinyBCConfig  # how VORB finds the config of an agent class
    name = "tiny-bc"  # the baseline's name in results (default: the class name, lower case)
    offline = True  # trains from a dataset (False: VORB hands it an environment)

    def __init__(
        self,
        config: TinyBCConfig,
        obs_shape: tuple[int, int, int],
        action_dim: int,
        device: torch.device | str,
    ) -> None:
        self.config, self.device = config, torch.device(device)
        channels = obs_shape[0]  # (3 * stack, 84, 84): pooling makes the size not matter
        self.policy = nn.Sequential(
            nn.Conv2d(channels, config.channels, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(config.channels, config.channels, 3, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(config.channels * 16, config.hidden_dim),
            nn.ReLU(),
            nn.Linear(config.hidden_dim, action_dim),
            nn.Tanh(),  # actions live in [-1, 1]
        ).to(self.device)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.updates = 0

    def _forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs.float() / 255.0)  # frames arrive as uint8 0..255

    def update(self, batch: Any) -> dict[str, torch.Tensor]:
        loss = F.mse_loss(self._forward(batch.obs), batch.action)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.updates += 1
        # 0-d tensors on the device: VORB averages them between evaluations, one read each.
        return {"bc_loss": loss.detach()}

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        action = self._forward(torch.as_tensor(obs, device=self.device)[None])
        return action[0].cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        # Everything that changes while training, so a resumed run continues bit for bit.
        return {
            "policy": self.policy.state_dict(),
            "opt": self.opt.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["policy"])
        self.opt.load_state_dict(state["opt"])
        self.updates = int(state["updates"])
