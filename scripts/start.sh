#!/usr/bin/env bash
# README command 1: set up, then start the chat on http://127.0.0.1:7860 (the index is
# built from seeds/ first if it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
rag serve
