"""From results folders to a leaderboard: statistics, figures, comparisons and exports.

``python -m benchmark.report`` is :mod:`benchmark.report.leaderboard`."""
