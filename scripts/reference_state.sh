#!/usr/bin/env bash
# The state track's reference grid (results/reference-state/): the `state` profile (100,000
# updates, evaluation every 5,000 over 10 episodes, deterministic actions), 3 seeds, on the
# state-only builds of the recipes' datasets (built on first use, digest-checked).
# Two lanes of one worker (one torch thread) each, one per core, until DEADLINE (epoch seconds;
# default: 115 minutes from now); every command stops its cells at exact checkpoints before it
# (exit 75) and the same script run again resumes them. Cells are ordered by what the anchors
# check first: BC and TD3+BC on expert, offline SAC's overestimation, then the rest.
# Then: python -m benchmark.report --results runs/reference-state --out results/reference-state
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DEADLINE="${DEADLINE:-$(( $(date +%s) + 115 * 60 ))}"
RESULTS="${RESULTS:-runs/reference-state}"
EXPERT=vorb/walker-walk/expert-v0
MEDIUM_EXPERT=vorb/walker-walk/medium-expert-v0

run() {  # run ALGO DATASETS...: one worker, the time left until DEADLINE
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -le 120 ]; then echo "[reference-state] no time left for $*"; return; fi
  echo "[reference-state] $(date -u +%FT%TZ) start $* (budget ${left}s)"
  python -m benchmark.run --profile state --seeds 3 --workers 1 --results "$RESULTS" \
    --time-budget "${left}s" --algos "$1" --datasets "${@:2}"
  echo "[reference-state] $(date -u +%FT%TZ) end $* (exit $?)"
}

lane_a() {
  run bc-state "$EXPERT"
  run sac-state-offline "$EXPERT"
  run bc-state "$MEDIUM_EXPERT" vorb/walker-walk/medium-v0
  run bc-state vorb/walker-walk/medium-replay-v0 vorb/walker-walk/random-v0
}
lane_b() {
  run td3bc-state "$EXPERT"
  run td3bc-state "$MEDIUM_EXPERT"
  run sac-state-offline "$MEDIUM_EXPERT"
}
lane_a > "$RESULTS.lane-a.log" 2>&1 &
lane_b > "$RESULTS.lane-b.log" 2>&1 &
wait
