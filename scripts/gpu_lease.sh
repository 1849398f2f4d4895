#!/usr/bin/env bash
# One GPU slot, one command: install the carried bundle, then every stage of benchmark.lease
# (datasets, smoke test, speed suite, reference cells, export) under one time budget. What comes
# back is OUT: status.json, lease.log, probe.json, speed.json, results.tar.gz (5 files).
#
#   scripts/gpu_lease.sh --out DIR [--budget 9m] [--device cuda|cpu] [--scale smoke|full]
#                        [--bundle DIR] [--work DIR] [--seeds N] [--reference results/reference]
#
# --bundle: a folder made by scripts/lease_bundle.sh (wheels, and gl/*.deb for EGL); without it
# nothing is installed (the packages must be there already, as in this repository's .venv).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STARTED="$(date +%s.%N)"
PY="${PYTHON:-python3}"
COMMAND="$0 $*"
OUT="" BUNDLE="" WORK="${TMPDIR:-/tmp}/vorb-lease" ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ -n "$OUT" ] || { echo "usage: $0 --out DIR [--budget 9m] [--device cuda|cpu] [--scale smoke|full] [--bundle DIR]" >&2; exit 2; }
mkdir -p "$OUT" "$WORK"
exec > >(tee -a "$OUT/lease.log") 2>&1  # the one log: this script and every stage

# Stage 1, install: here, since the stages after it import what it installs.
install_status=skipped install_detail="no --bundle: using the packages already installed"
if [ -n "$BUNDLE" ]; then
  install_status=ok install_detail=""
  SITE="$WORK/site"
  # --no-deps --target: the image's torch, numpy, scipy... stay as they are; the bundle holds
  # exactly what is missing (scripts/lease_bundle.sh).
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$BUNDLE"/*.whl; then
    install_status=failed install_detail="pip install of $BUNDLE/*.whl failed"
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if ls "$BUNDLE"/gl/*.deb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then  # the GL loader libraries EGL needs (libglvnd's libEGL etc.)
      for deb in "$BUNDLE"/gl/*.deb; do dpkg -x "$deb" / || install_detail="$install_detail; dpkg -x $deb failed"; done
      ldconfig
    else
      install_detail="$install_detail; gl/*.deb not unpacked (needs root)"
    fi
  else
    install_detail="$install_detail; no gl/*.deb in the bundle"
  fi
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" VORB_LEASE_COMMAND="$COMMAND"
INSTALL_S="$(awk "BEGIN { print $(date +%s.%N) - $STARTED }")"
cd "$ROOT"
"$PY" -m benchmark.lease --out "$OUT" --work "$WORK" --started "$STARTED" \
  --install-status "$install_status" --install-seconds "$INSTALL_S" \
  --install-detail "${install_detail#; }" "${ARGS[@]}"
