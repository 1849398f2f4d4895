#!/usr/bin/env bash
# The pixel track's CPU-budget grid (results/reference-pixels/): the `pixels-cpu` profile (the
# first 10,000 updates of the 1M-update protocol: the recipes' expert dataset, evaluation every
# 2,500 updates over 10 rendered episodes, deterministic actions, fp32), 3 seeds.
# Lanes, in the order the issue asks for:
#   LANE=probe: seed 0 of cql-curl, sac-curl-offline and bc-pixels (CQL-CURL first: the longest,
#       and the claim VORB exists to check);
#   LANE=seeds: seeds 1 and 2 of those three;
#   LANE=rest: sac-curl-online and drqbc, 3 seeds each;
#   LANE=all: the three, one after the other (finished cells are skipped in a second).
# One worker and one torch thread a lane, each lane pinned to its own core
# (taskset -c 0 ..., taskset -c 1 ...): more threads than cores makes OpenMP's spinning threads
# ~100x slower (measured: scripts/reference_state.sh). Until DEADLINE (epoch seconds; default
# 95 minutes from now) every command stops its cells at exact checkpoints before it (exit 75),
# and the same script run again resumes them from RESULTS. Lanes share cells through their locks.
# Run lanes from a worktree fixed at a commit, with a venv of its own (VORB_VENV=<folder>):
# an editable install points at one checkout, so a shared venv would follow the last set-up.
# The expert dataset must exist: python -m benchmark.datasets build vorb/walker-walk/expert-v0
# Then: python -m benchmark.report --results runs/reference-pixels --out results/reference-pixels
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DEADLINE="${DEADLINE:-$(( $(date +%s) + 95 * 60 ))}"
RESULTS="${RESULTS:-runs/reference-pixels}"
WORKERS="${WORKERS:-1}"
LANE="${LANE:-probe}"

run() {  # run ALGOS SEEDS (as --seeds: "0," is seed 0, "1 2" seeds 1 and 2, "3" seeds 0-2)
  local algos="$1"
  shift
  local left=$(( DEADLINE - $(date +%s) ))
  if [ "$left" -le 300 ]; then echo "[reference-pixels] no time left for $algos"; return; fi
  echo "[reference-pixels] $(date -u +%FT%TZ) start $algos seeds $* (budget ${left}s)"
  python -m benchmark.run --profile pixels-cpu --seeds "$@" --workers "$WORKERS" \
    --results "$RESULTS" --time-budget "${left}s" --algos "$algos"
  echo "[reference-pixels] $(date -u +%FT%TZ) end $algos (exit $?)"
}

probe() {
  run cql-curl 0,
  run sac-curl-offline 0,
  run bc-pixels 0,
}

seeds() {
  run cql-curl,sac-curl-offline,bc-pixels 1 2
}

rest() {
  run sac-curl-online,drqbc 3
}

case "$LANE" in
  probe) probe ;;
  seeds) seeds ;;
  rest) rest ;;
  all) probe; seeds; rest ;;
  *) echo "LANE=$LANE: valid lanes are probe, seeds, rest, all" >&2; exit 2 ;;
esac
