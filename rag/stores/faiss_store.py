"""Passage vectors in FAISS files inside the index's build folder: the one-machine store.

Files that `commit` writes:
    vectors.npy                 float32 (n, dim), the exact vectors: a rebuild reuses them
                                and re-trains on them; read at start only by a flat index
    keys.npy, docs.npy, days.npy  per row: passage key, document key, date number
    ivf.faiss                   the inverted-file index, from FLAT_LIMIT vectors on

The type follows the size. Below FLAT_LIMIT, exact inner product (IndexFlatIP). From it
on, an inverted file: ~2 sqrt(n) lists trained on IVF_TRAIN_PER_LIST vectors each, codes in
float16 (the recall of float32 codes at half the memory and a faster scan: 1.5 GB at 1M x
768), and nprobe the smallest power of two whose recall@10 against exact search reaches
RECALL_TARGET. The tuning queries are the corpus's own passage vectors, perturbed: noise
of norm 1 added, then re-normalised, which puts each at cosine ~0.7 from its passage, as
a question from its answer with a good embedder; 200 tune nprobe, 200 others give the
recall the manifest keeps. (Noise of norm sqrt(3), cosine ~0.5, drowns the neighbourhood
at 1M synthetic vectors: the exact top 10 become scattered points, nprobe 256 of 1,000
lists kept 0.85. A new point of the same cluster, the older bench's query, is found at
least as well as these.) Why 2 sqrt(n) lists, not sqrt(n): on 1M synthetic vectors, 1,000
lists kept 0.93 of the exact top 10 at nprobe 256 and needed 512 (38 ms p95) for 0.97;
2,000 lists kept 0.96 at nprobe 256 in 10 ms (FAISS's own guidelines say 4 to 16 sqrt(n),
whose k-means training grows with the lists).
Searches run on one OpenMP thread: on these 2-core machines a single query with 2 threads
was 4x slower (bench/run.py). Left out: HNSW (slower to build, recall@10 0.91 at 1M in an
earlier bench), product quantisation, GPUs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Collection, Mapping, Sequence

import numpy as np

from rag.errors import RagError
from rag.records import Passage
from rag.stores import Filter, day_number, passage_key, passage_keys

FLAT_LIMIT = 140_000  # exact search's p95 passes 20 ms here: 16 ms at 100k, 21 at 150k (768 dims, bench/run.py)
RECALL_TARGET = 0.95  # recall@10 against exact search that nprobe is tuned to keep
IVF_TRAIN_PER_LIST = 40  # k-means training vectors per inverted list (FAISS warns below 39)
TUNING_QUERIES = 200  # to tune nprobe; as many again, held out, to report the recall
QUERY_SEED = 1729  # fixed, so a build is repeatable; unrelated to the corpus size
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
QUERY_NOISE = 1.0  # norm of the noise added to a passage vector to make a query
ARRAYS = ("keys", "docs", "days")


def index_type(n: int) -> str:
    """Exact search below FLAT_LIMIT vectors, an inverted file (IVF) from it on."""
    return "flat" if n < FLAT_LIMIT else "ivf"


def ivf_lists(n: int) -> int:
    """About 2 sqrt(n) lists (module docstring): choosing lists costs one dot product per
    list, scanning them n / lists vectors each."""
    return max(1, min(n, round(2 * math.sqrt(n))))


def build_faiss(vectors: np.ndarray, kind: str, threads: int = 2):
    """An inner-product index of `kind` ("flat" or "ivf") holding `vectors`."""
    import faiss

    faiss.omp_set_num_threads(threads)
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        lists = ivf_lists(n)
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, lists, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        sample = np.random.default_rng(0).choice(n, min(n, IVF_TRAIN_PER_LIST * lists), replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    for start in range(0, n, 100_000):  # in slices: a memory-mapped array is read a slice at a time
        index.add(np.ascontiguousarray(vectors[start:start + 100_000]))
    return index


def query_like(vectors: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` passage vectors drawn from `vectors`, each plus noise of norm ~QUERY_NOISE,
    unit again: cosine ~1 / sqrt(1 + QUERY_NOISE**2) to its passage."""
    picked = vectors[np.sort(rng.choice(len(vectors), count, replace=count > len(vectors)))]
    noisy = picked + rng.standard_normal(picked.shape, dtype=np.float32) * (QUERY_NOISE / np.sqrt(picked.shape[1]))
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Row numbers of each query's exact top k by inner product (brute force, no index)."""
    import faiss

    return faiss.knn(queries, np.ascontiguousarray(vectors), k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def recall_at_k(truth: np.ndarray, found: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's true top-k ids that `found` also has in its top k."""
    hits = [len(set(t[:k]) & set(f[:k])) / k for t, f in zip(truth, found)]
    return float(np.mean(hits))


def tune_nprobe(index, truth: np.ndarray, queries: np.ndarray, k: int = 10) -> tuple[int, float]:
    """The smallest nprobe of NPROBES whose recall@k against `truth` (exact top-k rows)
    reaches RECALL_TARGET (else the largest), left set on the index; and that recall."""
    for nprobe in NPROBES:
        index.nprobe = nprobe
        recall = recall_at_k(truth, index.search(queries, k)[1], k)
        if recall >= RECALL_TARGET:
            break
    return nprobe, recall


def build_tuned(vectors: np.ndarray, threads: int, kind: str | None = None):
    """(index, facts): the type chosen for the size (or `kind`), IVF tuned as the module
    docstring says; facts go into the manifest."""
    kind = kind or index_type(len(vectors))
    index = build_faiss(vectors, kind, threads)
    if kind == "flat":
        return index, {"type": "flat"}
    queries = query_like(vectors, 2 * TUNING_QUERIES, np.random.default_rng(QUERY_SEED))
    truth = exact_top(vectors, queries)
    nprobe, tuned = tune_nprobe(index, truth[:TUNING_QUERIES], queries[:TUNING_QUERIES])
    held_out = recall_at_k(truth[TUNING_QUERIES:], index.search(queries[TUNING_QUERIES:], 10)[1])
    facts = {"type": "ivf", "codes": "fp16", "lists": index.nlist, "nprobe": nprobe, "tuning_recall": tuned,
             "recall@10": held_out, "queries": f"passage vectors + noise of norm {QUERY_NOISE:.2f}",
             "unread_at_start": ["vectors.npy"]}  # load_index skips its checksum: only rebuilds read it
    return index, facts


class FaissStore:
    """The arrays of one build plus its FAISS index; changes stay in memory until `commit`."""

    kind = "faiss"

    def __init__(self, dim: int, arrays: dict[str, np.ndarray], vectors: np.ndarray | None, threads: int,
                 index=None, facts: dict | None = None, folder: Path | None = None):
        self.dim, self.arrays, self.threads = dim, arrays, threads
        self.index, self.facts, self._vectors, self._folder = index, facts or {}, vectors, folder

    @classmethod
    def open(cls, dim: int, record: dict | None, folder: Path | None, threads: int = 2) -> "FaissStore":
        if record is None:
            empty = {name: np.zeros(0, dtype=np.int64 if name != "days" else np.int32) for name in ARRAYS}
            return cls(dim, empty, np.zeros((0, dim), dtype=np.float32), threads)
        if record.get("dim") != dim:
            raise RagError(f"Index périmé : vecteurs de dimension {record.get('dim')}, l'embedder en donne {dim}. "
                           "Lancez `rag index --rebuild`.")
        try:
            return cls._load(dim, record, Path(folder), threads)
        except (OSError, ValueError, RuntimeError) as exc:
            raise RagError(f"Index corrompu : vecteurs FAISS illisibles dans {folder} ({exc}). "
                           "Lancez `rag index --rebuild`.") from None

    @classmethod
    def _load(cls, dim: int, record: dict, folder: Path, threads: int) -> "FaissStore":
        import faiss

        arrays = {name: np.load(folder / f"{name}.npy") for name in ARRAYS}
        if record["type"] == "flat":
            index = build_faiss(np.load(folder / "vectors.npy", mmap_mode="r"), "flat", threads)
        else:
            index = faiss.read_index(str(folder / "ivf.faiss"))
            index.nprobe = record["nprobe"]
        sizes = {len(a) for a in arrays.values()} | {index.ntotal, record["count"]}
        if len(sizes) != 1 or index.d != dim:
            raise ValueError(f"tailles incohérentes {sorted(sizes)}")
        return cls(dim, arrays, None, threads, index, record, folder)

    # ------------------------------------------------------------ changes

    def vectors(self) -> np.ndarray:
        """The exact vectors (read from vectors.npy the first time a change needs them)."""
        if self._vectors is None:
            self._vectors = np.load(self._folder / "vectors.npy", mmap_mode="r")
            if self._vectors.shape != (self.count(), self.dim):
                raise RagError(f"Index corrompu : {self._folder / 'vectors.npy'}. Lancez `rag index --rebuild`.")
        return self._vectors

    def add(self, passages: Sequence[Passage], vectors: np.ndarray, dates: Mapping[str, str | None]) -> None:
        keys = passage_keys(passages)
        self.delete_keys(keys)
        new = {"keys": keys, "docs": np.array([passage_key(p.doc_id) for p in passages], dtype=np.int64),
               "days": np.array([day_number(dates.get(p.doc_id)) for p in passages], dtype=np.int32)}
        self._vectors = np.concatenate([self.vectors(), np.asarray(vectors, dtype=np.float32)])
        self.arrays = {name: np.concatenate([self.arrays[name], new[name]]) for name in ARRAYS}
        self.index = None

    def delete(self, doc_ids: Collection[str]) -> None:
        self._keep(~np.isin(self.arrays["docs"], [passage_key(d) for d in doc_ids]))

    def delete_keys(self, keys: np.ndarray) -> None:
        self._keep(~np.isin(self.arrays["keys"], keys))

    def _keep(self, rows: np.ndarray) -> None:
        if rows.all():
            return
        self._vectors = self.vectors()[rows]
        self.arrays = {name: a[rows] for name, a in self.arrays.items()}
        self.index = None

    def commit(self, folder: Path, kind: str | None = None) -> dict:
        """Write the arrays and the index (type by size, or `kind`) into `folder`."""
        import faiss

        vectors = self.vectors()
        np.save(folder / "vectors.npy", vectors)
        for name, values in self.arrays.items():
            np.save(folder / f"{name}.npy", values)
        self.index, facts = build_tuned(vectors, self.threads, kind)
        if facts["type"] == "ivf":
            faiss.write_index(self.index, str(folder / "ivf.faiss"))
        self.facts = {"kind": "faiss", "dim": self.dim, "count": self.count(), **facts}
        self._folder = folder
        return self.facts

    def close(self) -> None:
        self.index = self._vectors = None

    # ------------------------------------------------------------ search

    def count(self) -> int:
        return len(self.arrays["keys"])

    def search(self, vector: np.ndarray, n: int, where: Filter | None = None) -> dict[int, float]:
        import faiss

        if self.index is None:
            raise RuntimeError("FaissStore.search avant commit")
        faiss.omp_set_num_threads(1)
        params, keep = self._params(where)
        if keep is not None and not keep.any():
            return {}
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        scores, rows = self.index.search(query, min(n, self.count()), params=params)
        return {int(self.arrays["keys"][r]): float(s) for r, s in zip(rows[0], scores[0]) if r >= 0}

    def _params(self, where: Filter | None):
        """FAISS search parameters restricted to the rows `where` allows (with the rows'
        mask), or (None, None) without a filter."""
        import faiss

        if where is None:
            return None, None
        keep = self.rows_allowed(where)
        bits = np.packbits(keep, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
        if self.facts.get("type") == "ivf":
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        params.referenced = (selector, bits)  # the bitmap must outlive the search
        return params, keep

    def rows_allowed(self, where: Filter) -> np.ndarray:
        keep = np.ones(self.count(), dtype=bool)
        if where.doc_ids is not None:
            keep &= np.isin(self.arrays["docs"], [passage_key(d) for d in where.doc_ids])
        if (days := where.day_range()) is not None:
            keep &= (self.arrays["days"] >= days[0]) & (self.arrays["days"] <= days[1])
        return keep
