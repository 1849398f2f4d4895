#!/usr/bin/env bash
# The main job at a small default scale: set up, build small datasets (random and expert, 2,000
# transitions of 100-step episodes), run every registered baseline over 2 seeds (demo profile),
# write the leaderboard and figures to results/demo/. Re-running resumes (finished cells skip).
# Numbers at this scale are a demonstration of the pipeline, not benchmark results.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m benchmark.run --profile demo --results runs/demo "$@"
python -m benchmark.report --results runs/demo --out results/demo
echo "Leaderboard: results/demo/leaderboard.md   Figures: results/demo/figures/"
