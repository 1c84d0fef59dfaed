"""BM25 (bm25s, saved and memory-mapped), fusion, and the retriever over a built index."""

from pathlib import Path

import numpy as np
import pytest

from rag.index import build_index
from rag.records import Passage
from rag.retrieval import Retriever, fuse
from rag.stores import Filter
from rag.stores.bm25 import Bm25Index, analyze, build_bm25, top_rows
from rag.embedding import get_embedder


def _p(i: int) -> Passage:
    return Passage(f"d#{i}", "d", "t", i, i + 1, f"texte {i}")


def bm25(texts: list[str], tmp_path: Path, analyzer: str = "terms") -> Bm25Index:
    build_bm25(texts, tmp_path, analyzer)
    return Bm25Index.load(tmp_path, analyzer)


def test_bm25_ranks_the_passage_with_the_rare_term_first(tmp_path: Path):
    bm = bm25(["Meta dépense des milliards en IA.", "Twitter perd des annonceurs.",
               "Meta et Twitter sont des réseaux sociaux."], tmp_path)
    scores = bm.scores("Combien Meta dépense-t-elle ?")
    assert int(np.argmax(scores)) == 0
    assert scores[1] == 0.0


def test_bm25_matches_across_accents_and_plurals(tmp_path: Path):
    bm = bm25(["Les dépenses de l'Équipe", "rien à voir"], tmp_path)
    assert bm.scores("depense equipe")[0] > 0
    assert bm.scores("depense equipe")[1] == 0


@pytest.mark.parametrize("analyzer", ["terms", "snowball-folded"])
def test_bm25_golden_value(tmp_path: Path, analyzer: str):
    # one term "chat" (stem of chats) in doc 0 of two docs, df=1, N=2
    # idf = ln(1 + (2-1+0.5)/(1+0.5)) = ln 2 ; doc0 length 1, avg 1 -> tf part = 1/(1+1.2)
    # (Lucene's formula, as bm25s has it, leaves out the constant factor k1 + 1 = 2.2:
    # rankings and z-scores are those of the textbook formula)
    bm = bm25(["chats", "chien"], tmp_path, analyzer)
    assert bm.scores("chat")[0] == pytest.approx(np.log(2) / 2.2, rel=1e-5)


def test_bm25_unknown_words_score_zero(tmp_path: Path):
    bm = bm25(["un texte", "un autre"], tmp_path)
    assert not bm.scores("zzz").any() and bm.top("zzz", 5) == {}


def test_bm25_is_memory_mapped(tmp_path: Path):
    bm = bm25(["Meta dépense", "Twitter perd"], tmp_path)
    assert isinstance(bm.model.scores["data"], np.memmap)


def test_bm25_mask_leaves_rows_out(tmp_path: Path):
    bm = bm25(["Meta dépense", "Meta investit", "Twitter"], tmp_path)
    assert list(bm.top("Meta", 5, mask=np.array([False, True, True]))) == [1]


def test_analyzers_fold_accents_or_not():
    assert analyze("Les dépenses de l'Équipe", "terms") == ["depens", "equip"]
    assert analyze("Les dépenses de l'Équipe", "snowball-folded") == ["depens", "equip"]
    assert analyze("Les dépenses", "snowball") == ["dépens"]  # Snowball alone keeps accents


@pytest.mark.parametrize("scores, n, expected", [
    ([0.0, 3.0, 1.0, 3.0, 2.0], 2, [1, 3]),  # tie at the top: lower row first
    ([0.0, 3.0, 1.0, 3.0, 2.0], 3, [1, 3, 4]),
    ([1.0, 2.0, 2.0, 2.0], 2, [1, 2]),  # tie across the cut: the lower rows stay, as a stable sort
    ([0.0, 0.0], 5, []),  # zero scores are no match
])
def test_top_rows_by_hand(scores, n, expected):
    assert list(top_rows(np.array(scores, dtype=np.float32), n)) == expected


def test_top_rows_matches_a_stable_sort():
    scores = np.random.default_rng(0).integers(0, 5, 1000).astype(np.float32)
    stable = [int(i) for i in np.argsort(-scores, kind="stable")[:37] if scores[i] > 0]
    assert list(top_rows(scores, 37)) == stable


def test_fuse_mixes_z_scores():
    passages = [_p(i) for i in range(3)]
    bm25 = {0: 10.0, 1: 5.0, 2: 0.0}  # mean 5, std 4.0825: z = 1.2247, 0, -1.2247
    dense = {1: 0.9, 2: 0.5}  # mean .7, std .2: z = 1, -1; passage 0 absent -> floor -1
    hits = fuse(bm25, dense, 0.6, passages, 3)
    assert [h.passage.id for h in hits] == ["d#1", "d#0", "d#2"]
    assert hits[0].score == pytest.approx(0.6 * 0 + 0.4 * 1.0)
    assert hits[1].score == pytest.approx(0.6 * 1.2247449 + 0.4 * -1.0)
    assert hits[1].dense is None and hits[1].bm25 == 10.0


def test_fuse_weight_one_is_bm25_order():
    passages = [_p(i) for i in range(3)]
    hits = fuse({2: 3.0, 0: 1.0}, {0: 0.9, 1: 0.8}, 1.0, passages, 2)
    assert [h.passage.id for h in hits] == ["d#2", "d#0"]


def test_retriever_filters_by_article_and_date(settings):
    index = build_index(settings, log=lambda *_: None)
    retriever = Retriever.from_index(index, get_embedder(settings))
    doc = next(iter(index.articles))
    for mode in ("bm25", "dense", "hybrid"):
        hits = retriever.search("Meta dépense milliards IA", 5, mode, where=Filter(doc_ids=frozenset({doc})))
        assert hits and {h.passage.doc_id for h in hits} == {doc}
        assert retriever.search("Meta", 5, mode, where=Filter(date_from="2999-01-01")) == []


def test_retriever_accepts_a_query_vector(settings):
    index = build_index(settings, log=lambda *_: None)
    embedder = get_embedder(settings)
    retriever = Retriever.from_index(index, embedder)
    question = "Combien Meta prévoit-elle de dépenser en IA ?"
    given = retriever.search(question, 3, vector=embedder.embed_query(question))
    assert [h.passage.id for h in given] == [h.passage.id for h in retriever.search(question, 3)]
