"""The pure helpers of bench/run.py (bench/helpers.py): percentiles, synthetic corpora and
indexes, the FAISS index type by size.

No timing is asserted: the measurements themselves are what `python bench/run.py` is for.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from rag.articles import load_corpus
from rag.retrieval import BM25
from rag.settings import PROJECT_ROOT


def _load_helpers():
    # bench/ is a folder of scripts, not a package
    spec = importlib.util.spec_from_file_location("bench_helpers", PROJECT_ROOT / "bench" / "helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()


@pytest.mark.parametrize("values, q, expected", [
    ([1, 2, 3, 4], 50, 2.5),
    ([1, 2, 3, 4], 95, 3.85),  # 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3)
    ([1, 2, 3, 4], 0, 1),
    ([1, 2, 3, 4], 100, 4),
    ([7.0], 95, 7.0),
    ([10, 0, 5], 50, 5),  # unsorted input
])
def test_percentile_by_hand(values, q, expected):
    assert helpers.percentile(values, q) == pytest.approx(expected)


def test_percentile_matches_numpy():
    values = [random.Random(3).random() for _ in range(37)]
    for q in (5, 50, 95, 99):
        assert helpers.percentile(values, q) == pytest.approx(np.percentile(values, q))


@pytest.mark.parametrize("n, kind", [(48, "flat"), (100_000, "flat"), (199_999, "flat"),
                                     (200_000, "hnsw"), (1_000_000, "hnsw")])
def test_index_type_by_size(n, kind):
    assert helpers.index_type(n) == kind


def test_perturb_keeps_shape_and_changes_only_digits_and_order():
    text = "Titre 2025\n" + "Meta prévoit de dépenser 65 milliards de dollars en IA en 2025 pour rattraper " * 2
    out = helpers.perturb(text, random.Random(1))
    assert out.split("\n")[0][:6] == "Titre " and out.split("\n")[0][6:].isdigit()  # short line: digits only
    body, new_body = text.split("\n")[1], out.split("\n")[1]
    assert len(new_body) == len(body)
    no_digits = lambda s: sorted(w for w in s.split(" ") if not any(c.isdigit() for c in w))  # noqa: E731
    assert no_digits(new_body) == no_digits(body)
    assert helpers.perturb(text, random.Random(1)) == out  # deterministic


def test_synthetic_corpus_is_copies_with_distinct_ids(tmp_path: Path, corpus: Path):
    n = helpers.write_synthetic_corpus(corpus, tmp_path / "synthetic", copies=3)
    articles = load_corpus(tmp_path / "synthetic")
    assert n == len(articles) == 3 * len(load_corpus(corpus))
    assert len({a.doc_id for a in articles}) == n
    assert len({a.text for a in articles}) == n  # perturbed: no two copies alike


def test_tiled_bm25_is_bm25_of_repeated_passages():
    texts = ["Meta dépense des milliards en IA", "TikTok et Instagram Reels", "Meta investit 65 milliards"]
    # exact for a multiple of the passages; otherwise only the average length differs
    for n, rtol in ((6, 1e-5), (9, 1e-5), (7, 0.02)):
        repeated = [texts[i % len(texts)] for i in range(n)]
        tiled = helpers.tile_bm25(BM25(texts), n)
        built = BM25(repeated)
        assert tiled.vocab == built.vocab
        np.testing.assert_allclose(tiled.weights.toarray(), built.weights.toarray(), rtol=rtol)
        np.testing.assert_allclose(tiled.scores("milliards Meta"), built.scores("milliards Meta"), rtol=rtol)


def test_recall_at_k_by_hand():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    found = np.array([[3, 2, 9], [7, 8, 9]])
    assert helpers.recall_at_k(truth, found, k=3) == pytest.approx((2 / 3 + 0) / 2)


def test_clustered_unit_vectors():
    vectors = helpers.clustered_unit_vectors(500, 32, np.random.default_rng(0), per_cluster=50, chunk=128)
    assert vectors.shape == (500, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    same = helpers.clustered_unit_vectors(500, 32, np.random.default_rng(0), per_cluster=50, chunk=128)
    np.testing.assert_array_equal(vectors, same)
    # clustered: a vector's nearest neighbour is much closer than a random pair
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    assert np.median(sims.max(axis=1)) > 0.3 > abs(float(np.median(sims)))
