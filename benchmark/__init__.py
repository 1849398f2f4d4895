"""VORB harness: the pixel walker environment, datasets, sampler, registry, runner and report."""

from benchmark.envs import register_envs

register_envs()
