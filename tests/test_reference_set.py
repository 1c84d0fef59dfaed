"""Checks the reference question set, eval/reference.jsonl, against the seed articles.

Plain pytest, no project imports: the set is data, and these checks keep it honest
(evidence copied verbatim from article bodies, key facts present in that evidence,
unanswerable questions really empty, enough questions of each kind and per article).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
REFERENCE = ROOT / "eval" / "reference.jsonl"

FIELDS = {
    "id": str,
    "question": str,
    "answer": str,
    "answerable": bool,
    "key_facts": list,
    "evidence": list,
    "tags": list,
}
TAGS = {"simple", "paraphrase", "multi", "unanswerable"}

MIN_TOTAL = 60
MIN_PER_ARTICLE = 8
MIN_UNANSWERABLE = 10
MIN_MULTI = 6
MIN_PARAPHRASE = 12

# Scraped noise that evidence must never come from: whole lines (teasers to other
# articles, widgets) given by their start, and the page tail (ratings, author bios,
# comments, related links) starting at a marker. Compared after normalisation.
NOISE_LINES = {
    "000_6aa0d2c1c64dd291": [
        "La France « sidérée » par ce bio-ordinateur",
        "Le PDG de Klarna",
        "L’IA s’empare du cinéma",
    ],
    "001_7964a669a5581a1c": ["date 2025-01"],
    "002_dbf84de5b56e379c": ["fermer", "Réseaux sociaux", "« Trop sceptique » sur TikTok"],
    "003_311ccccd3c182cae": [],
    "004_36b0a24bd3ea13c0": ["Lire aussi", "Commentaire"],
}
TAIL_MARKERS = {
    "000_6aa0d2c1c64dd291": "Ça vous a plu ?",
    "001_7964a669a5581a1c": "Quel est votre avis sur le sujet ?",
    "002_dbf84de5b56e379c": "Tags :",
    "003_311ccccd3c182cae": "author avatar",
    "004_36b0a24bd3ea13c0": "Plus de Bloomberg Opinion",
}


def normalize(text: str) -> str:
    """Lowercase, strip accents, punctuation to spaces, collapse whitespace."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def contains(haystack: str, needle: str) -> bool:
    return normalize(needle) in normalize(haystack)


def load_records() -> list[dict]:
    raw = REFERENCE.read_text(encoding="utf-8")
    records = []
    for n, line in enumerate(raw.splitlines(), 1):
        assert line.strip(), f"blank line {n}"
        records.append(json.loads(line))
    return records


RECORDS = load_records()
SEED_TEXT = {p.stem: p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))}
BY_ID = {r.get("id"): r for r in RECORDS}


def body_of(doc_id: str) -> str:
    """The seed text with noise lines and the page tail blanked out (offsets kept)."""
    text = SEED_TEXT[doc_id]
    tail = TAIL_MARKERS[doc_id]
    cut = text.find(tail)
    assert cut > 0, f"tail marker {tail!r} not found in {doc_id}"
    masked = text[:cut] + "\0" * (len(text) - cut)
    out = []
    for line in masked.splitlines(keepends=True):
        stripped = normalize(line)
        if any(stripped.startswith(normalize(p)) for p in NOISE_LINES[doc_id]):
            line = "\0" * len(line)
        out.append(line)
    return "".join(out)


BODIES = {doc_id: body_of(doc_id) for doc_id in SEED_TEXT}


def ids(records):
    return [r["id"] for r in records]


# ------------------------------------------------------------------ file and schema


def test_file_is_plain_utf8_jsonl():
    raw = REFERENCE.read_bytes().decode("utf-8")
    assert raw.endswith("\n")
    assert "\\u" not in raw, "write with ensure_ascii=False"


def test_seeds_present():
    assert len(SEED_TEXT) == 5
    assert set(SEED_TEXT) == set(NOISE_LINES) == set(TAIL_MARKERS)


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_fields_and_types(rec):
    assert set(rec) == set(FIELDS), f"fields: {sorted(rec)}"
    for name, kind in FIELDS.items():
        assert isinstance(rec[name], kind), f"{name} should be {kind.__name__}"
    assert re.fullmatch(r"q\d{3}", rec["id"])
    assert rec["question"].strip() and rec["question"].rstrip().endswith("?")
    assert rec["tags"] and set(rec["tags"]) <= TAGS and len(set(rec["tags"])) == len(rec["tags"])
    for fact in rec["key_facts"]:
        assert isinstance(fact, list) and fact, "each key fact is a non-empty list of forms"
        for form in fact:
            assert isinstance(form, str) and normalize(form), f"bad form {form!r}"
    for ev in rec["evidence"]:
        assert isinstance(ev, dict) and set(ev) == {"doc_id", "text"}
        assert isinstance(ev["doc_id"], str) and isinstance(ev["text"], str)
        assert ev["text"].strip()


