"""The helpers of bench/run.py: synthetic corpora, vectors and French-like
texts, the synthetic index written and measured through the app (bench/retrieval_scale.py).
The FAISS type by size and its tuning are the app's: tests/test_stores.py.

No timing is asserted: the measurements themselves are what `python bench/run.py` is for.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from rag.articles import load_corpus
from rag.settings import PROJECT_ROOT, Settings


def _load_helpers():
    # bench/ is a folder of scripts, not a package
    spec = importlib.util.spec_from_file_location("bench_helpers", PROJECT_ROOT / "bench" / "helpers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_helpers()


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


def test_seed_vocabulary_and_made_up_words(corpus: Path):
    vocabulary = helpers.seed_vocabulary(corpus)
    assert vocabulary[0] == "de" and "Meta" in vocabulary[:20]  # commonest first, as written
    made = helpers.made_up_words(500, random.Random(0), set(vocabulary))
    assert len(set(made)) == 500 and not set(made) & set(vocabulary)


def test_zipf_texts_follow_the_ranks():
    vocabulary = [f"mot{i}" for i in range(1000)]
    texts = list(helpers.zipf_texts(vocabulary, 400, 80, np.random.default_rng(0), chunk=150))
    assert len(texts) == 400 and all(60 <= len(t.split()) <= 100 for t in texts)
    counts = {w: 0 for w in vocabulary}
    for t in texts:
        for w in t.rstrip(".").split():
            counts[w] += 1
    # p ~ 1/rank: the first word about twice the second and ten times the tenth
    assert 1.6 < counts["mot0"] / counts["mot1"] < 2.5 and 7 < counts["mot0"] / counts["mot9"] < 14


def test_synthetic_corpus_has_exact_offsets(corpus: Path):
    scale = _load_script("retrieval_scale")
    articles, passages = scale.synthetic_corpus(40, corpus)
    assert len(passages) == 40 and len(articles) == 3  # 14 + 14 + 12
    by_id = {a.doc_id: a for a in articles}
    for p in passages:
        assert by_id[p.doc_id].text[p.start:p.end] == p.text
    assert len({p.id for p in passages}) == 40 and all(a.date for a in articles)


def test_synthetic_index_measured_through_the_app(tmp_path: Path, corpus: Path):
    scale = _load_script("retrieval_scale")
    articles, passages = scale.synthetic_corpus(300, corpus)
    vectors = helpers.clustered_unit_vectors(300, 32, np.random.default_rng(0), per_cluster=10)
    questions = ["Combien Meta dépense-t-elle ?", "Que fait TikTok ?", "Qui dirige Twitter ?"]
    queries = scale.query_set(vectors, passages, questions, tmp_path, vectors[:2] + 0.01)
    rows = {}
    for kind in ("flat", "ivf"):
        settings = Settings(index_dir=tmp_path / kind)
        manifest = scale.write_synthetic(settings, articles, passages, vectors, kind)
        assert manifest["store"]["type"] == kind and manifest["passages"] == 300
        rows[kind] = _in_bench_path(lambda: scale.measure_child(settings, queries))
    assert rows["flat"]["recall@10"] == rows["flat"]["recall@10_new_points"] == 1.0
    assert rows["ivf"]["recall@10"] > 0.5
    for row in rows.values():
        assert row["startup_s"] > 0 and row["peak_rss_mb"] > 0
        assert all(row[mode]["queries"] == 3 for mode in ("dense", "bm25", "hybrid"))


def test_scale_tables_print_one_line_per_variant():
    tables = _load_script("tables")
    timing = {"p50_ms": 1.0, "p95_ms": 2.0}
    row = {"store": "faiss", "passages": 100_000, "index": "flat", "startup_s": 0.5, "peak_rss_mb": 900.0,
           "dense": timing, "bm25": timing, "hybrid": timing, "recall@10": 1.0, "others_cpu": 0.01}
    text = tables.scale_tables([row, row | {"store": "milvus"}], [{"vectors": 1000, "p50_ms": 1, "p95_ms": 2}],
                               {"embedder": "x", "queries": 5, "p50_ms": 10.0, "p95_ms": 20.0})
    assert "| faiss | 100,000 | flat |" in text and "| milvus |" in text and "p95 20.0 ms" in text


def _in_bench_path(fn):
    import sys

    sys.path.insert(0, str(PROJECT_ROOT / "bench"))
    try:
        return fn()
    finally:
        sys.path.remove(str(PROJECT_ROOT / "bench"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", PROJECT_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _point(y, r, refusals, wrong, key_facts=0.5):
    return {"rules": [], "min_p_yes": y, "max_p_refuse": r, "refusals": refusals, "wrong_refusals": wrong,
            "worst_wrong": wrong, "key_facts": key_facts, "cites_evidence": key_facts}


def test_calibration_takes_the_most_refusals_within_the_wrong_refusal_budget():
    calibrate = _load("calibrate")
    points = [_point(0.0, 1.0, 0.5, 0.02), _point(0.7, 1.0, 0.8, 0.05), _point(0.9, 1.0, 0.95, 0.2)]
    assert calibrate.choose(points, max_wrong=0.05) == points[1]


def test_calibration_holds_the_wrong_refusal_budget_on_each_corpus():
    calibrate = _load("calibrate")
    points = [_point(0.4, 1.0, 0.9, 0.04) | {"worst_wrong": 0.15}, _point(0.5, 1.0, 0.85, 0.02) | {"worst_wrong": 0.05}]
    assert calibrate.choose(points, max_wrong=0.09) == points[1]  # pooled 0.04 hid one corpus's 0.15


def test_calibration_point_reports_the_worst_corpus_beside_the_pooled_figures():
    from rag.evaluation import Reference

    calibrate = _load("calibrate")
    refs = {i: Reference(i, "Qui ?", "Meta", True, (("Meta",),), (), ()) for i in ("a", "b", "c")}
    news = [_calibration_record() | {"id": "a"}, _calibration_record() | {"id": "b"}]
    faq = [_calibration_record("adds") | {"id": "c"}]  # adds refuses this corpus's only answer
    p = calibrate.point(refs, [news, faq], 0.0, 1.0, ("adds",))
    assert p["wrong_refusals"] == pytest.approx(1 / 3) and p["worst_wrong"] == 1.0
    assert calibrate.point(refs, [news, faq], 0.0, 1.0, ())["worst_wrong"] == 0.0


def test_calibration_without_a_pair_in_budget_takes_the_best_trade_off_not_the_most_refusals():
    calibrate = _load("calibrate")
    points = [_point(0.0, 1.0, 0.3, 0.08), _point(0.7, 1.0, 0.8, 0.10), _point(0.99, 1.0, 1.0, 0.6)]
    assert calibrate.choose(points, max_wrong=0.05) == points[1]


def _calibration_record(*failed_checks, p_yes=0.9):
    verdicts = [{"check": c, "passed": c not in failed_checks, "detail": None}
                for c in ("refusal", "markers", "cited", "complete", "adds", "grounded", "aligned")]
    verdicts.append({"check": "verified", "passed": True, "detail": p_yes})
    return {"id": "q1", "answer": "Meta [1].", "refused": False, "error": None, "citations": [],
            "checks": {"refusal": None, "verdicts": verdicts, "p_refuse": 0.1}, "timings": {}, "tokens": 3}


def test_calibration_applies_only_the_rules_of_the_set_and_always_the_others():
    calibrate = _load("calibrate")
    adds = _calibration_record("adds")
    assert calibrate.decided(adds, 0.0, 1.0, ("adds",))["refused"]
    assert not calibrate.decided(adds, 0.0, 1.0, ("grounded",))["refused"]
    assert calibrate.decided(_calibration_record("markers"), 0.0, 1.0, ())["refused"]  # not optional
    assert calibrate.decided(_calibration_record(p_yes=0.3), 0.4, 1.0, ())["refused"]
    assert not calibrate.decided(_calibration_record(p_yes=0.5), 0.4, 1.0, ())["refused"]


def test_calibration_prefers_fewer_rules_when_they_score_the_same():
    calibrate = _load("calibrate")
    same = [_point(0.4, 1.0, 0.8, 0.05) | {"rules": ["adds", "grounded"]},
            _point(0.4, 1.0, 0.8, 0.05) | {"rules": ["grounded"]}]
    assert calibrate.choose(same, max_wrong=0.05)["rules"] == ["grounded"]


def test_calibration_held_out_scores_each_fold_with_a_point_chosen_without_it():
    from rag.evaluation import Reference

    calibrate = _load("calibrate")
    answerable = {f"a{i}": p for i, p in enumerate((0.32, 0.9, 0.9, 0.9), 1)}
    off = {f"o{i}": 0.3 for i in range(1, 5)}
    refs = {i: Reference(i, "Qui ?", "Meta", i in answerable, (("Meta",),) if i in answerable else (), (), ())
            for i in [*answerable, *off]}
    records = [_calibration_record(p_yes=p) | {"id": i} for i, p in (answerable | off).items()]
    rule_sets = [()]
    # on all the questions, a1 (P(oui) 0.32) forbids any threshold that refuses the others (0.3)
    points = [calibrate.point(refs, [records], y, r, ()) for y in calibrate.P_YES for r in calibrate.P_REFUSE]
    chosen = calibrate.choose(points, max_wrong=0.0)
    assert chosen["refusals"] == 0.0 and chosen["wrong_refusals"] == 0.0
    # without a1, 0.35 refuses every off-corpus answer: a1, left out, is refused with them
    unseen = calibrate.held_out(refs, [records], rule_sets, 0.0, folds=4)
    assert unseen["wrong_refusals"] == pytest.approx(0.25) and unseen["refusals"] == pytest.approx(0.25)
