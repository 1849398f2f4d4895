"""VORB harness: the pixel walker environment, datasets, sampler, registry, runner and report."""

import benchmark.data._quiet_gym  # noqa: F401  (first: before gymnasium loads shimmy, which imports gym)
from benchmark.data.envs import register_envs

register_envs()
