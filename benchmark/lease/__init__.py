"""A GPU slot in one command (``scripts/gpu_lease.sh``): install, datasets, smoke, speed, cells.

The stages, in order, each leaving its outcome in ``OUT/status.json`` before the next starts:

1. install (``scripts/gpu_lease.sh``): the carried bundle (``scripts/lease_bundle.sh``) with no
   index, next to the image's own torch, and the GL loader libraries EGL needs;
2. datasets: the datasets of the next group of reference cells, built there, then verified;
3. smoke: every baseline on the device for a few updates and one evaluation episode, each
   checkpoint loaded back into a fresh trainer and stepped once (:mod:`benchmark.lease.smoke`);
4. speed: the plan's probe (:mod:`benchmark.lease.probe`, ``OUT/probe.json``), then on CUDA the
   speed suite and its learn-alike checks (:mod:`benchmark.lease.speed`, ``OUT/speed.json``);
5. cells: the next reference cells with the update count that fits the time left
   (:mod:`benchmark.lease.plan`), run by ``benchmark.run --time-budget``;
6. export: their tables and metadata as ``OUT/results.tar.gz`` (``benchmark.report.export_results``).

Everything goes to ``OUT/lease.log``. Back here, ``python -m benchmark.lease.merge OUT`` merges
the cells into ``results/reference/`` and rebuilds the leaderboard (:mod:`benchmark.lease.merge`).
"""
