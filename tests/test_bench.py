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
                                     (200_000, "ivf"), (1_000_000, "ivf")])
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


def _load_script(name: str):
    import sys

    sys.path.insert(0, str(PROJECT_ROOT / "bench"))  # the scripts import their siblings
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", PROJECT_ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(PROJECT_ROOT / "bench"))
    return module


def test_limits_by_hand():
    run = _load_script("run")
    machine = {"bandwidth_gbs": 10.0, "matmul_gflops": 100.0}
    gen = {"model": {"file_bytes": 1e9, "matmul_params": 1e9}, "prompt_tokens": 1000, "prefix": {"tokens": 300},
           "direct": {"tokens_per_s": 8.0, "ttft_s": 40.0},
           "app": {"tokens_per_s": 5.0, "ttft_s": 41.0, "before_llm_s": 1.0},
           "app_prefix_cache": {"ttft_s": 29.0, "before_llm_s": 1.0}}
    rows = {r["what"]: r for r in run.limits(machine, gen, {"prefill_s": 30.0})}
    # 10 GB/s over a 1 GB file: at most 10 tokens/s
    assert rows["decode tokens/s, direct"]["limit"] == pytest.approx(10.0)
    assert rows["decode tokens/s, app"]["share"] == pytest.approx(0.5)
    # 2 x 1e9 FLOPs per token at 100 GFLOP/s: 0.02 s a token, 20 s for 1000, 14 s for the 700 after the prefix
    assert rows["prefill s, app"]["limit"] == pytest.approx(20.0) and rows["prefill s, app"]["share"] == 0.5
    assert rows["prefill s, app with prefix cache"]["limit"] == pytest.approx(14.0)
    assert rows["prefill s, app with prefix cache"]["share"] == pytest.approx(0.5)
    assert rows["prefill s, end to end (prefix cache on)"]["share"] == pytest.approx(14.0 / 30.0)


def test_prompt_size_grid_parsing():
    sweep = _load_script("prompt_size")
    assert sweep.parse_grid("3x900, 1x600,") == [(3, 900), (1, 600)]
    for bad in ("3x", "x900", "0x900", "3*900", "trois x 900"):
        with pytest.raises(SystemExit, match="point de grille invalide"):
            sweep.parse_grid(bad)


def test_prompt_size_table_has_one_line_per_point():
    sweep = _load_script("prompt_size")
    figures = {"speed": {"first_token_p50": 4.5}, "answers": {"key_facts": 0.7, "f1": 0.5},
               "citations": {"cites_evidence": 0.8, "precision": 0.75},
               "refusals": {"recall": 0.9, "wrong_refusals": 0.05}, "retrieval": {"recall@3": 0.92}}
    rows = [sweep.row(3, 900, {"figures": figures}, 1051.4), sweep.row(1, 600, {"figures": figures}, 520)]
    assert rows[0]["prompt_tokens"] == 1051 and rows[0]["recall@k"] == 0.92 and rows[1]["recall@k"] is None
    lines = sweep.table(rows).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| 3 | 900 | 1051 | 4.500 | 0.700 |")


def test_ivf_lists_is_about_sqrt_n():
    assert helpers.ivf_lists(1_000_000) == 1000 and helpers.ivf_lists(200_000) == 447 and helpers.ivf_lists(1) == 1


def test_ivf_index_tuned_to_the_recall_target():
    run = _load_script("run")
    rng = np.random.default_rng(5)
    data = helpers.clustered_unit_vectors(20_200, 64, rng)
    base, tuning = data[:20_000], data[20_000:20_100]
    index, _ = run.build_faiss(base, "ivf")
    flat, _ = run.build_faiss(base, "flat")
    assert index.nlist == helpers.ivf_lists(20_000) and index.ntotal == 20_000
    nprobe, recall = run.tune_nprobe(index, flat, tuning)
    assert recall >= run.RECALL_TARGET and index.nprobe == nprobe
    if nprobe > 1:  # the smallest nprobe that keeps the target: one step less does not
        index.nprobe = nprobe // 2
        assert helpers.recall_at_k(flat.search(tuning, 10)[1], index.search(tuning, 10)[1]) < run.RECALL_TARGET
