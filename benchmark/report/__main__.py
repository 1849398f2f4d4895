"""``python -m benchmark.report``: the leaderboard and figures (:mod:`benchmark.report.leaderboard`)."""

import sys

from benchmark.report.leaderboard import main

sys.exit(main())
