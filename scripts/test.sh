#!/usr/bin/env bash
# The test command: set up (venv, packages, headless GL), lint, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ruff check .
python -m pytest -q "$@"
