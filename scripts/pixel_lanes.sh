#!/usr/bin/env bash
# Start the pixel grid's two background lanes (scripts/reference_pixels.sh), one per core, from
# this checkout (run it from a worktree fixed at a commit, so that edits elsewhere never change
# a running cell's code), and return at once.
#   core 0: LANE=probe (seed 0 of the three), then LANE=rest;
#   core 1: LANE=seeds (seeds 1-2 of the three), then LANE=rest.
# Lanes share cells through their locks, so both may reach LANE=rest.
# Usage: bash scripts/pixel_lanes.sh DEADLINE_EPOCH [RESULTS] [LOGS]
#   RESULTS (default runs/reference-pixels) is resumed from: finished cells are skipped, paused
#   ones go on from their exact checkpoints. VORB_VENV names the lanes' own venv.
# Stop them: pkill -f reference_pixels.sh; pkill -TERM -f "benchmark.run --profile pixels-cpu"
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  echo "usage: bash scripts/pixel_lanes.sh DEADLINE_EPOCH [RESULTS] [LOGS] (got: ${*:-nothing})" >&2
  exit 2
fi
export DEADLINE="$1"
export RESULTS="${2:-runs/reference-pixels}"
LOGS="${3:-logs}"
mkdir -p "$LOGS" "$RESULTS"
# One torch thread a lane: the runner reads the core it is pinned to; OpenMP is told the same.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 WORKERS=1

lane() {  # lane CORE FIRST_LANE LOG
  (LANE="$2" taskset -c "$1" bash scripts/reference_pixels.sh
   LANE=rest taskset -c "$1" bash scripts/reference_pixels.sh) >>"$3" 2>&1 &
}
lane 0 probe "$LOGS/lane-pixels-probe.log"
lane 1 seeds "$LOGS/lane-pixels-seeds.log"
echo "[pixel-lanes] started until $(date -u -d "@$DEADLINE" +%FT%TZ): logs in $LOGS/lane-pixels-{probe,seeds}.log"
