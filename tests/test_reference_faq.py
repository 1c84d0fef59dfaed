"""Checks the second reference set, eval/faq/reference.jsonl, against its corpus eval/faq/docs
(the chapters of the French Debian FAQ, HTML; see eval/faq/README.md).

Same record format and kinds of question as eval/reference.jsonl (tests/test_reference_set.py,
whose helpers are reused). Differences: evidence is checked against the article text that
rag.articles.load_corpus returns (trafilatura keeps the source's hard line breaks, so the
comparison is verbatim up to whitespace); every form of a key fact must be in the evidence;
the split alternates dev, test, ... within each primary tag, in id order.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import pytest

from rag.articles import load_corpus
from test_reference_set import (MIN_HARD_EVIDENCE_WORDS, ROOT, SPLITS, TAGS, check_answerability, check_shape,
                                content_words, ids, normalize, shared_content_words)

FAQ = ROOT / "eval" / "faq"
RECORDS = [json.loads(line) for line in (FAQ / "reference.jsonl").read_text("utf-8").splitlines()]
ARTICLES = {a.doc_id: a for a in load_corpus(FAQ / "docs")}
FLAT = {doc_id: " ".join(a.text.split()) for doc_id, a in ARTICLES.items()}
ANSWERABLE = [r for r in RECORDS if r["answerable"]]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_every_chapter_loads_with_a_title():
    files = sorted(p.name for p in (FAQ / "docs").iterdir())
    assert files == sorted(ARTICLES) and len(files) == 16
    for article in ARTICLES.values():
        assert re.match(r"Chapitre \d+\. ", article.title), article.title
        assert len(article.text) > 1500


def test_file_is_plain_utf8_jsonl_with_unique_ids():
    raw = (FAQ / "reference.jsonl").read_text("utf-8")
    assert raw.endswith("\n") and "\\u" not in raw
    assert ids(RECORDS) == [f"f{i:03d}" for i in range(1, len(RECORDS) + 1)]
    assert len({normalize(r["question"]) for r in RECORDS}) == len(RECORDS)


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_fields_types_and_tags(rec):
    check_shape(rec, r"f\d{3}")


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_answerability_is_consistent(rec):
    check_answerability(rec)


@pytest.mark.parametrize("rec", ANSWERABLE, ids=ids(ANSWERABLE))
def test_evidence_is_verbatim_in_the_cleaned_chapter(rec):
    for ev in rec["evidence"]:
        assert ev["doc_id"] in ARTICLES, ev["doc_id"]
        assert flat(ev["text"]) in FLAT[ev["doc_id"]], f"not verbatim: {ev['text']!r}"


@pytest.mark.parametrize("rec", ANSWERABLE, ids=ids(ANSWERABLE))
def test_key_facts_are_in_evidence_and_answer(rec):
    evidence = normalize(" ".join(ev["text"] for ev in rec["evidence"]))
    for fact in rec["key_facts"]:
        assert all(normalize(form) in evidence for form in fact), f"{fact} not in evidence"
        assert any(normalize(form) in normalize(rec["answer"]) for form in fact), f"{fact} not in answer"


@pytest.mark.parametrize("rec", [r for r in RECORDS if "multi" in r["tags"]])
def test_multi_questions_have_two_spans(rec):
    assert len({(ev["doc_id"], ev["text"]) for ev in rec["evidence"]}) >= 2


@pytest.mark.parametrize("rec", [r for r in RECORDS if "paraphrase-hard" in r["tags"]])
def test_hard_paraphrase_shares_no_content_word_with_its_evidence(rec):
    evidence = " ".join(ev["text"] for ev in rec["evidence"])
    assert len(content_words(evidence)) >= MIN_HARD_EVIDENCE_WORDS
    assert not shared_content_words(rec["question"], evidence)


def test_split_alternates_within_each_primary_tag():
    by_tag = defaultdict(list)
    for rec in RECORDS:
        by_tag[rec["tags"][0]].append(rec["split"])
    for tag, splits in by_tag.items():
        assert splits == [SPLITS[n % 2] for n in range(len(splits))], tag


def test_each_split_holds_every_kind():
    tags = Counter(t for r in RECORDS for t in r["tags"])
    assert {t for t in tags} == TAGS - {"near-duplicate"}
    for side in SPLITS:
        records = [r for r in RECORDS if r["split"] == side]
        assert sum(r["answerable"] for r in records) >= 0.4 * len(ANSWERABLE)
        assert sum(not r["answerable"] for r in records) >= 0.4 * (len(RECORDS) - len(ANSWERABLE))
        assert {t for r in records for t in r["tags"]} == set(tags)
