"""Image augmentation as pure batched functions on the training device.

Frames are 84x84 here. CURL stores 100x100 renders and crops 84x84 at random; DrQ renders 84x84,
pads 4 pixels by replication and crops 84x84 at random (a shift of up to +-4 pixels). With 84x84
frames the two coincide: a random 84x84 crop of the 4-pixel replicate-padded frame *is* DrQ's
random shift, so :func:`random_crop` and :func:`random_shift` are the same function and every
baseline uses it (CURL's crop range is +-8 pixels; ours is +-4, DrQ's and V-D4RL's).

Replicate padding followed by a crop equals clamping the source indices into the frame, so the
shift is a single gather on the uint8 batch (no float copy, no padded copy). The result is laid
out channels-last in memory, which is what the conv trunk wants.
"""

from __future__ import annotations

import torch


def shift_by(obs: torch.Tensor, shifts: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop each (C, H, W) image of ``obs`` at offset ``shifts[b] = (dy, dx)`` in [0, 2 pad] of
    its ``pad``-pixel replicate-padded version; ``shifts == pad`` is the identity."""
    batch, _, height, width = obs.shape
    rows = (torch.arange(height, device=obs.device) + shifts[:, :1] - pad).clamp_(0, height - 1)
    cols = (torch.arange(width, device=obs.device) + shifts[:, 1:] - pad).clamp_(0, width - 1)
    index = torch.arange(batch, device=obs.device)[:, None, None]
    # Advanced indices around a slice: the result is (B, H, W, C); permute back to a
    # channels-first view whose memory is channels-last.
    return obs[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_shift(obs: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """DrQ's random shift: each image moved by an independent integer offset in [-pad, pad]^2,
    edges replicated, on (B, C, H, W) frames. Uses torch's global RNG of ``obs``'s device."""
    shifts = torch.randint(0, 2 * pad + 1, (obs.shape[0], 2), device=obs.device)
    return shift_by(obs, shifts, pad)


# CURL's random crop on 84x84 frames: a random crop of the padded frame (see the module doc).
random_crop = random_shift
