"""Scoring answers against the reference questions in eval/reference.jsonl.

A passage « holds » an evidence span when the span's words appear in it (after
folding): evidence is quoted from the raw files, passages come from the cleaned text,
so the comparison is on normalised words, not characters. On that ground:
- retrieval: recall@k (share of a question's evidence spans in the top k) and MRR;
- answers: exact match and token F1 after FQuAD-style French normalisation, and the key
  facts (every fact, in any of its forms). Strict key facts, the headline and the
  `correct` verdict, count only in a short answer (at most 300 characters once its [n]
  markers are out) and only in its first two sentences: otherwise pasting whole passages
  would « find » the facts. The lenient figure (anywhere, any length) is kept to compare;
- citations, ALCE-style at passage level: precision is the share of an answer's cited
  passages that hold an evidence span, averaged over the answers that cite something;
  recall is the share of its evidence spans held by a cited passage, and « cites
  evidence » whether there is one, both averaged over every answerable question (a
  refusal or a failure cites nothing and scores 0);
- refusals: precision and recall on the unanswerable questions, wrong refusals;
- language: a French-or-not guess from function words (see `language`);
- speed: p50/p95 of time to first token and total time, tokens per second;
- the same figures by tag (the kinds of questions), and for trivial baselines that use no
  language model (`BASELINES`), scored by the same functions as the app's answers.
A failed question (its record has an error) counts as neither answered nor refused.
Reference records may name a `split` (« dev » to tune on, « test » to report); those
without one are only in « all ». Running the questions and writing the report is
rag/report.py's job.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rag.citations import strip_markers
from rag.errors import RagError
from rag.passages import split_sentences
from rag.pipeline import REFUSAL
from rag.records import Passage
from rag.text import fold, terms, words

KS = (1, 3, 5, 10)
SPLITS = ("dev", "test")  # « all » is every question, with a split or not
SHORT_ANSWER_CHARS = 300  # longer answers score no strict key fact
KEY_FACT_SENTENCES = 2  # strict key facts are looked for in this many first sentences
BASELINE_PASSAGES = 3  # top BM25 passages the sentence baseline picks from


@dataclass(frozen=True)
class Reference:
    id: str
    question: str
    answer: str
    answerable: bool
    key_facts: tuple[tuple[str, ...], ...]
    evidence: tuple[tuple[str, str], ...]  # (doc_id, text)
    tags: tuple[str, ...]
    split: str | None = None  # « dev », « test », or None (older files): only in « all »


def load_reference(path: Path) -> list[Reference]:
    """The reference questions of a .jsonl file, or a RagError naming the bad line."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(_reference(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}, ligne {n} : entrée invalide ({exc})") from None
    return out


def _reference(r: dict) -> Reference:
    split = r.get("split")
    if split is not None and split not in SPLITS:
        raise ValueError(f"« split » vaut {split!r}, attendu : {', '.join(SPLITS)}")
    return Reference(r["id"], r["question"], r["answer"], bool(r["answerable"]),
                     tuple(tuple(f) for f in r["key_facts"]),
                     tuple((e["doc_id"], e["text"]) for e in r["evidence"]), tuple(r["tags"]), split)


def in_split(refs: Sequence[Reference], split: str) -> list[Reference]:
    """The references of `split` (« all »: every one). Settings are tuned on « dev » and
    reported on « test », so a figure is not flattered by the questions it was tuned on."""
    if split == "all":
        return list(refs)
    if split not in SPLITS:
        raise RagError(f"Partie inconnue « {split} » (attendu : all, {', '.join(SPLITS)}).")
    return [r for r in refs if r.split == split]


def _norm(text: str) -> str:
    return " " + " ".join(words(text)) + " "


def holds(passage: Passage, doc_id: str, evidence: str, min_cover: float = 0.8) -> bool:
    """Does the passage contain the evidence span (or most of its words, if it is cut)?"""
    if passage.doc_id != doc_id:
        return False
    ev, text = _norm(evidence), _norm(passage.text)
    if ev in text:
        return True
    ev_words = ev.split()
    return sum(w in text.split() for w in ev_words) / max(len(ev_words), 1) >= min_cover


