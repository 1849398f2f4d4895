#!/usr/bin/env bash
# The speed suite (pytest-benchmark): not part of the tests; prints ratios against references
# measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python -m pytest benchmarks -q -p no:cacheprovider --benchmark-only --benchmark-columns=mean,stddev,rounds "$@"
