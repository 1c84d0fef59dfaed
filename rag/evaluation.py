"""Scoring against the reference questions in eval/reference.jsonl.

Retrieval: recall@k and MRR, where a passage « holds » an evidence span when the span's
words appear in it (after folding) — evidence is quoted from the raw files, passages
come from the cleaned text, so the comparison is on normalised words, not characters.
Answers: key facts present (every fact, any of its surface forms). More answer metrics
(EM/F1, citations, refusals, speed) belong to `rag eval` (issue 4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from rag.errors import RagError
from rag.records import Passage
from rag.text import words

KS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Reference:
    id: str
    question: str
    answer: str
    answerable: bool
    key_facts: tuple[tuple[str, ...], ...]
    evidence: tuple[tuple[str, str], ...]  # (doc_id, text)
    tags: tuple[str, ...]


def load_reference(path: Path) -> list[Reference]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            out.append(Reference(
                r["id"], r["question"], r["answer"], bool(r["answerable"]),
                tuple(tuple(f) for f in r["key_facts"]),
                tuple((e["doc_id"], e["text"]) for e in r["evidence"]), tuple(r["tags"]),
            ))
        except (ValueError, KeyError, TypeError) as exc:
            raise RagError(f"{path}, ligne {n} : entrée invalide ({exc})") from None
    return out


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


def retrieval_scores(refs: Sequence[Reference], search: Callable[[str], list[Passage]]) -> dict:
    """recall@k (share of evidence spans found in the top k, averaged) and MRR."""
    answerable = [r for r in refs if r.evidence]
    recall = {k: 0.0 for k in KS}
    mrr = 0.0
    for ref in answerable:
        ranked = search(ref.question)
        for k in KS:
            found = [any(holds(p, d, e) for p in ranked[:k]) for d, e in ref.evidence]
            recall[k] += sum(found) / len(found)
        first = next((i for i, p in enumerate(ranked, 1) if any(holds(p, d, e) for d, e in ref.evidence)), None)
        mrr += 1 / first if first else 0.0
    n = max(len(answerable), 1)
    return {**{f"recall@{k}": recall[k] / n for k in KS}, "mrr": mrr / n, "questions": len(answerable)}


def has_key_facts(answer: str, facts: Sequence[Sequence[str]]) -> bool:
    """Every fact present in the answer in at least one of its forms (folded words)."""
    text = _norm(answer)
    return all(any(_norm(form) in text for form in forms) for forms in facts)



def score_answer(ref: Reference, answer: str, refused: bool, cited: Sequence[Passage]) -> dict:
    """One question's verdicts: key facts, evidence cited, right or wrong refusal."""
    row = {"id": ref.id, "answerable": ref.answerable, "refused": refused}
    if not ref.answerable:
        return row | {"correct": refused}
    facts = has_key_facts(answer, ref.key_facts) and not refused
    cites = not refused and any(holds(p, d, e) for p in cited for d, e in ref.evidence)
    return row | {"key_facts": facts, "cites_evidence": cites, "correct": facts}


def summary(rows: Sequence[dict]) -> dict:
    """The headline rates over scored rows (see score_answer)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in answerable if not r["refused"]]

    def share(items, key):
        return sum(bool(r[key]) for r in items) / len(items) if items else 0.0

    return {
        "questions": len(rows),
        "key_facts": share(answerable, "key_facts"),
        "cites_evidence": share(answered, "cites_evidence"),
        "refusal_recall": share(unanswerable, "refused"),
        "wrong_refusals": share(answerable, "refused"),
    }
