"""Reading the model's [n] markers and tying each to the passage and sentence it rests on.

A marker that names a passage the model was not given is removed from the text and
never shown. For each kept citation the supporting sentence is the passage sentence
sharing the most terms with the answer sentences that cite it; its offsets point into
the cleaned article, so a citation can highlight the exact span.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.passages import split_sentences
from rag.records import Citation, Hit
from rag.text import terms

# [1]  [1, 2]  [1][3]  [1-2]  [Extrait 2]
_MARKER = re.compile(r"\[(?:extraits?\s*)?(\d+(?:\s*[,;et-]+\s*\d+)*)\]", re.IGNORECASE)


def marker_numbers(marker: str) -> list[int]:
    """Numbers inside one marker body: « 1, 3 » -> [1, 3]; « 1-3 » -> [1, 2, 3]."""
    if re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", marker):
        lo, hi = (int(x) for x in marker.split("-"))
        return list(range(lo, hi + 1)) if 0 < hi - lo < 10 else [lo, hi]
    return [int(x) for x in re.findall(r"\d+", marker)]


def cited_numbers(text: str) -> list[int]:
    """All numbers cited in `text`, in order of first appearance."""
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        for n in marker_numbers(match.group(1)):
            if n not in seen:
                seen.append(n)
    return seen


def clean_markers(text: str, valid: int) -> str:
    """Rewrite every marker as [a][b] keeping only numbers 1..valid; drop empty ones."""
    def repl(match: re.Match) -> str:
        kept = [n for n in marker_numbers(match.group(1)) if 1 <= n <= valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    text = _MARKER.sub(repl, text)
    # « phrase. [1] » -> « phrase [1]. »: a marker belongs to the sentence before it
    text = re.sub(r"([.!?])[ \t]*((?:\[\d+\])+)", r" \2\1", text)
    return re.sub(r"[ \t]+([.,;!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def resolve(text: str, hits: Sequence[Hit]) -> tuple[Citation, ...]:
    """Citations for the valid markers of an already cleaned answer text."""
    out = []
    for n in cited_numbers(text):
        if 1 <= n <= len(hits):
            passage = hits[n - 1].passage
            start, end = supporting_sentence(passage.text, _citing_text(text, n))
            quote = passage.text[start:end]
            offset = passage.start
            out.append(Citation(n, passage, quote, offset + start, offset + end))
    return tuple(out)


def supporting_sentence(passage_text: str, claim: str) -> tuple[int, int]:
    """Span of the passage sentence that shares most (weighted) terms with `claim`."""
    wanted = set(terms(claim))
    best, best_score = (0, len(passage_text)), -1.0
    for start, end in split_sentences(passage_text):
        got = set(terms(passage_text[start:end]))
        # numbers are the facts most often asked for: they count double
        score = sum(2.0 if t[0].isdigit() else 1.0 for t in wanted & got)
        if score > best_score:
            best, best_score = (start, end), score
    return best


def _citing_text(text: str, n: int) -> str:
    """The answer sentences that carry marker n (the whole answer if none is found)."""
    sentences = re.split(r"(?<=[.!?])\s+", text)
    citing = [s for s in sentences if n in cited_numbers(s)]
    return " ".join(citing) or text
