#!/usr/bin/env bash
# The main job at a small scale (at most 20 min on a 2-core CPU, set-up included; README "The
# demo" has the measured times): set up, build a small expert dataset (10,000 transitions, 20
# full 500-step episodes, its frames and its states), run every registered baseline, pixels and
# state, over 2 seeds (demo profile: the state baselines train thousands of updates and are
# evaluated over 10 episodes; pixel BC 300 updates; the pixel actor-critics 6), write the
# leaderboard, the pixel-state gap, the figures and an export of the cells (results.tar.gz) to
# results/demo/. Re-running resumes.
# It shows learning at small scale, not benchmark results (results/reference-state/, and the
# full profile on a GPU for pixels).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m benchmark.run --profile demo --results runs/demo "$@"
python -m benchmark.report --results runs/demo --out results/demo
# The cells themselves, beside their report: `python -m benchmark.compare --reference results/demo`
# reads the archive in place.
python -m benchmark.export_results --results runs/demo --out results/demo/results.tar.gz
echo "Leaderboard: results/demo/leaderboard.md   Figures: results/demo/figures/"
