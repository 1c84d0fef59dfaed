"""The pure parts of bench/run.py: percentiles and recall, the FAISS index type by size,
and the synthetic data the big measurements run on (perturbed copies of the seed pages,
clustered unit vectors, BM25 over repeated passages). No timing, no model.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np

FLAT_LIMIT = 200_000  # from here on exact search scans too much memory per query


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile, linearly interpolated between ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def index_type(n: int) -> str:
    """Exact search below FLAT_LIMIT vectors, an inverted file (IVF) above. HNSW was
    measured first at 1M: 150 s to build and recall@10 0.91 at efSearch 1024 (31 ms p95
    fused); IVF builds faster and keeps more (bench/run.py prints what it keeps)."""
    return "flat" if n < FLAT_LIMIT else "ivf"


def ivf_lists(n: int) -> int:
    """Inverted lists for n vectors: about sqrt(n), the usual balance between the cost of
    choosing lists (n_lists dot products) and scanning them (n / n_lists per list)."""
    return max(1, round(math.sqrt(n)))


def perturb(text: str, rng: random.Random) -> str:
    """The page with every digit redrawn and some neighbouring words of long lines swapped,
    so copies differ (new figures, new term pairs) while staying French news text."""
    text = re.sub(r"\d", lambda _: str(rng.randrange(10)), text)
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        if len(line) > 80:  # body text: headings and footer markers stay intact
            for i in range(0, len(words) - 1, 2):
                if rng.random() < 0.15:
                    words[i], words[i + 1] = words[i + 1], words[i]
        lines.append(" ".join(words))
    return "\n".join(lines)


def write_synthetic_corpus(seeds_dir: Path, out_dir: Path, copies: int, seed: int = 0) -> int:
    """`copies` perturbed copies of every seed page into `out_dir`; the number of files."""
    rng = random.Random(seed)
    pages = sorted(p for p in Path(seeds_dir).iterdir() if p.is_file())
    out_dir.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        for page in pages:
            text = page.read_text(encoding="utf-8")
            (out_dir / f"{copy:05d}_{page.name}").write_text(perturb(text, rng), encoding="utf-8")
    return copies * len(pages)


def clustered_unit_vectors(n: int, dim: int, rng: np.random.Generator, per_cluster: int = 100,
                           chunk: int = 100_000) -> np.ndarray:
    """n random unit vectors in clusters of ~per_cluster, as embeddings of related passages
    are. Uniform ones would have no near neighbours at all (every cosine ~0 ± 1/sqrt(dim)),
    which makes recall of an approximate index meaningless."""
    centres = rng.standard_normal((max(1, n // per_cluster), dim), dtype=np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        picked = centres[rng.integers(0, len(centres), rows)]
        out[start:start + rows] = picked + rng.standard_normal((rows, dim), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def recall_at_k(truth: np.ndarray, found: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's true top-k ids that `found` also has in its top k."""
    hits = [len(set(t[:k]) & set(f[:k])) / k for t, f in zip(truth, found)]
    return float(np.mean(hits))


def tile_bm25(bm25, n: int):
    """The BM25 of n passages cycling through bm25's passages, without re-tokenising them:
    same term x passage matrix, idf recomputed for n; exact when n is a multiple of the
    passages, else the average length is off by a hair. (Building it from n texts runs a
    Python loop over every term of every passage: ~10 GB of lists at 1M passages.)"""
    from scipy.sparse import csr_matrix

    w = bm25.weights.tocoo()
    m, reps = bm25.weights.shape[1], -(-n // bm25.weights.shape[1])
    cols = (w.col[None, :] + m * np.arange(reps)[:, None]).ravel()
    keep = cols < n
    rows, data = np.tile(w.row, reps)[keep], np.tile(w.data, reps)[keep]
    tiled = csr_matrix((data, (rows, cols[keep])), shape=(w.shape[0], n), dtype=np.float32)
    old_df, new_df = np.diff(bm25.weights.tocsr().indptr), np.diff(tiled.indptr)
    scale = _idf(new_df, n) / _idf(old_df, m)
    tiled.data *= np.repeat(scale, new_df).astype(np.float32)
    out = object.__new__(type(bm25))
    out.vocab, out.weights = bm25.vocab, tiled
    return out


def _idf(df: np.ndarray, n: int) -> np.ndarray:
    return np.log(1 + (n - df + 0.5) / (df + 0.5))
