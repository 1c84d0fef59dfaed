#!/usr/bin/env bash
# README command 1: set up, build the index from seeds/ if missing, start the app.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
rag index
# The chat (`rag serve`) is not built yet: answer the README's example question.
rag ask "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