# ------------------------------------------------------------------ retrieval


def evidence_found(ref: Reference, ranked: Sequence[Passage]) -> dict:
    """One question: recall@k for each k, and the rank of the first passage holding any
    of its evidence spans (None when none of `ranked` does)."""
    row = {}
    for k in KS:
        found = [any(holds(p, d, e) for p in ranked[:k]) for d, e in ref.evidence]
        row[f"recall@{k}"] = sum(found) / len(found)
    row["rank"] = next((i for i, p in enumerate(ranked, 1)
                        if any(holds(p, d, e) for d, e in ref.evidence)), None)
    return row


def retrieval_summary(rows: Sequence[dict]) -> dict:
    """recall@k averaged over questions, and MRR (a question found nowhere scores 0)."""
    n = max(len(rows), 1)
    recall = {f"recall@{k}": sum(r[f"recall@{k}"] for r in rows) / n for k in KS}
    return recall | {"mrr": sum(1 / r["rank"] for r in rows if r["rank"]) / n, "questions": len(rows)}


def retrieval_scores(refs: Sequence[Reference], search: Callable[[str], list[Passage]]) -> dict:
    """recall@k and MRR of `search` over the questions that have evidence."""
    return retrieval_summary([evidence_found(r, search(r.question)) for r in refs if r.evidence])


# ------------------------------------------------------------------ answers

# FQuAD's normalisation, with the articles the issue lists; l' and d' become « l », « d »
_ARTICLES = frozenset("le la les l un une des du de d".split())
answer_text = strip_markers  # the answer as it is read and measured


