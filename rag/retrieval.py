"""Finding the passages that answer a question: BM25, dense (FAISS) and their fusion.

BM25 runs on accent-folded, lightly stemmed French terms (rag.text). Dense search asks
the FAISS index with the embedder's query vector. Fusion mixes the two score lists
after standardising each over its candidates (z-scores; a passage missing from one
list gets that list's lowest score), BM25 weighted by `bm25_weight`. z-scores beat
min-max scaling and reciprocal-rank fusion on the project's reference questions
(bench/retrieval_quality.py, figures in the README, « Recherche »).
The retriever holds no model of its own; it is built once per loaded index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rag.embedding import Embedder
from rag.index import Index
from rag.records import Hit, Passage
from rag.text import terms


class BM25:
    """Okapi BM25 over a sparse (term x passage) weight matrix: one column sum per query."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75):
        from scipy.sparse import csr_matrix

        self.vocab: dict[str, int] = {}
        counts = [self._count(terms(t)) for t in texts]
        lengths = np.array([sum(tf.values()) for tf in counts], dtype=np.float32)
        avg = max(float(lengths.mean()), 1e-9) if len(counts) else 1.0
        df = np.zeros(len(self.vocab), dtype=np.float32)
        for tf in counts:
            df[list(tf)] += 1
        idf = np.log(1 + (len(counts) - df + 0.5) / (df + 0.5))
        rows, cols, vals = [], [], []
        for j, tf in enumerate(counts):
            norm = k1 * (1 - b + b * lengths[j] / avg)
            for t, n in tf.items():
                rows.append(t), cols.append(j), vals.append(idf[t] * n * (k1 + 1) / (n + norm))
        shape = (len(self.vocab), len(counts))
        self.weights = csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float32)

    def _count(self, doc: list[str]) -> dict[int, int]:
        tf: dict[int, int] = {}
        for term in doc:
            t = self.vocab.setdefault(term, len(self.vocab))
            tf[t] = tf.get(t, 0) + 1
        return tf

    def scores(self, query: str) -> np.ndarray:
        ids = sorted({self.vocab[t] for t in terms(query) if t in self.vocab})
        if not ids:
            return np.zeros(self.weights.shape[1], dtype=np.float32)
        return np.asarray(self.weights[ids].sum(axis=0)).ravel()


@dataclass(frozen=True, eq=False)
class Retriever:
    passages: tuple[Passage, ...]
    vectors: Any  # faiss index
    embedder: Embedder
    bm25: BM25

    @classmethod
    def from_index(cls, index: Index, embedder: Embedder) -> "Retriever":
        return cls(index.passages, index.vectors, embedder, BM25([p.text for p in index.passages]))

    def search(self, query: str, k: int, mode: str = "hybrid", candidates: int = 30,
               bm25_weight: float = 0.6) -> list[Hit]:
        n = min(max(k, candidates), len(self.passages))
        if mode == "bm25":
            return self._hits(self.bm25_top(query, n), None, k)
        if mode == "dense":
            return self._hits(None, self.dense_top(query, n), k)
        return fuse(self.bm25_top(query, n), self.dense_top(query, n), bm25_weight, self.passages, k)

    def bm25_top(self, query: str, n: int) -> dict[int, float]:
        scores = self.bm25.scores(query)
        top = np.argsort(-scores, kind="stable")[:n]
        return {int(i): float(scores[i]) for i in top if scores[i] > 0}

    def dense_top(self, query: str, n: int) -> dict[int, float]:
        vector = self.embedder.embed_query(query).reshape(1, -1).astype(np.float32)
        scores, ids = self.vectors.search(vector, n)
        return {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}

    def _hits(self, bm25: dict | None, dense: dict | None, k: int) -> list[Hit]:
        ranked = bm25 if bm25 is not None else dense
        order = sorted(ranked, key=lambda i: -ranked[i])[:k]
        return [Hit(self.passages[i], ranked[i], dense=(dense or {}).get(i), bm25=(bm25 or {}).get(i))
                for i in order]


def fuse(bm25: dict[int, float], dense: dict[int, float], weight: float,
         passages: Sequence[Passage], k: int) -> list[Hit]:
    """Weighted sum of z-scored candidate scores (see module docstring)."""
    b, d = _zscores(bm25), _zscores(dense)
    b_floor, d_floor = min(b.values(), default=0.0), min(d.values(), default=0.0)
    mixed = {i: weight * b.get(i, b_floor) + (1 - weight) * d.get(i, d_floor) for i in set(b) | set(d)}
    order = sorted(mixed, key=lambda i: (-mixed[i], i))[:k]
    return [Hit(passages[i], mixed[i], dense=dense.get(i), bm25=bm25.get(i)) for i in order]


def _zscores(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = values.mean(), values.std()
    return {i: (s - mean) / std if std > 0 else 0.0 for i, s in scores.items()}
