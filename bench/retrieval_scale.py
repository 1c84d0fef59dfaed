"""Retrieval at 100k and 1M passages, measured through the app's own code (issue 11).

    python bench/run.py --retrieval-only [--sizes 100000,1000000] [--milvus-sizes 100000]

Each size is written as a real index by rag.index.write_index: clustered random unit
vectors of DIM dimensions (EmbeddingGemma's) and French-like passages (helpers.zipf_texts:
words drawn by Zipf's law from the seed pages' vocabulary, extended with made-up words to
VOCABULARY types), PER_ARTICLE passages an article, dated. A fresh process then loads it
as the app does (load_index, Retriever.from_index) and asks the reference questions,
each with a query-like vector (a passage vector plus noise, as the FAISS tuning makes
them, from other passages): start-up (load, checksums included), the process's peak RSS,
p50/p95 of Retriever.search per mode with the vector given (the query embedding is
timed apart, with the default embedder), and recall@10 of dense search against exact
search over the same vectors, for these queries and for new points of the clusters (the
older bench's queries). Also exact FAISS search's p95 by size, for FLAT_LIMIT.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from helpers import clustered_unit_vectors, made_up_words, seed_vocabulary, zipf_texts
from rag.evaluation import percentile
from rag.records import Article, Passage
from rag.settings import Settings

DIM = 768  # EmbeddingGemma-300m's vectors
VOCABULARY = 300_000  # word types of the synthetic archive
PER_ARTICLE = 14  # passages an article, as in the seeds
WORDS = 80  # words a passage: ~600 characters
FLAT_SIZES = (25_000, 50_000, 100_000, 150_000, 200_000, 400_000, 1_000_000)
MODES = ("dense", "bm25", "hybrid")


def synthetic_corpus(n: int, seeds_dir: Path, seed: int = 0) -> tuple[list[Article], list[Passage]]:
    """n French-like passages in articles of PER_ARTICLE, with exact offsets and dates."""
    real = seed_vocabulary(seeds_dir)
    vocabulary = real + made_up_words(max(0, VOCABULARY - len(real)), random.Random(seed), set(real))
    texts = zipf_texts(vocabulary, n, WORDS, np.random.default_rng(seed))
    articles, passages = [], []
    for a in range(-(-n // PER_ARTICLE)):
        chunk = [next(texts) for _ in range(min(PER_ARTICLE, n - a * PER_ARTICLE))]
        article, parts = _article(f"syn{a:07d}", chunk, f"2025-{a % 12 + 1:02d}-{a % 28 + 1:02d}")
        articles.append(article)
        passages += parts
    return articles, passages


def _article(doc_id: str, texts: list[str], date: str) -> tuple[Article, list[Passage]]:
    title = " ".join(texts[0].split()[:6])
    body, parts, start = "\n\n".join(texts), [], 0
    for text in texts:
        parts.append(Passage(f"{doc_id}#{start}-{start + len(text)}", doc_id, title, start, start + len(text), text))
        start += len(text) + 2
    return Article(doc_id, f"{doc_id}.txt", title, date, body, f"{int(doc_id[3:]):064x}"), parts


def write_synthetic(settings: Settings, articles, passages, vectors: np.ndarray, faiss_type: str | None,
                    embedder: str = "synthetic") -> dict:
    """The index of these passages and vectors, written by the app; its manifest."""
    from rag.index import FORMAT_VERSION, PIPELINE_VERSION, read_manifest, write_index
    from rag.stores import get_store
    from rag.stores.bm25 import ANALYZER

    manifest = {"format": FORMAT_VERSION, "embedder": embedder, "passage_chars": settings.passage_chars,
                "passage_overlap": settings.passage_overlap, "pipeline": PIPELINE_VERSION, "analyzer": ANALYZER,
                "dim": vectors.shape[1], "sources": {a.path: a.sha256 for a in articles},
                "articles": len(articles), "passages": len(passages), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    store = get_store(settings, vectors.shape[1])
    try:
        write_index(settings, manifest, articles, passages, store, set(), passages, vectors, faiss_type)
    finally:
        store.close()
    return read_manifest(settings.index_dir)


def measure_child(settings: Settings, queries: Path) -> dict:
    """In a fresh process: load the index as the app does, then time the questions."""
    from run import others_cpu

    from rag.index import load_index
    from rag.retrieval import Retriever

    data = np.load(queries)
    questions = json.loads(str(data["questions"]))
    row: dict = {}
    with others_cpu(row):
        started = time.perf_counter()
        index = load_index(settings, check_corpus=False)
        retriever = Retriever.from_index(index, None)  # no embedder: the query vectors are given
        row["startup_s"] = time.perf_counter() - started
        row["rss_loaded_mb"] = _status_mb("VmRSS")
        for mode in MODES:
            row[mode] = _latency(retriever, questions, data["vectors"], mode, settings)
        for name, vectors in (("recall@10", data["vectors"]), ("recall@10_new_points", data["fresh"])):
            found = [list(retriever.dense_top("", 10, vector=v)) for v in vectors]
            truth = data["truth" if name == "recall@10" else "fresh_truth"]
            row[name] = float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth)]))
    index.store.close()
    return row | {"peak_rss_mb": _status_mb("VmHWM")}


def _latency(retriever, questions: list[str], vectors: np.ndarray, mode: str, settings: Settings) -> dict:
    def ask(i: int):
        return retriever.search(questions[i], settings.k, mode, settings.candidates, settings.bm25_weight,
                                vector=vectors[i])
    ask(0)
    ms = []
    for i in range(len(questions)):
        started = time.perf_counter()
        ask(i)
        ms.append(1000 * (time.perf_counter() - started))
    return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "queries": len(ms)}


def _status_mb(field: str) -> float:
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(found.group(1)) * 1024 / 1e6 if found else float("nan")


def query_set(vectors: np.ndarray, passages: list[Passage], questions: list[str], folder: Path,
              fresh: np.ndarray) -> Path:
    """The questions, a query-like vector each (seeded apart from the app's tuning), the
    `fresh` vectors (new points of the clusters), and the keys of each one's exact top 10,
    saved for the measuring process."""
    from rag.stores import passage_keys
    from rag.stores.faiss_store import exact_top, query_like

    query_vectors = query_like(vectors, len(questions), np.random.default_rng(12345))
    keys = passage_keys(passages)
    path = folder / "queries.npz"
    np.savez(path, questions=json.dumps(questions, ensure_ascii=False), vectors=query_vectors,
             truth=keys[exact_top(vectors, query_vectors)], fresh=fresh, fresh_truth=keys[exact_top(vectors, fresh)])
    return path


def flat_sweep(vectors: np.ndarray, queries: np.ndarray, sizes=FLAT_SIZES) -> list[dict]:
    """p50/p95 of one exact search (k=30, one thread) per size up to len(vectors)."""
    import faiss

    faiss.omp_set_num_threads(1)
    rows = []
    for n in [s for s in sizes if s <= len(vectors)]:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors[:n])
        index.search(queries[:1], 30)
        ms = []
        for q in queries:
            started = time.perf_counter()
            index.search(q[None], 30)
            ms.append(1000 * (time.perf_counter() - started))
        rows.append({"vectors": n, "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)})
        del index
    return rows


def measure_size(n: int, variants: list[tuple[str, str | None]], questions: list[str], seeds_dir: Path,
                 log, sweep: bool = False) -> tuple[list[dict], list[dict]]:
    """Write n synthetic passages once per (store, FAISS type) variant and measure each;
    with `sweep`, exact search's latency by size on these vectors too."""
    log(f"{n:,} synthetic passages: generating…")
    articles, passages = synthetic_corpus(n, seeds_dir)
    # not seeded with n: the app seeds its tuning queries apart (QUERY_SEED), and a shared
    # seed made them correlated with the data (nprobe 64 looked like 0.95, was 0.90)
    vectors = clustered_unit_vectors(n + len(questions), DIM, np.random.default_rng(n + 1))
    vectors, fresh = vectors[:n], vectors[n:]
    rows, flat = [], []
    with tempfile.TemporaryDirectory() as tmp:
        queries = query_set(vectors, passages, questions, Path(tmp), fresh)
        if sweep:
            log("exact search by size…")
            flat = flat_sweep(vectors, np.load(queries)["vectors"])
        for store, kind in variants:
            rows.append(_measure_variant(n, store, kind, (articles, passages, vectors), Path(tmp), queries, log))
    return rows, flat


def _measure_variant(n: int, store: str, kind: str | None, data, tmp: Path, queries: Path, log) -> dict:
    settings = Settings(index_dir=tmp / f"{store}-{kind}", store=store, milvus_uri=str(tmp / "milvus.db"))
    log(f"{n:,} passages, {store} {kind or ''}: writing the index…")
    started = time.perf_counter()
    manifest = write_synthetic(settings, *data, kind)
    build_s = time.perf_counter() - started
    log(f"{n:,} passages, {store} {kind or ''}: measuring in a fresh process…")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        row = pool.submit(measure_child, settings, queries).result()
    record = manifest["store"]
    label = (f"IVF {record['lists']} lists, nprobe {record['nprobe']}" if record.get("type") == "ivf"
             else "flat" if store == "faiss" else "AUTOINDEX + BM25 function")
    return row | {"store": store, "passages": n, "index": label, "build_s": build_s, "record": record}


def measure_query_embedding(questions: list[str], log) -> dict | None:
    """p50/p95 of embedding one question with the default embedder, if it is here."""
    from rag.embedding import get_embedder
    from rag.errors import RagError

    settings = Settings()
    try:
        embedder = get_embedder(settings)
        embedder.embed_query(questions[0])
    except (RagError, OSError) as exc:
        log(f"query embedding not measured: {exc}")
        return None
    ms = []
    for q in questions[:50]:
        started = time.perf_counter()
        embedder.embed_query(q)
        ms.append(1000 * (time.perf_counter() - started))
    return {"embedder": embedder.name, "queries": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)}
