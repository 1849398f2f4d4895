"""VORB baselines. Each lives in one file (config, networks specific to it, losses, update) and
imports only :mod:`baselines.contract` and ``baselines/common/``.

The harness reaches them only by the ``module:Class`` strings of its registry's table
(``benchmark/harness/registry.py``), so listing baselines never imports torch.
"""
