"""The vector-store interface on FAISS: keys, filters, add/delete by article, commit and
reopen; the index type by size and the IVF tuning; dates and keys by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.records import Passage
from rag.settings import Settings
from rag.stores import Filter, VectorStore, day_number, get_store, passage_key
from rag.stores import faiss_store
from rag.stores.faiss_store import (FaissStore, build_faiss, build_tuned, exact_top, index_type, ivf_lists,
                                    query_like, recall_at_k, tune_nprobe)

DIM = 16


def clustered(n: int, dim: int, seed: int = 5, per_cluster: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // per_cluster), dim), dtype=np.float32)
    out = centres[rng.integers(0, len(centres), n)] + rng.standard_normal((n, dim), dtype=np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def corpus(n_docs: int = 4, per_doc: int = 5) -> tuple[list[Passage], np.ndarray, dict]:
    passages = [Passage(f"d{d}#{i}-{i + 1}", f"d{d}", f"Titre {d}", i, i + 1, f"texte {d} {i}")
                for d in range(n_docs) for i in range(per_doc)]
    dates = {f"d{d}": f"2025-0{d + 1}-15" for d in range(n_docs)}
    return passages, clustered(len(passages), DIM, per_cluster=per_doc), dates


@pytest.mark.parametrize("date, end, number", [
    ("2025-01-31", False, 20250131), ("2025-01", False, 20250100), ("2025-01", True, 20250199),
    ("2025", True, 20259999), (None, False, 0), ("hier", False, 0)])
def test_day_number_by_hand(date, end, number):
    assert day_number(date, end) == number


def test_filter_day_range():
    assert Filter().day_range() is None
    assert Filter(date_from="2025-02").day_range() == (20250200, 99_999_999)
    assert Filter(date_to="2025-02").day_range() == (1, 20250299)


def test_passage_keys_are_stable_positive_int64():
    key = passage_key("002_dbf84de5b56e379c#435-977")
    assert key == passage_key("002_dbf84de5b56e379c#435-977") and 0 < key < 2**63
    assert key != passage_key("002_dbf84de5b56e379c#435-978")


def test_faiss_store_follows_the_interface(tmp_path: Path):
    passages, vectors, dates = corpus()
    store = get_store(Settings(index_dir=tmp_path), DIM)
    assert isinstance(store, VectorStore) and store.kind == "faiss" and store.count() == 0
    store.add(passages, vectors, dates)
    record = store.commit(tmp_path)
    assert record == {"kind": "faiss", "dim": DIM, "count": 20, "type": "flat"}
    best = store.search(vectors[7], 3)
    assert list(best)[0] == passage_key(passages[7].id) and best[passage_key(passages[7].id)] == pytest.approx(1.0)


def test_faiss_store_filters_by_article_and_date(tmp_path: Path):
    passages, vectors, dates = corpus()
    store = FaissStore.open(DIM, None, None)
    store.add(passages, vectors, dates)
    store.commit(tmp_path)
    keys = {passage_key(p.id): p for p in passages}
    only_d2 = store.search(vectors[0], 10, Filter(doc_ids=frozenset({"d2"})))
    assert len(only_d2) == 5 and {keys[k].doc_id for k in only_d2} == {"d2"}
    spring = store.search(vectors[0], 20, Filter(date_from="2025-02-01", date_to="2025-03-31"))
    assert {keys[k].doc_id for k in spring} == {"d1", "d2"}
    assert store.search(vectors[0], 5, Filter(doc_ids=frozenset())) == {}


def test_faiss_store_delete_add_commit_reopen(tmp_path: Path):
    passages, vectors, dates = corpus()
    store = FaissStore.open(DIM, None, None)
    store.add(passages, vectors, dates)
    (tmp_path / "a").mkdir()
    first = store.commit(tmp_path / "a")
    reopened = FaissStore.open(DIM, first, tmp_path / "a")
    assert reopened.count() == 20 and reopened.search(vectors[3], 1) == store.search(vectors[3], 1)
    reopened.delete({"d0"})
    reopened.add(passages[:2], vectors[:2], dates)  # d0's first two passages come back
    reopened.add(passages[:2], vectors[:2], dates)  # the same keys again replace them
    (tmp_path / "b").mkdir()
    second = reopened.commit(tmp_path / "b")
    assert second["count"] == reopened.count() == 17
    again = FaissStore.open(DIM, second, tmp_path / "b")
    np.testing.assert_array_equal(np.sort(again.arrays["keys"]), np.sort(reopened.arrays["keys"]))
    assert list(again.search(vectors[0], 1)) == [passage_key(passages[0].id)]


def test_faiss_store_refuses_other_dimensions_and_damaged_files(tmp_path: Path):
    from rag.errors import RagError

    passages, vectors, dates = corpus()
    store = FaissStore.open(DIM, None, None)
    store.add(passages, vectors, dates)
    record = store.commit(tmp_path)
    with pytest.raises(RagError, match="dimension"):
        FaissStore.open(DIM * 2, record, tmp_path)
    np.save(tmp_path / "keys.npy", np.zeros(3, dtype=np.int64))
    with pytest.raises(RagError, match="corrompu.*rag index --rebuild"):
        FaissStore.open(DIM, record, tmp_path)


@pytest.mark.parametrize("n, kind", [(48, "flat"), (faiss_store.FLAT_LIMIT - 1, "flat"),
                                     (faiss_store.FLAT_LIMIT, "ivf"), (1_000_000, "ivf")])
def test_index_type_by_size(n, kind):
    assert index_type(n) == kind


def test_ivf_lists_is_about_twice_sqrt_n():
    assert ivf_lists(1_000_000) == 2000 and ivf_lists(200_000) == 894 and ivf_lists(1) == 1


def test_recall_at_k_by_hand():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    found = np.array([[3, 2, 9], [7, 8, 9]])
    assert recall_at_k(truth, found, k=3) == pytest.approx((2 / 3 + 0) / 2)


def test_query_like_vectors_sit_near_their_passage():
    vectors = clustered(2000, 64)
    queries = query_like(vectors, 50, np.random.default_rng(1))
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, rtol=1e-5)
    nearest = (queries @ vectors.T).max(axis=1)
    assert 0.6 < float(np.median(nearest)) < 0.8  # noise of norm 1: cosine ~0.7 to the source


def test_ivf_index_tuned_to_the_recall_target():
    data = clustered(20_200, 64)
    base, tuning = data[:20_000], data[20_000:20_100]
    index = build_faiss(base, "ivf")
    assert index.nlist == ivf_lists(20_000) and index.ntotal == 20_000
    truth = exact_top(base, tuning)
    nprobe, recall = tune_nprobe(index, truth, tuning)
    assert recall >= faiss_store.RECALL_TARGET and index.nprobe == nprobe
    if nprobe > 1:  # the smallest nprobe that keeps the target: one step less does not
        index.nprobe = nprobe // 2
        assert recall_at_k(truth, index.search(tuning, 10)[1]) < faiss_store.RECALL_TARGET


def test_build_tuned_records_what_it_chose():
    index, facts = build_tuned(clustered(5_000, 32), threads=1, kind="ivf")
    assert facts["type"] == "ivf" and facts["lists"] == ivf_lists(5_000) == index.nlist
    assert facts["nprobe"] == index.nprobe and facts["tuning_recall"] >= faiss_store.RECALL_TARGET
    assert facts["recall@10"] >= 0.9  # held out: near the target, not tuned on
