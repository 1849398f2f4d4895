"""Visual variants: other ways to see the same walker trajectories.

A variant is a small declarative entry: the frame size, the camera, and which appearance shifts
(in the spirit of the Distracting Control Suite, Stone et al. 2021) it draws from its seed:
colours of the floor, sky and body, and a static background image generated procedurally (no
downloads). The same entry drives both

- the evaluation environment registered for it (``vorb/walker-walk-pixels-<name>-v0``), and
- ``python -m benchmark.datasets rerender <id> --variant <name>``, which renders a dataset's
  stored physics states through that very environment,

so a variant's dataset frames and its evaluation frames come from one code path.

Colours are applied to the MjModel (``mat_rgba`` of the floor and body materials, the skybox
texture's pixels) before anything renders, and re-uploaded to the GL context if one exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT = "default"
MAX_SEED = 2**32 - 1


class VariantError(ValueError):
    """An unknown variant name, a bad variant seed, or a variant an agent cannot be fed."""


ENV_ID = "vorb/walker-walk-pixels-v0"  # the training variant's environment (data/envs.py)


@dataclass(frozen=True)
class Variant:
    """How frames are rendered; ``default`` is what every recipe dataset is rendered with."""

    name: str
    description: str
    image_size: int = 84
    camera_id: int = 0
    colours: bool = False  # floor, sky and body colours drawn from the seed
    background: bool = False  # a procedural skybox image drawn from the seed

    @property
    def seeded(self) -> bool:
        """Whether the seed changes anything (size and camera variants ignore it)."""
        return self.colours or self.background

    @property
    def env_id(self) -> str:
        """The registered evaluation environment that renders this way."""
        return ENV_ID if self.name == DEFAULT else f"vorb/walker-walk-pixels-{self.name}-v0"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(DEFAULT, "84x84, camera 0, dm_control's visuals: the recipes' own frames"),
        Variant("64px", "64x64 (V-D4RL's DreamerV2 resolution), camera 0", image_size=64),
        Variant("camera1", "84x84 from the walker's second camera ('back')", camera_id=1),
        Variant("colours", "floor, sky and body colours drawn from the seed", colours=True),
        Variant("background", "a procedural sky image drawn from the seed", background=True),
        Variant(
            "distracting",
            "colours and background image together, drawn from the seed",
            colours=True,
            background=True,
        ),
    )
}


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise VariantError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def check_seed(seed: Any) -> int:
    """A variant seed is an integer in [0, 2**32 - 1] (numpy's SeedSequence accepts it)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise VariantError(f"a variant seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise VariantError(f"a variant seed must be in [0, {MAX_SEED}], got {seed}")
    return int(seed)


def parse_variant(text: str) -> tuple[Variant, int]:
    """``name`` or ``name:seed`` (the harness's ``--eval-variants`` items)."""
    name, _, seed_text = text.strip().partition(":")
    variant = get_variant(name)
    if not seed_text:
        return variant, 0
    try:
        seed = int(seed_text)
    except ValueError:
        raise VariantError(f"variant seed in {text!r} must be an integer") from None
    return variant, check_seed(seed)


# -- appearance --------------------------------------------------------------------------------
FLOOR_MATERIAL, BODY_MATERIAL, SKYBOX_TEXTURE = "grid", "self", "skybox"


def _rng(variant: Variant, seed: int, part: str) -> np.random.Generator:
    """One generator per (variant, seed, part): adding a part never shifts another's draw."""
    salt = int.from_bytes(hashlib.sha256(f"{variant.name}/{part}".encode()).digest()[:4], "big")
    return np.random.default_rng(np.random.SeedSequence([check_seed(seed), salt]))


def appearance(variant: Variant, seed: int) -> dict[str, Any]:
    """What the seed draws, as plain numbers (recorded in a variant dataset's metadata)."""
    drawn: dict[str, Any] = {}
    if variant.colours:
        rng = _rng(variant, seed, "colours")
        drawn["floor_rgb"] = rng.uniform(0.1, 1.0, 3).round(4).tolist()
        drawn["body_rgb"] = rng.uniform(0.1, 1.0, 3).round(4).tolist()
        sky = rng.uniform(0.0, 1.0, (2, 3)).round(4).tolist()  # drawn always: stable draws
        if not variant.background:  # a background image replaces the sky's gradient
            drawn["sky_top_rgb"], drawn["sky_bottom_rgb"] = sky
    if variant.background:
        drawn["background"] = "smooth colour noise, 3 scales (see variants.background_image)"
    return drawn


def _upsample(coarse: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of (n, g, g, 3) grids to (n, size, size, 3)."""
    grid = coarse.shape[1]
    positions = np.linspace(0, grid - 1, size)
    low = np.floor(positions).astype(int).clip(0, grid - 2)
    weight = (positions - low)[None, :, None, None]
    rows = coarse[:, low] * (1 - weight) + coarse[:, low + 1] * weight
    weight = weight.transpose(0, 2, 1, 3)
    return rows[:, :, low] * (1 - weight) + rows[:, :, low + 1] * weight


def background_image(variant: Variant, seed: int, faces: int, size: int) -> np.ndarray:
    """A static skybox image (faces, size, size, 3) uint8: smooth colour noise at three scales.

    Drawn at up to 200 px a side and repeated up to ``size`` (the noise is smooth at that
    scale; drawing at 800 px costs seconds per environment).
    """
    rng = _rng(variant, seed, "background")
    factor = max(1, size // 200)
    low = -(-size // factor)
    image = np.zeros((faces, low, low, 3), np.float32)
    for grid, weight in ((3, 0.5), (7, 0.3), (17, 0.2)):
        image += weight * _upsample(rng.uniform(0, 255, (faces, grid, grid, 3)), low)
    pixels = image.clip(0, 255).astype(np.uint8)
    return pixels.repeat(factor, axis=1).repeat(factor, axis=2)[:, :size, :size]


def _gradient_sky(top: list[float], bottom: list[float], faces: int, size: int) -> np.ndarray:
    """A vertical two-colour gradient on every skybox face (like dm_control's own sky)."""
    fraction = np.linspace(0.0, 1.0, size)[:, None]
    column = (1 - fraction) * np.asarray(top) + fraction * np.asarray(bottom)
    face = np.broadcast_to(column[:, None, :], (size, size, 3))
    return np.broadcast_to((face * 255).round().astype(np.uint8), (faces, size, size, 3))


def apply_appearance(physics: Any, variant: Variant, seed: int) -> dict[str, Any]:
    """Change the model's colours and sky for ``variant``; returns what was drawn.

    Material rgba is read by every render; texture pixels live on the GL side too, so a changed
    skybox is re-uploaded when a rendering context already exists.
    """
    drawn = appearance(variant, seed)
    if not drawn:
        return drawn
    model = physics.model
    if variant.colours:
        model.mat_rgba[model.name2id(FLOOR_MATERIAL, "material"), :3] = drawn["floor_rgb"]
        model.mat_rgba[model.name2id(BODY_MATERIAL, "material"), :3] = drawn["body_rgb"]
    sky = model.name2id(SKYBOX_TEXTURE, "texture")
    width, height = int(model.tex_width[sky]), int(model.tex_height[sky])
    faces, start = height // width, int(model.tex_adr[sky])
    if variant.background:
        image = background_image(variant, seed, faces, width)
    else:
        image = _gradient_sky(drawn["sky_top_rgb"], drawn["sky_bottom_rgb"], faces, width)
    model.tex_data[start : start + image.size] = image.reshape(-1)
    _upload_texture(physics, sky)
    return drawn


def _upload_texture(physics: Any, texture_id: int) -> None:
    contexts = getattr(physics, "_contexts", None)
    if contexts is None:  # no context yet: the first render uploads the changed model
        return
    import mujoco

    with contexts.gl.make_current() as ctx:
        ctx.call(mujoco.mjr_uploadTexture, physics.model.ptr, contexts.mujoco.ptr, texture_id)
