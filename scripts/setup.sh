#!/usr/bin/env bash
# Set up everything VORB needs on a fresh Debian/Ubuntu machine; safe to run again (it skips
# what is done). Sourced by scripts/test.sh, scripts/demo.sh and scripts/bench.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VORB_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

# Headless OpenGL for MuJoCo: EGL (Mesa, software llvmpipe) and OSMesa as the fallback.
GL_PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6"
if command -v dpkg >/dev/null && ! dpkg -s $GL_PKGS >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing headless GL packages: $GL_PKGS"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $GL_PKGS >/dev/null
  else
    echo "[setup] missing Debian packages for headless rendering; run as root: apt-get install -y $GL_PKGS" >&2
  fi
fi

# The virtual environment; re-installed only when pyproject.toml changes.
STAMP="$VENV/.vorb-installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || ! cmp -s "$ROOT/pyproject.toml" "$STAMP"; then
  echo "[setup] installing packages (torch first: an unpinned torch pulls CUDA builds)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "torch==2.13.0"
  "$VENV/bin/pip" install -q -e "$ROOT[dev,ray,consumers]"
  cp "$ROOT/pyproject.toml" "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export RAY_USAGE_STATS_ENABLED=0
