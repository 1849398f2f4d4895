"""From a plan to finished cells: the registry, profiles, the runner, evaluation and results.

``python -m benchmark.run`` is its command line (:mod:`benchmark.run`)."""
