#!/usr/bin/env bash
# Set up everything VORB needs on a fresh Debian/Ubuntu machine; safe to run again (it skips
# what is done). Sourced by scripts/test.sh, scripts/demo.sh and scripts/bench.sh.
# Offline: VORB_WHEELHOUSE=<folder of scripts/wheelhouse.sh> installs from that folder alone,
# never asking an index; a wheelhouse without torch uses the system's (a CUDA image's) torch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/pins.sh"
VENV="${VORB_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
WHEELHOUSE="${VORB_WHEELHOUSE:-}"
PIP_FROM=()  # where pip takes packages: the registry, or the wheelhouse alone
VENV_ARGS=()
if [ -n "$WHEELHOUSE" ]; then
  if [ ! -f "$WHEELHOUSE/requirements.txt" ]; then
    echo "[setup] VORB_WHEELHOUSE=$WHEELHOUSE is not a wheelhouse (no requirements.txt); make one with scripts/wheelhouse.sh" >&2
    exit 2
  fi
  WHEELHOUSE="$(cd "$WHEELHOUSE" && pwd)"
  PIP_FROM=(--no-index --find-links "$WHEELHOUSE")
  if ! ls "$WHEELHOUSE" | grep -q '^torch-'; then
    VORB_TORCH=""  # left out (--without torch): the image's torch counts
    VENV_ARGS=(--system-site-packages)
  fi
fi

# Headless OpenGL for MuJoCo: EGL (Mesa, software llvmpipe) and OSMesa as the fallback.
GL_PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6"
if command -v dpkg >/dev/null && ! dpkg -s $GL_PKGS >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -z "$WHEELHOUSE" ]; then
    echo "[setup] installing headless GL packages: $GL_PKGS"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $GL_PKGS >/dev/null
  else
    echo "[setup] missing Debian packages for headless rendering; run as root: apt-get install -y $GL_PKGS" >&2
  fi
fi

# The virtual environment; re-installed only when pyproject.toml or the checkout changes (the
# editable install points at one checkout: a lane's worktree wants a venv of its own).
# Two set-ups of one venv at once would race in pip (OSError on the editable .pth): a lock
# makes the second wait for the first.
STAMP="$VENV/.vorb-installed"
mkdir -p "$VENV"
exec {SETUP_LOCK}>"$VENV/.vorb-setup-lock"
if command -v flock >/dev/null; then flock "$SETUP_LOCK"; fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "${VENV_ARGS[@]}" "$VENV"
fi
WANTED="$(cat "$ROOT/pyproject.toml"; echo "# checkout: $ROOT")"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANTED" ]; then
  echo "[setup] installing packages${WHEELHOUSE:+ from $WHEELHOUSE, no index} (torch first: an unpinned torch pulls CUDA builds)"
  if [ -z "$WHEELHOUSE" ]; then
    "$VENV/bin/pip" install -q --upgrade pip
  fi
  if [ -n "$VORB_TORCH" ]; then
    "$VENV/bin/pip" install -q "${PIP_FROM[@]}" "$VORB_TORCH"
  fi
  # The editable install builds VORB with setuptools, which the wheelhouse holds.
  "$VENV/bin/pip" install -q "${PIP_FROM[@]}" -e "$ROOT[$VORB_EXTRAS]"
  printf '%s\n' "$WANTED" > "$STAMP"
fi
exec {SETUP_LOCK}>&-  # closing the file releases the lock
export PATH="$VENV/bin:$PATH"
export RAY_USAGE_STATS_ENABLED=0
