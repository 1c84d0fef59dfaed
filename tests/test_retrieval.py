import numpy as np
import pytest

from rag.records import Passage
from rag.retrieval import BM25, fuse


def _p(i: int) -> Passage:
    return Passage(f"d#{i}", "d", "t", i, i + 1, f"texte {i}")


def test_bm25_ranks_the_passage_with_the_rare_term_first():
    bm = BM25(["Meta dépense des milliards en IA.", "Twitter perd des annonceurs.",
               "Meta et Twitter sont des réseaux sociaux."])
    scores = bm.scores("Combien Meta dépense-t-elle ?")
    assert int(np.argmax(scores)) == 0
    assert scores[1] == 0.0


def test_bm25_matches_across_accents_and_plurals():
    bm = BM25(["Les dépenses de l'Équipe", "rien à voir"])
    assert bm.scores("depense equipe")[0] > 0
    assert bm.scores("depense equipe")[1] == 0


def test_bm25_golden_value():
    # one term "chat" (stem of chats) in doc 0 of two docs, df=1, N=2
    # idf = ln(1 + (2-1+0.5)/(1+0.5)) = ln 2 ; doc0 length 1, avg 1 -> tf part = 1*2.2/(1+1.2) = 1
    bm = BM25(["chats", "chien"])
    assert bm.scores("chat")[0] == pytest.approx(np.log(2), rel=1e-5)


def test_bm25_unknown_words_score_zero():
    assert not BM25(["un texte"]).scores("zzz").any()


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
