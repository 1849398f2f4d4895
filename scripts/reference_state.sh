#!/usr/bin/env bash
# The state track's reference grid (results/reference-state/): the `state` profile (100,000
# updates, evaluation every 5,000 over 10 episodes, deterministic actions), 3 seeds, on the
# state-only builds of the recipes' datasets (built on first use, digest-checked).
# Two worker processes of one torch thread each (one per core: more threads than cores makes
# OpenMP's spinning threads ~100x slower, measured), until DEADLINE (epoch seconds; default 95
# minutes from now): every command stops its cells at exact checkpoints before it (exit 75),
# and the same script run again resumes them. Cells are ordered by what the anchors check
# first: BC, TD3+BC and offline SAC on expert, then medium-expert, then the rest.
# Then: python -m benchmark.report --results runs/reference-state --out results/reference-state
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DEADLINE="${DEADLINE:-$(( $(date +%s) + 95 * 60 ))}"
RESULTS="${RESULTS:-runs/reference-state}"
D=vorb/walker-walk

run() {  # run ALGOS DATASETS...: the time left until DEADLINE
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -le 120 ]; then echo "[reference-state] no time left for $*"; return; fi
  echo "[reference-state] $(date -u +%FT%TZ) start $* (budget ${left}s)"
  python -m benchmark.run --profile state --seeds 3 --workers 2 --results "$RESULTS" \
    --time-budget "${left}s" --algos "$1" --datasets "${@:2}"
  echo "[reference-state] $(date -u +%FT%TZ) end $* (exit $?)"
}

run bc-state,td3bc-state,sac-state-offline "$D/expert-v0"
run bc-state,td3bc-state,sac-state-offline "$D/medium-expert-v0"
run bc-state,td3bc-state "$D/medium-v0" "$D/medium-replay-v0" "$D/random-v0"
run sac-state-online
run sac-state-offline "$D/medium-v0" "$D/medium-replay-v0" "$D/random-v0"
