#!/usr/bin/env bash
# README command 2: set up if needed, then run the whole test suite, end-to-end
# tests with the real packaged models included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python -m pytest "$@"
