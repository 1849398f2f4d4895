#!/usr/bin/env bash
# The main job at a small scale (~15-18 min on a 2-core CPU, set-up included): set up, build a small
# expert dataset (10,000 transitions, 20 full 500-step episodes), run every registered baseline
# over 2 seeds (demo profile: BC 750 updates, where learning shows on a CPU; the others 15),
# write the leaderboard and figures to results/demo/. Re-running resumes (finished cells skip).
# It shows learning at small scale, not benchmark results (full profile, results/reference/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m benchmark.run --profile demo --results runs/demo "$@"
python -m benchmark.report --results runs/demo --out results/demo
echo "Leaderboard: results/demo/leaderboard.md   Figures: results/demo/figures/"
