"""Checks the third reference set, eval/kinds/reference.jsonl, against its corpus eval/kinds/docs
(eight documents of kinds other than news and software documentation: a recipe, a manual,
a town bulletin, a biography, a match report, a regulation, a travel guide, a health
leaflet; see eval/kinds/README.md).

Same record format and kinds of question as eval/reference.jsonl (tests/test_reference_set.py,
whose helpers are reused). Evidence is checked against the text rag.articles.load_corpus makes
of each document, verbatim up to whitespace; one form of each key fact at least is in the
evidence; the split alternates dev, test, ... within each document, in id order.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from rag.articles import load_corpus
from test_reference_set import ROOT, check_answerability, check_shape, ids, normalize

KINDS = ROOT / "eval" / "kinds"
RECORDS = [json.loads(line) for line in (KINDS / "reference.jsonl").read_text("utf-8").splitlines()]
ARTICLES = {a.doc_id: a for a in load_corpus(KINDS / "docs")}
FLAT = {doc_id: " ".join(a.text.split()) for doc_id, a in ARTICLES.items()}
ANSWERABLE = [r for r in RECORDS if r["answerable"]]


def test_every_document_loads_with_a_title():
    assert len(ARTICLES) == 8
    for article in ARTICLES.values():
        assert article.title and 1500 < len(article.text) < 5000, article.doc_id


def test_file_is_plain_utf8_jsonl_with_unique_ids():
    raw = (KINDS / "reference.jsonl").read_text("utf-8")
    assert raw.endswith("\n")
    assert ids(RECORDS) == [f"k{i:03d}" for i in range(1, len(RECORDS) + 1)]
    assert len({normalize(r["question"]) for r in RECORDS}) == len(RECORDS)


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_fields_tags_and_answerability(rec):
    check_shape(rec, r"k\d{3}")
    check_answerability(rec)


@pytest.mark.parametrize("rec", ANSWERABLE, ids=ids(ANSWERABLE))
def test_evidence_is_verbatim_and_holds_each_fact(rec):
    for ev in rec["evidence"]:
        assert " ".join(ev["text"].split()) in FLAT[ev["doc_id"]], f"not verbatim: {ev['text']!r}"
    evidence = normalize(" ".join(ev["text"] for ev in rec["evidence"]))
    for fact in rec["key_facts"]:
        assert any(normalize(form) in evidence for form in fact), fact
    if "multi" in rec["tags"]:
        assert len(rec["key_facts"]) >= 2


def test_each_document_has_answerable_and_unanswerable_questions_split_in_turn():
    # six questions a document, in id order; an unanswerable one carries no doc, so each
    # block's first question (answerable) names it
    docs = [rec["evidence"][0]["doc_id"] for rec in RECORDS[::6]]
    assert sorted(docs) == sorted(ARTICLES)
    for start in range(0, len(RECORDS), 6):
        block = RECORDS[start:start + 6]
        assert [r["split"] for r in block] == ["dev", "test"] * 3
        assert Counter(r["answerable"] for r in block) == {True: 4, False: 2}