def test_ids_unique_and_sequential():
    got = ids(RECORDS)
    assert len(got) == len(set(got))
    assert got == [f"q{i:03d}" for i in range(1, len(got) + 1)]


def test_questions_unique():
    questions = [normalize(r["question"]) for r in RECORDS]
    dupes = [q for q, n in Counter(questions).items() if n > 1]
    assert not dupes


# ------------------------------------------------------------------ evidence and facts


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_evidence_is_exact_substring_of_seed(rec):
    for ev in rec["evidence"]:
        assert ev["doc_id"] in SEED_TEXT, f"unknown doc {ev['doc_id']}"
        assert (SEEDS / f"{ev['doc_id']}.txt").is_file()
        assert ev["text"] in SEED_TEXT[ev["doc_id"]], f"not verbatim: {ev['text']!r}"


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_evidence_comes_from_article_body(rec):
    for ev in rec["evidence"]:
        assert ev["text"] in BODIES[ev["doc_id"]], f"evidence in page noise: {ev['text']!r}"


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_key_facts_supported_by_evidence(rec):
    joined = " ".join(ev["text"] for ev in rec["evidence"])
    for fact in rec["key_facts"]:
        assert any(contains(joined, form) for form in fact), f"{fact} not in evidence"


@pytest.mark.parametrize("rec", [r for r in RECORDS if r["answerable"]],
                         ids=ids([r for r in RECORDS if r["answerable"]]))
def test_reference_answer_states_key_facts(rec):
    for fact in rec["key_facts"]:
        assert any(contains(rec["answer"], form) for form in fact), f"{fact} not in answer"


@pytest.mark.parametrize("rec", RECORDS, ids=ids(RECORDS))
def test_answerability_is_consistent(rec):
    unanswerable = "unanswerable" in rec["tags"]
    assert rec["answerable"] is (not unanswerable)
    if unanswerable:
        assert rec["tags"] == ["unanswerable"]
        assert rec["evidence"] == [] and rec["key_facts"] == [] and rec["answer"] == ""
    else:
        assert rec["evidence"] and rec["key_facts"] and rec["answer"].strip()


@pytest.mark.parametrize("rec", [r for r in RECORDS if "multi" in r["tags"]],
                         ids=ids([r for r in RECORDS if "multi" in r["tags"]]))
def test_multi_questions_cite_several_passages(rec):
    spans = {(ev["doc_id"], ev["text"]) for ev in rec["evidence"]}
    assert len(spans) >= 2


# ------------------------------------------------------------------ counts and anchors


def test_counts_per_tag():
    tags = Counter(t for r in RECORDS for t in r["tags"])
    assert len(RECORDS) >= MIN_TOTAL
    assert tags["unanswerable"] >= MIN_UNANSWERABLE
    assert tags["multi"] >= MIN_MULTI
    assert tags["paraphrase"] >= MIN_PARAPHRASE
    assert tags["simple"] >= 1


def test_every_article_is_covered():
    per_doc = Counter(d for r in RECORDS for d in {ev["doc_id"] for ev in r["evidence"]})
    for doc_id in SEED_TEXT:
        assert per_doc[doc_id] >= MIN_PER_ARTICLE, f"{doc_id}: {per_doc[doc_id]}"


def test_canonical_pair():
    by_question = {normalize(r["question"]): r for r in RECORDS}
    meta = by_question[normalize("Combien Meta prévoit-elle de dépenser en IA en 2025 ?")]
    assert meta["answerable"] and ["65 milliards"] in meta["key_facts"]
    assert {ev["doc_id"] for ev in meta["evidence"]} == {"002_dbf84de5b56e379c"}
    tiktok = by_question[normalize("Qui a fondé TikTok ?")]
    assert not tiktok["answerable"]
