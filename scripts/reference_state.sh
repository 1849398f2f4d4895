#!/usr/bin/env bash
# The state track's reference grid (results/reference-state/): the `state` profile (100,000
# updates, evaluation every 5,000 over 10 episodes, deterministic actions), 3 seeds, on the
# state-only builds of the recipes' datasets (built on first use, digest-checked).
# One torch thread a worker process, one worker a core (more threads than cores makes OpenMP's
# spinning threads ~100x slower, measured). Until DEADLINE (epoch seconds; default 95 minutes
# from now) every command stops its cells at exact checkpoints before it (exit 75), and the
# same script run again resumes them.
#   LANE=grid (default): BC, TD3+BC and offline SAC, expert first, then medium-expert, then the
#       rest, then online SAC (the order in which the anchors check them);
#   LANE=cql: CQL on expert, 3 seeds, at the CPU budget the issue allows (~2 CPU-hours:
#       CQL_UPDATES updates at a measured ~0.3 s each, evaluated every CQL_UPDATES/15).
#   LANE=all: both, one after the other;
#   LANE=bc-td3bc and LANE=sac: the grid split in two for two cores (BC and TD3+BC on every
#       dataset; online SAC, then offline SAC on every dataset): the cells of LANE=grid, in
#       lanes of about equal cost once expert and medium-expert are done (finished cells are
#       skipped in a second);
#   LANE=sac-reverse: offline SAC from the other end of the list (random first): a second core
#       once the bc-td3bc lane is done, meeting LANE=sac in the middle.
#   LANE=td3bc5: TD3+BC as published (the actor on the first critic) on every dataset, 5 seeds,
#       the parity datasets (expert, medium) first;
#   LANE=bc5: BC's seeds 3 and 4 on every dataset (seeds 0-2 are skipped where present).
#   LANE=parity: the parity check's cells, 3 seeds on medium and expert: td3bc-state, then the
#       CORL-style references bc-corl-ref and td3bc-corl-ref (benchmarks/corl_parity.py, through
#       VORB's data and evaluation; td3bc-corl-ref also on medium-replay, where td3bc-state's
#       first seeds' Q ran past the value bound: is it TD3+BC or VORB?), then the rest of td3bc5
#       and bc5.
# SEEDS (default 3; td3bc5 and bc5: 5) is --seeds.
# WORKERS (default 2) cells at once. Two lanes side by side: WORKERS=1 for each, each pinned to
# its own core (taskset -c 0 ..., taskset -c 1 ...): a worker takes cores/workers torch threads,
# so an unpinned WORKERS=1 lane takes both cores and two of them oversubscribe (measured: CQL at
# 1.1 CPU-s an update instead of 0.3). Lanes share cells through the cells' locks.
# Run lanes from a worktree fixed at a commit, with a venv of its own (VORB_VENV=<folder>):
# an editable install points at one checkout, so a shared venv would follow the last set-up.
# Then: python -m benchmark.report --results runs/reference-state --out results/reference-state
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DEADLINE="${DEADLINE:-$(( $(date +%s) + 95 * 60 ))}"
RESULTS="${RESULTS:-runs/reference-state}"
WORKERS="${WORKERS:-2}"
LANE="${LANE:-grid}"
SEEDS="${SEEDS:-3}"
CQL_UPDATES="${CQL_UPDATES:-7500}"
D=vorb/walker-walk

run() {  # run ALGOS DATASET... [-- EXTRA ARGS]: the time left until DEADLINE
  local algos="$1" datasets=() extra=()
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do datasets+=("$1"); shift; done
  [ $# -gt 0 ] && shift && extra=("$@")
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -le 120 ]; then echo "[reference-state] no time left for $algos"; return; fi
  echo "[reference-state] $(date -u +%FT%TZ) start $algos ${datasets[*]} ${extra[*]} (budget ${left}s)"
  python -m benchmark.run --profile state --seeds "$SEEDS" --workers "$WORKERS" --results "$RESULTS" \
    --time-budget "${left}s" --algos "$algos" ${datasets:+--datasets "${datasets[@]}"} "${extra[@]}"
  echo "[reference-state] $(date -u +%FT%TZ) end $algos (exit $?)"
}

grid() {
  run bc-state,td3bc-state,sac-state-offline "$D/expert-v0"
  run bc-state,td3bc-state,sac-state-offline "$D/medium-expert-v0"
  run bc-state,td3bc-state "$D/medium-v0" "$D/medium-replay-v0" "$D/random-v0"
  run sac-state-online
  run sac-state-offline "$D/medium-v0" "$D/medium-replay-v0" "$D/random-v0"
}

bc_td3bc() {
  run bc-state,td3bc-state "$D/medium-replay-v0" "$D/random-v0" "$D/medium-v0" \
    "$D/medium-expert-v0" "$D/expert-v0"
}

sac() {
  run sac-state-online
  run sac-state-offline "$D/medium-expert-v0" "$D/medium-v0" "$D/medium-replay-v0" \
    "$D/random-v0" "$D/expert-v0"
}

sac_reverse() {
  run sac-state-offline "$D/random-v0" "$D/medium-replay-v0" "$D/medium-v0" \
    "$D/medium-expert-v0" "$D/expert-v0"
}

td3bc5() {
  SEEDS=5 run td3bc-state "$D/expert-v0" "$D/medium-v0" "$D/medium-expert-v0" \
    "$D/medium-replay-v0" "$D/random-v0"
}

bc5() {
  SEEDS=5 run bc-state "$D/expert-v0" "$D/medium-v0" "$D/medium-expert-v0" \
    "$D/medium-replay-v0" "$D/random-v0"
}

parity() {
  local refs=benchmarks.corl_parity
  run td3bc-state "$D/expert-v0" "$D/medium-v0"
  run "$refs:ReferenceBCAgent" "$D/expert-v0" "$D/medium-v0"
  run "$refs:ReferenceTD3BCAgent" "$D/expert-v0" "$D/medium-v0" "$D/medium-replay-v0"
  td3bc5
  bc5
}

cql() {
  run cql-state "$D/expert-v0" -- --set "updates=$CQL_UPDATES" \
    --set "eval_interval=$(( CQL_UPDATES / 15 ))"
}

case "$LANE" in
  grid) grid ;;
  cql) cql ;;
  all) grid; cql ;;
  bc-td3bc) bc_td3bc ;;
  sac) sac ;;
  sac-reverse) sac_reverse ;;
  td3bc5) td3bc5 ;;
  bc5) bc5 ;;
  parity) parity ;;
  *) echo "LANE=$LANE: valid lanes are grid, cql, all, bc-td3bc, sac, sac-reverse, td3bc5, bc5, parity" >&2
     exit 2 ;;
esac
