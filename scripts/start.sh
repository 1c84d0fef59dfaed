#!/usr/bin/env bash
# README command 1: set up, then start the chat on http://127.0.0.1:7860 (the index is
# built from seeds/ first if it is missing, brought up to date if stale).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# --rebuild: an index older than seeds/ or the settings (e.g. after an upgrade) is brought up
# to date first, re-embedding only the articles that changed
rag serve --rebuild "$@"