def normalize_answer(text: str) -> str:
    """Lowercase, no accents, punctuation to spaces, articles out, single spaces."""
    text = re.sub(r"[^\w\s]|_", " ", fold(text))
    return " ".join(w for w in text.split() if w not in _ARTICLES)


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall on normalised words (SQuAD's F1)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def has_key_facts(answer: str, facts: Sequence[Sequence[str]]) -> bool:
    """Every fact present in the answer in at least one of its forms (folded words)."""
    text = _norm(answer)
    return all(any(_norm(form) in text for form in forms) for forms in facts)


def has_key_facts_strict(answer: str, facts: Sequence[Sequence[str]]) -> bool:
    """`has_key_facts` in a short answer's first sentences only (see the module docstring):
    a long answer, or a fact buried after them, does not count."""
    text = answer_text(answer)
    if len(text) > SHORT_ANSWER_CHARS:
        return False
    spans = split_sentences(text)[:KEY_FACT_SENTENCES]
    return has_key_facts(text[: spans[-1][1]] if spans else "", facts)


def citation_scores(ref: Reference, cited: Sequence[Passage]) -> tuple[float | None, float]:
    """(precision, recall) of one answer's citations; precision is None with no citation."""
    passages = list({p.id: p for p in cited}.values())
    holding = [any(holds(p, d, e) for d, e in ref.evidence) for p in passages]
    found = [any(holds(p, d, e) for p in passages) for d, e in ref.evidence]
    return (sum(holding) / len(holding) if holding else None), sum(found) / max(len(found), 1)


# Function words of one language and not the other (folded; « a », « on », « as » are both)
_FRENCH = frozenset("""le la les un une des du de et est sont dans pour que qui sur au aux
    avec par pas ne il elle ils elles son sa ses ce cette ces leur ete etre""".split())
_ENGLISH = frozenset("""the of and is are was were to in for that with by it its this these
    be has have an from not which will would""".split())


def language(text: str) -> str:
    """« fr », « en », « other » (mostly non-Latin letters) or « ? » (cannot tell).

    No model, no network: French when the answer holds more French function words than
    English ones. A bare name or figure has neither and is « ? »; other Latin-script
    languages come out « fr » or « ? », which is fine for catching a model that drifts
    into English or Chinese.
    """
    letters = [c for c in text if c.isalpha()]
    if sum("LATIN" in unicodedata.name(c, "") for c in letters) < len(letters) / 2:
        return "other"
    found = words(text)
    fr, en = sum(w in _FRENCH for w in found), sum(w in _ENGLISH for w in found)
    return "fr" if fr > en else "en" if en > fr else "?"


# ------------------------------------------------------------------ one question, all questions


def score_answer(ref: Reference, answer: str, refused: bool, cited: Sequence[Passage],
                 error: str | None = None) -> dict:
    """One question's verdicts (citation markers [n] are taken out of the text first).
    An answerable question refused or failed cites nothing: recall 0, precision None."""
    answered = not refused and not error
    row = {"id": ref.id, "tags": list(ref.tags), "answerable": ref.answerable, "refused": refused,
           "error": error, "language": language(answer) if answered else None}
    if not ref.answerable:
        return row | {"correct": refused}
    text = answer_text(answer) if answered else ""
    precision, recall = citation_scores(ref, cited) if answered else (None, 0.0)
    facts = answered and has_key_facts_strict(text, ref.key_facts)
    return row | {"exact_match": exact_match(text, ref.answer), "f1": token_f1(text, ref.answer),
                  "key_facts": facts, "key_facts_lenient": answered and has_key_facts(text, ref.key_facts),
                  "cites_evidence": bool(recall), "citation_precision": precision,
                  "citation_recall": recall, "correct": facts}


def score_record(ref: Reference, record: dict) -> dict:
    """`score_answer` on a `rag batch` record (rag/batch.py), with its timings."""
    cited = [Passage(c["passage_id"], c["doc_id"], c["title"], *c["passage_span"], c["passage_text"])
             for c in record["citations"]]
    row = score_answer(ref, record["answer"], record["refused"], cited, record["error"])
    t = record["timings"]
    generation = (t["total"] - t["first_token"] - t.get("checks", t.get("verify", 0.0))
                  if "total" in t and "first_token" in t else None)
    return {"id": ref.id, "question": ref.question, "tags": list(ref.tags), "answer": record["answer"]} | row | {
        "first_token": t.get("first_token"), "total": t.get("total"), "tokens": record["tokens"],
        "generation": generation}


def summary(rows: Sequence[dict]) -> dict:
    """Every figure over the app's scored rows: `answer_summary` and the speed."""
    return answer_summary(rows) | {"speed": speed(rows)}


def answer_summary(rows: Sequence[dict]) -> dict:
    """Every answer figure over scored rows, by section (see the module docstring)."""
    answerable = [r for r in rows if r["answerable"]]
    refused = [r for r in rows if r["refused"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    judged = [r["language"] for r in rows if r["language"] not in (None, "?")]
    return {
        "questions": len(rows),
        "errors": sum(bool(r["error"]) for r in rows),
        "answers": {"exact_match": _mean(r["exact_match"] for r in answerable),
                    "f1": _mean(r["f1"] for r in answerable),
                    "key_facts": _mean(r["key_facts"] for r in answerable),
                    "key_facts_lenient": _mean(r["key_facts_lenient"] for r in answerable),
                    "questions": len(answerable)},
        "citations": citation_summary(answerable),
        "refusals": {"precision": _mean(not r["answerable"] for r in refused),
                     "recall": _mean(r["refused"] for r in unanswerable),
                     "wrong_refusals": _mean(r["refused"] for r in answerable),
                     "unanswerable": len(unanswerable)},
        "language": {"french": _mean(lang == "fr" for lang in judged), "judged": len(judged)},
        "by_tag": by_tag(rows),
    }


def citation_summary(answerable: Sequence[dict]) -> dict:
    """Recall and « cites evidence » over every answerable question (what a user asking
    all of them gets); precision over the answers that cite something (`citing`)."""
    citing = [r for r in answerable if r["citation_precision"] is not None]
    return {"precision": _mean(r["citation_precision"] for r in citing),
            "recall": _mean(r["citation_recall"] for r in answerable),
            "cites_evidence": _mean(r["cites_evidence"] for r in answerable),
            "questions": len(answerable), "citing": len(citing)}


def by_tag(rows: Sequence[dict]) -> dict[str, dict]:
    """Key facts (over the answerable questions) and share refused, for each tag: the
    kinds of questions say more than single ones. A row counts under each of its tags."""
    out = {}
    for tag in sorted({t for r in rows for t in r["tags"]}):
        tagged = [r for r in rows if tag in r["tags"]]
        answerable = [r for r in tagged if r["answerable"]]
        out[tag] = {"questions": len(tagged), "answerable": len(answerable),
                    "key_facts": _mean(r["key_facts"] for r in answerable),
                    "key_facts_lenient": _mean(r["key_facts_lenient"] for r in answerable),
                    "refused": _mean(r["refused"] for r in tagged)}
    return out


# ------------------------------------------------------------------ trivial baselines


def passage_baseline(question: str, passages: Sequence[Passage]) -> tuple[str, bool, list[Passage]]:
    """The top passage pasted as the answer, citing it: retrieval alone, no reading."""
    if not passages:
        return REFUSAL, True, []
    return f"{passages[0].text} [1]", False, [passages[0]]


def sentence_baseline(question: str, passages: Sequence[Passage]) -> tuple[str, bool, list[Passage]]:
    """The sentence sharing most terms with the question (`best_sentence`), quoted, citing
    its passage: the cheapest extractive reader."""
    best = best_sentence(question, passages)
    if best is None:
        return REFUSAL, True, []
    sentence, passage = best
    return f"{sentence} [1]", False, [passage]


def refusal_baseline(question: str, passages: Sequence[Passage]) -> tuple[str, bool, list[Passage]]:
    """Every question refused: what the refusal figures are worth on their own."""
    return REFUSAL, True, []


BASELINES = {"bm25-passage": passage_baseline, "bm25-sentence": sentence_baseline,
             "refuse-all": refusal_baseline}


def best_sentence(question: str, passages: Sequence[Passage]) -> tuple[str, Passage] | None:
    """(sentence, its passage) with the most distinct question terms (rag.text.terms);
    on a tie the earlier one, so the better-ranked passage. None without passages."""
    wanted = set(terms(question))
    sentences = [(p.text[s:e], p) for p in passages for s, e in split_sentences(p.text)]
    if not sentences:
        return None
    return max(sentences, key=lambda item: len(wanted & set(terms(item[0]))))


def baseline_rows(refs: Sequence[Reference], search: Callable[[str], list[Passage]]) -> dict[str, list[dict]]:
    """Each baseline's rows, scored by `score_answer` like the app's; `search` gives a
    question's top BM25 passages (asked once per question, shared by the baselines)."""
    found = {r.id: search(r.question) for r in refs}
    out = {}
    for name, answer in BASELINES.items():
        made = {r.id: answer(r.question, found[r.id]) for r in refs}
        out[name] = [{"id": r.id, "answer": made[r.id][0]} | score_answer(r, *made[r.id]) for r in refs]
    return out


# ------------------------------------------------------------------ speed


def speed(rows: Sequence[dict]) -> dict:
    """Seconds to first token and in all, p50 and p95; tokens per second of generation
    (generated tokens over the time from first token to end, the check by the model left out)."""
    ok = [r for r in rows if not r["error"]]
    first = [r["first_token"] for r in ok if r["first_token"] is not None]
    total = [r["total"] for r in ok if r["total"] is not None]
    timed = [r for r in ok if r["tokens"] and r["generation"] and r["generation"] > 0]
    return {"first_token_p50": percentile(first, 50), "first_token_p95": percentile(first, 95),
            "total_p50": percentile(total, 50), "total_p95": percentile(total, 95),
            "tokens_per_second": (sum(r["tokens"] for r in timed) / sum(r["generation"] for r in timed)
                                  if timed else None)}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile, interpolating linearly between ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(values: Iterable) -> float | None:
    """Mean of the values that are not None (booleans count 1/0); None when there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
