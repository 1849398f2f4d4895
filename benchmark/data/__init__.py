"""What the agents see and learn from: the registered environments, visual variants and replays.

The Minari datasets themselves (recipes, build, verify, exports) are :mod:`benchmark.datasets`."""
