"""Near-duplicate articles (MinHash over sentences) and the diversified top-k."""

from __future__ import annotations

import pytest

from rag.articles import load_corpus
from rag.dedup import copies, duplicate_groups, repeats, similarity, terms_of
from rag.embedding import get_embedder
from rag.index import build_index
from rag.records import Article, Hit, Passage
from rag.retrieval import Retriever, diversified
from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"
STORY = ("Meta prévoit de dépenser soixante-cinq milliards de dollars en intelligence artificielle "
         "cette année pour rattraper son retard sur la concurrence.")
RETOLD = ("Pour rattraper son retard sur la concurrence, Meta prévoit cette année de dépenser "
          "soixante-cinq milliards de dollars dans l'intelligence artificielle.")
OTHER = "Twitter perd ses annonceurs depuis le rachat par Elon Musk pour quarante-quatre milliards."


def article(doc_id: str, *sentences: str) -> Article:
    return Article(doc_id, f"{doc_id}.txt", doc_id, None, " ".join(sentences), "0")


def hit(doc_id: str, text: str, score: float) -> Hit:
    return Hit(Passage(f"{doc_id}#{int(score * 100)}", doc_id, doc_id, 0, len(text), text), score)


def test_the_seeds_rewritten_meeting_is_one_story():
    # 000 and 001 report one Zuckerberg meeting in their own words: few shared word sequences
    assert duplicate_groups(load_corpus(SEEDS)) == [["000_6aa0d2c1c64dd291", "001_7964a669a5581a1c"]]


def test_groups_need_two_shared_sentences_and_join_transitively():
    filler = ["Le zorglub mange des pommes vertes chaque matin dans son jardin.",
              "Les chercheurs du laboratoire publient leurs résultats la semaine prochaine."]
    a = article("a", STORY, filler[0], OTHER)
    b = article("b", RETOLD, filler[0].replace("chaque matin", "tous les matins"))
    c = article("c", RETOLD)  # one sentence in common only: not the same story
    d = article("d", STORY, filler[0])
    assert duplicate_groups([a, b, c]) == [["a", "b"]]
    assert duplicate_groups([a, b, c, d]) == [["a", "b", "d"]]
    assert copies([["a", "b", "d"]], "b") == ["a", "d"] and copies([["a", "b"]], "c") == []


def test_repeats_is_content_term_overlap():
    assert similarity(terms_of(STORY), terms_of(RETOLD)) > 0.6
    assert repeats(terms_of(STORY), terms_of(RETOLD)) and not repeats(terms_of(STORY), terms_of(OTHER))
    assert not repeats(terms_of("Ça craint."), terms_of("Ça craint."))  # too little to say


def test_diversified_lets_a_second_source_in():
    hits = [hit("a", STORY, 0.9), hit("b", RETOLD, 0.8), hit("c", OTHER, 0.7), hit("d", "Autre chose.", 0.1)]
    assert [h.passage.doc_id for h in diversified(hits, 2)] == ["a", "c"]
    assert [h.passage.doc_id for h in diversified(hits, 4)] == ["a", "c", "d", "b"]  # held back, not dropped
    assert [h.passage.doc_id for h in diversified(hits[:2], 2)] == ["a", "b"]  # nothing else: kept


def test_passages_of_one_article_are_never_held_back():
    hits = [hit("a", STORY, 0.9), hit("a", RETOLD, 0.8), hit("c", OTHER, 0.7)]
    assert [h.passage.doc_id for h in diversified(hits, 2)] == ["a", "a"]


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_the_retriever_diversifies_when_told_to(settings, mode):
    seeds = settings.seeds_dir
    (seeds / "a.txt").write_text(f"{STORY}\n\n{OTHER}", "utf-8")
    (seeds / "b.txt").write_text(f"{RETOLD}\n\nLe zorglub mange des pommes.", "utf-8")
    index = build_index(settings.model_copy(update={"passage_chars": 200}), log=lambda *_: None)
    retriever = Retriever.from_index(index, get_embedder(settings), diversify=True)
    question = "Combien Meta prévoit-elle de dépenser en intelligence artificielle pour rattraper son retard ?"
    plain = retriever.search(question, 2, mode, diversify=False)
    assert {h.passage.doc_id for h in plain} == {"a", "b"}  # the story twice
    shown = retriever.search(question, 2, mode)
    assert len({h.passage.doc_id for h in shown}) == 2 and not repeats(*(terms_of(h.passage.text) for h in shown))
    assert Retriever.from_index(index, get_embedder(settings)).search(question, 2, mode) == plain  # off by default
