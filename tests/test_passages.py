"""French sentence splitting and passages with exact offsets."""

import pytest

from rag.articles import load_corpus
from rag.passages import split_passages, split_sentences
from rag.records import Article
from rag.settings import PROJECT_ROOT


def sentences(text):
    return [text[s:e] for s, e in split_sentences(text)]


def test_french_abbreviations_numbers_and_quotes_are_not_cut():
    text = ("M. Zuckerberg a parlé. Meta versera 25 millions de dollars. La note est 4.4/5 "
            "selon Stephen L. Carter. Il a dit : « Tout fuit. C'est pénible ». Puis il est parti !")
    assert sentences(text) == [
        "M. Zuckerberg a parlé.",
        "Meta versera 25 millions de dollars.",
        "La note est 4.4/5 selon Stephen L. Carter.",
        "Il a dit : « Tout fuit. C'est pénible ».",
        "Puis il est parti !",
    ]


def test_paragraphs_always_end_sentences():
    assert sentences("Un titre sans point\n\nUne phrase. Une autre") == [
        "Un titre sans point", "Une phrase.", "Une autre"]


def article(text, doc_id="x"):
    return Article(doc_id=doc_id, path=f"{doc_id}.txt", title="T", date=None, text=text, sha256="0")


def test_passages_respect_size_and_overlap():
    text = " ".join(f"Phrase numéro {i} qui parle de Meta." for i in range(30))
    passages = split_passages(article(text), max_chars=120, overlap=1)
    assert len(passages) > 5
    for p in passages:
        assert len(p.text) <= 120 and p.text == text[p.start:p.end]
        assert p.id == f"x#{p.start}-{p.end}"
    for a, b in zip(passages, passages[1:]):
        assert b.start < a.end  # one sentence shared
    assert passages[-1].end == len(text)
    no_overlap = split_passages(article(text), max_chars=120, overlap=0)
    assert all(b.start > a.end for a, b in zip(no_overlap, no_overlap[1:]))


def test_long_sentence_stands_alone():
    text = "Court. " + "mot " * 100 + "fin. Encore court."
    passages = split_passages(article(text), max_chars=50, overlap=1)
    assert any(len(p.text) > 50 for p in passages)
    assert passages[-1].text == "Encore court."


@pytest.mark.parametrize("chars", [300, 600, 1200])
def test_seed_passages_cover_every_sentence(chars):
    for a in load_corpus(PROJECT_ROOT / "seeds"):
        passages = split_passages(a, chars, 1)
        covered = set()
        for p in passages:
            assert a.text[p.start:p.end] == p.text
            covered.update(range(p.start, p.end))
        for s, e in split_sentences(a.text):
            assert set(range(s, e)) <= covered
        assert len({p.id for p in passages}) == len(passages)
