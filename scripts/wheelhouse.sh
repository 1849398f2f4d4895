#!/usr/bin/env bash
# Gather every package scripts/setup.sh installs into a wheelhouse folder, on a machine with
# registry access, for a machine without: there `VORB_WHEELHOUSE=<folder> scripts/setup.sh`
# installs from the folder alone (pip --no-index).
#
#   scripts/wheelhouse.sh OUT [--python-version 3.11] [--platform manylinux_2_28_x86_64]...
#                             [--without torch]...
#
# Without --python-version/--platform the wheels fit the Python running this script ($PYTHON,
# default python3). --without NAME leaves a package out, e.g. torch on a CUDA image that ships
# its own: setup.sh then makes a virtual environment that sees the system's packages.
# Packages the registry has only as source (rliable, gym) are built here into pure-Python wheels.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/pins.sh"
PY="${PYTHON:-python3}"
# Pure Python, published as sdists only: built into py3-none-any (gym: d3rlpy, consumers extra).
SOURCE_ONLY=("rliable>=1.2" "gym==0.26.2")

usage() { echo "usage: $0 OUT [--python-version X.Y] [--platform TAG]... [--without NAME]..." >&2; exit 2; }
# pip matches a foreign --platform exactly, yet a manylinux_2_28 machine runs every older
# manylinux wheel (ray has manylinux2014 only): name them all, legacy aliases included.
platform_tags() {
  if [[ "$1" =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
    local glibc="${BASH_REMATCH[1]}" arch="${BASH_REMATCH[2]}" n
    for ((n = glibc; n >= 5; n--)); do echo "--platform manylinux_2_${n}_${arch}"; done
    [ "$glibc" -lt 17 ] || echo "--platform manylinux2014_${arch}"
    [ "$glibc" -lt 12 ] || echo "--platform manylinux2010_${arch}"
    echo "--platform manylinux1_${arch}"
  else
    echo "--platform $1"
  fi
}
OUT="" ; TARGET=() ; WITHOUT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) [ $# -ge 2 ] || usage; VERSION="$2"
      TARGET+=(--python-version "$VERSION" --implementation cp --abi "cp${VERSION//./}" --abi abi3 --abi none); shift 2 ;;
    --platform) [ $# -ge 2 ] || usage; TARGET+=($(platform_tags "$2")); shift 2 ;;
    --without) [ $# -ge 2 ] || usage; WITHOUT+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "unknown option '$1'; valid: --python-version, --platform, --without" >&2; usage ;;
    *) [ -z "$OUT" ] || usage; OUT="$1"; shift ;;
  esac
done
[ -n "$OUT" ] || usage
mkdir -p "$OUT"

# The requirements: pyproject's dependencies and extras, torch's pin, the build backend (the
# editable install of VORB builds offline with them), less what --without names.
"$PY" - "$ROOT/pyproject.toml" "$VORB_TORCH" "$VORB_EXTRAS" "${WITHOUT[@]}" > "$OUT/requirements.txt" <<'PYEOF'
import re, sys, tomllib
pyproject, torch, extras, *without = sys.argv[1:]
project = tomllib.load(open(pyproject, "rb"))
build = project["build-system"]["requires"] + ["wheel"]
project = project["project"]
requirements = [torch, *project["dependencies"], *build]
for extra in extras.split(","):
    requirements += project["optional-dependencies"][extra]
name = lambda requirement: re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
unknown = set(without) - {name(r) for r in requirements}
if unknown:
    sys.exit(f"--without {sorted(unknown)}: not among the requirements {sorted({name(r) for r in requirements})}")
print("\n".join(r for r in requirements if name(r) not in without))
PYEOF
echo "[wheelhouse] $(wc -l < "$OUT/requirements.txt") requirements -> $OUT/requirements.txt"

BUILT="$(mktemp -d)"; trap 'rm -rf "$BUILT"' EXIT
"$PY" -m pip wheel -q --no-deps --wheel-dir "$BUILT" "${SOURCE_ONLY[@]}"
if ls "$BUILT" | grep -qv -- '-py3-none-any\.whl$'; then
  echo "[wheelhouse] not pure Python, so useless on another machine: $(ls "$BUILT")" >&2; exit 1
fi
mv "$BUILT"/*.whl "$OUT"/
# --only-binary: the offline machine must not need a compiler, and pip insists on it for a
# foreign --platform; --find-links OUT: the wheels built above count as binaries.
"$PY" -m pip download -q --dest "$OUT" --find-links "$OUT" --only-binary=:all: "${TARGET[@]}" \
  -r "$OUT/requirements.txt"
for name in "${WITHOUT[@]}"; do  # also when another package pulled it in
  rm -f "$OUT/${name//-/_}"-*.whl "$OUT/$name"-*.whl
done
echo "[wheelhouse] $(ls "$OUT"/*.whl | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT"
