#!/usr/bin/env bash
# The bundle a GPU slot installs with no index (scripts/gpu_lease.sh --bundle): wheels for the
# slot machine's Python (3.12, x86_64 manylinux) of what its image lacks, and the GL loader
# Debian packages EGL needs; then a check that bundle and working tree together fit the 64 MiB
# a slot may carry.
#
#   scripts/lease_bundle.sh [OUT]          # default .lease-bundle (git-ignored; carry it)
#   scripts/lease_bundle.sh --check-size DIR
#
# Not scripts/wheelhouse.sh --without torch: that is every pinned package (346 MB for 3.12),
# and VORB's own install would ask for torch 2.13 where the image has 2.11. The image already
# holds torch, numpy, scipy, pandas, pyarrow, h5py, matplotlib, seaborn, tqdm, absl-py, lxml,
# etils, cloudpickle, pytest, pytest-benchmark and pytest-timeout, so the bundle is only the
# simulation stack (installed --no-deps) and VORB runs from the source tree.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
LIMIT=$((64 * 1024 * 1024))  # what a slot may carry: working tree + bundle
PYVER=3.12
WHEELS=(mujoco==3.17.0 dm_control==1.0.50 gymnasium==1.4.0 shimmy==2.0.1 minari==0.5.4
        dm-env dm-tree pyopengl glfw farama-notifications websockets importlib-resources)
# websockets (mujoco) and importlib-resources (mujoco's etils[epath]) are missing from the image too.
GL_DEBS=(libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)

tree_bytes() {  # tracked and untracked-not-ignored files: what a slot sends
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
}
check_size() {
  local bundle tree total
  bundle=$(du -sb "$1" | cut -f1)
  tree=$(tree_bytes)
  total=$((bundle + tree))
  echo "[bundle] $1: $bundle B; working tree: $tree B; together $total B of $LIMIT B (64 MiB)"
  if [ "$total" -gt "$LIMIT" ]; then
    echo "[bundle] too large by $((total - LIMIT)) B: a slot cannot carry it" >&2
    return 1
  fi
}
if [ "${1:-}" = "--check-size" ]; then
  [ $# -eq 2 ] || { echo "usage: $0 --check-size DIR" >&2; exit 2; }
  check_size "$2"; exit
fi
OUT="${1:-$ROOT/.lease-bundle}"
mkdir -p "$OUT/gl"
plats=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014; do plats+=(--platform "${tag}_x86_64"); done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
  --implementation cp "${plats[@]}" -d "$OUT" "${WHEELS[@]}"
# dm_control's soccer, walker-model and dog assets and its test files: unused by the walker suite
# (56 MB of the wheel). The RECORD is rewritten so pip accepts the slimmer wheel.
"$PY" - "$OUT"/dm_control-*.whl <<'PYEOF'
import base64, hashlib, os, sys, zipfile
src = sys.argv[1]; tmp = src + ".slim"
drop = ("dm_control/locomotion/soccer/", "dm_control/locomotion/walkers/assets/",
        "dm_control/suite/dog_assets/", "dm_control/mujoco/testing/",
        "dm_control/suite/all_domains.png", "dm_control/mjcf/test_assets/")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    record = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
    rows = []
    for info in zin.infolist():
        if info.filename.startswith(drop) or info.filename == record:
            continue
        data = zin.read(info.filename)
        zout.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{info.filename},sha256={digest},{len(data)}")
    rows.append(f"{record},,")
    zout.writestr(record, "\n".join(rows) + "\n")
os.replace(tmp, src)
PYEOF
# The GL loader libraries (libglvnd): the slot's image has NVIDIA's EGL vendor library in the
# driver mount but not the loader that finds it. apt-get download needs no root.
lists="$(mktemp -d)"; trap 'rm -rf "$lists"' EXIT
apt_opts=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Dir::State::Lists="$lists")
mkdir -p "$lists/partial"
if apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 && \
   (cd "$OUT/gl" && apt-get "${apt_opts[@]}" download "${GL_DEBS[@]}" >/dev/null 2>&1); then
  echo "[bundle] GL loader packages: $(ls "$OUT/gl" | tr '\n' ' ')"
else
  echo "[bundle] apt-get could not download ${GL_DEBS[*]}: the slot's EGL may lack its loader" >&2
fi
echo "[bundle] $(ls "$OUT"/*.whl | wc -l) wheels in $OUT"
check_size "$OUT"
