"""The pixel walker environment and its registered gymnasium ids.

One render per *agent* step: action repeat lives inside the environment, so the physics advances
`action_repeat` times and the camera renders once (an action-repeat wrapper outside a pixel
wrapper would render every sub-step, doubling the cost of data collection on CPU).

Observations are a dict so that a dataset can keep everything a step produced:
- ``pixels``: 84x84x3 uint8, camera 0, dm_control's default visuals (what published pixel DMC
  results were rendered with), HWC as the renderer gives it (the torch loader transposes);
- ``state``: the proprioceptive observation (walker: 24 floats), what the behaviour policies see;
- ``physics``: the full MuJoCo state (``physics.get_state()``), so frames can be re-rendered at
  another size or camera, or checked on another renderer, without re-running a policy.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
from typing import Any

import gymnasium as gym
import numpy as np

from benchmark.data.variants import (
    DEFAULT,
    ENV_ID,
    VARIANTS,
    apply_appearance,
    check_seed,
    get_variant,
)

STATE_ENV_ID = "vorb/walker-walk-state-v0"

# Debian packages that provide each headless GL backend MuJoCo can use.
GL_PACKAGES = {
    "egl": "libegl1 libegl-mesa0 libgl1-mesa-dri",
    "osmesa": "libosmesa6",
}


class HeadlessGLError(RuntimeError):
    """No headless OpenGL backend works on this machine."""


def _backend_works(backend: str) -> bool:
    """Probe a GL backend in a subprocess: MuJoCo picks its backend once, at import time."""
    probe = (
        "import mujoco, numpy as np\n"
        'm = mujoco.MjModel.from_xml_string(\'<mujoco><worldbody><geom size=".1"/>'
        "</worldbody></mujoco>')\n"
        "r = mujoco.Renderer(m, 8, 8)\n"
        "d = mujoco.MjData(m); mujoco.mj_forward(m, d); r.update_scene(d); r.render()\n"
    )
    env = {**os.environ, "MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, timeout=120, check=False
    )
    return result.returncode == 0


@functools.cache
def ensure_headless_gl() -> str:
    """Choose MuJoCo's GL backend before dm_control is imported: EGL, then OSMesa.

    A backend the user set in ``MUJOCO_GL`` is respected as is.
    """
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return chosen
    for backend in ("egl", "osmesa"):
        if _backend_works(backend):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    hints = "; ".join(f"{name}: apt-get install -y {pkgs}" for name, pkgs in GL_PACKAGES.items())
    raise HeadlessGLError(
        "No headless OpenGL backend works for MuJoCo (tried MUJOCO_GL=egl and osmesa). "
        f"Install the Debian packages for one of them ({hints}), or set MUJOCO_GL yourself."
    )


class DMCWalker(gym.Env):
    """dm_control walker as a gymnasium env: dict observations, action repeat, one render a step."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}  # noqa: RUF012
    # How the frames look (benchmark.data.variants); make_walker_variant sets them.
    variant_name: str = "default"
    variant_seed: int = 0
    appearance: dict[str, Any] = {}  # noqa: RUF012 (replaced, never mutated)

    def __init__(
        self,
        task: str = "walk",
        image_size: int = 84,
        camera_id: int = 0,
        action_repeat: int = 2,
        pixels: bool = True,
        time_limit_s: float = 25.0,  # dm_control walker's default: 1,000 control steps
    ) -> None:
        if pixels:
            ensure_headless_gl()
        else:
            # dm_control fixes its GL backend at first import: choose it now even for a state
            # env, or a pixel env made later in the same process cannot render.
            with contextlib.suppress(HeadlessGLError):
                ensure_headless_gl()
        from dm_control import suite
        from shimmy.utils.dm_env import dm_spec2gym_space

        task_kwargs: dict[str, Any] = {"random": 0, "time_limit": time_limit_s}
        self.time_limit_s = time_limit_s
        self._env = suite.load("walker", task, task_kwargs=task_kwargs)
        self.task_name, self.image_size, self.camera_id = task, image_size, camera_id
        self.action_repeat, self.pixels = action_repeat, pixels
        self.render_mode = "rgb_array"

        self._state_space = dm_spec2gym_space(self._env.observation_spec())
        physics_dim = self._env.physics.get_state().shape[0]
        spaces: dict[str, gym.Space] = {
            "state": gym.spaces.Box(-np.inf, np.inf, (self.state_dim,), dtype=np.float64),
            "physics": gym.spaces.Box(-np.inf, np.inf, (physics_dim,), dtype=np.float64),
        }
        if pixels:
            spaces["pixels"] = gym.spaces.Box(0, 255, (image_size, image_size, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(
            spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), dtype=np.float32
        )

    @property
    def state_dim(self) -> int:
        return sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values())

    @property
    def physics(self) -> Any:
        """The dm_control physics, for re-rendering stored physics states."""
        return self._env.physics

    @property
    def max_episode_steps(self) -> int:
        """Agent steps an episode lasts (the task's time limit over control steps and repeat)."""
        control_steps = round(self.time_limit_s / self._env.control_timestep())
        return int(np.ceil(control_steps / self.action_repeat))

    def _observation(self, timestep: Any) -> dict[str, np.ndarray]:
        state = np.concatenate(
            [np.asarray(v, dtype=np.float64).ravel() for v in timestep.observation.values()]
        )
        obs = {"state": state, "physics": self._env.physics.get_state().copy()}
        if self.pixels:
            obs["pixels"] = self.render()
        return obs

    def render(self) -> np.ndarray:
        return self._env.physics.render(
            height=self.image_size, width=self.image_size, camera_id=self.camera_id
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            if not 0 <= seed < 2**32:
                raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed}")
            # The task's RandomState draws the initial pose: reseeding it makes resets exact.
            self._env.task.random.seed(seed)
        return self._observation(self._env.reset()), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(
                f"action shape {action.shape} does not match {self.action_space.shape}"
            )
        reward = 0.0
        for _ in range(self.action_repeat):
            timestep = self._env.step(action)
            reward += float(timestep.reward or 0.0)
            if timestep.last():
                break
        # dm_control ends walker episodes only by its time limit (discount stays 1):
        # that is a truncation, never a termination.
        terminated = timestep.last() and timestep.discount == 0.0
        truncated = timestep.last() and not terminated
        return self._observation(timestep), reward, bool(terminated), bool(truncated), {}

    def set_physics_state(self, physics_state: np.ndarray) -> None:
        """Put the simulator in a stored state (for re-rendering a dataset's frames)."""
        with self._env.physics.reset_context():
            self._env.physics.set_state(physics_state)

    def close(self) -> None:
        # Closing the dm_control env avoids "cannot schedule new futures after shutdown" at exit.
        close = getattr(self._env, "close", None)
        if close is not None:
            close()


def make_walker_pixels(**kwargs: Any) -> DMCWalker:
    """Entry point of ``vorb/walker-walk-pixels-v0`` (a plain function, so the spec serialises)."""
    return DMCWalker(pixels=True, **kwargs)


def make_walker_state(**kwargs: Any) -> DMCWalker:
    """Entry point of ``vorb/walker-walk-state-v0``: no rendering (behaviour-policy training)."""
    return DMCWalker(pixels=False, **kwargs)


def make_walker_variant(variant: str, variant_seed: int = 0, **kwargs: Any) -> DMCWalker:
    """Entry point of ``vorb/walker-walk-pixels-<variant>-v0``: the pixel walker seen as
    :mod:`benchmark.data.variants` says (size, camera, colours and sky drawn from ``variant_seed``).

    ``python -m benchmark.datasets rerender`` renders stored physics states through this same
    function, so a variant's dataset frames and evaluation frames cannot drift apart.
    """
    chosen, seed = get_variant(variant), check_seed(variant_seed)
    env = DMCWalker(pixels=True, image_size=chosen.image_size, camera_id=chosen.camera_id, **kwargs)
    env.variant_name, env.variant_seed = chosen.name, seed
    env.appearance = apply_appearance(env.physics, chosen, seed)
    return env


def register_envs() -> None:
    """Register the package's ids once; importing :mod:`benchmark` calls this."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="benchmark.data.envs:make_walker_pixels")
    if STATE_ENV_ID not in gym.registry:
        gym.register(id=STATE_ENV_ID, entry_point="benchmark.data.envs:make_walker_state")
    for variant in VARIANTS.values():  # the default variant is ENV_ID itself
        if variant.name != DEFAULT and variant.env_id not in gym.registry:
            gym.register(
                id=variant.env_id,
                entry_point="benchmark.data.envs:make_walker_variant",
                kwargs={"variant": variant.name},
            )
