"""Reading the model's [n] markers and tying each to the passage and sentence it rests on.

A marker that names a passage the model was not given is removed from the text and
never shown. A small model often cites [1] by habit: `repoint` moves a marker to the
passage that actually holds the answer sentence's words when the cited one holds fewer.
For each kept citation the supporting sentence is the passage sentence sharing the most
terms with the answer sentences that cite it; its offsets point into the cleaned
article, so a citation can highlight the exact span.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.passages import split_sentences
from rag.records import Citation, Hit
from rag.text import terms

# Any marker the model writes: [1]  [1, 2]  [1][3]  [1-2]  [Extrait 2]
MARKER = re.compile(r"\[(?:extraits?\s*)?(\d+(?:\s*[,;et-]+\s*\d+)*)\]", re.IGNORECASE)
# A marker as an answer carries it once `clean_markers` has run: [3]
ONE_MARKER = re.compile(r"\[(\d+)\]")
_SPACED_MARKER = re.compile(r"\s*" + ONE_MARKER.pattern)
# a line holding nothing but markers (and the commas or full stop between them)
_MARKERS_LINE = re.compile(r"[ \t]*\n\s*(?:\[\d+\][ \t,;.]*)+(?=\n|$)")

SENTENCE_BREAK = r"(?<=[.!?])\s+"  # between two sentences of an answer


def strip_markers(text: str) -> str:
    """The answer as it is read and measured: [n] markers out, spaces collapsed."""
    return " ".join(_SPACED_MARKER.sub("", text).split())


def marker_numbers(marker: str) -> list[int]:
    """Numbers inside one marker body: « 1, 3 » -> [1, 3]; « 1-3 » -> [1, 2, 3]."""
    if re.fullmatch(r"\s*\d+\s*-\s*\d+\s*", marker):
        lo, hi = (int(x) for x in marker.split("-"))
        return list(range(lo, hi + 1)) if 0 < hi - lo < 10 else [lo, hi]
    return [int(x) for x in re.findall(r"\d+", marker)]


def cited_numbers(text: str) -> list[int]:
    """All numbers cited in `text`, in order of first appearance."""
    seen: list[int] = []
    for match in MARKER.finditer(text):
        for n in marker_numbers(match.group(1)):
            if n not in seen:
                seen.append(n)
    return seen


def clean_markers(text: str, valid: int) -> str:
    """Rewrite every marker as [a][b] keeping only numbers 1..valid; drop empty ones."""
    def repl(match: re.Match) -> str:
        kept = [n for n in marker_numbers(match.group(1)) if 1 <= n <= valid]
        return "".join(f"[{n}]" for n in dict.fromkeys(kept))

    text = MARKER.sub(repl, text)
    # a line of markers alone (« [1], [2], [3] » under a list) belongs to the line before it
    text = _MARKERS_LINE.sub(lambda m: " " + "".join(f"[{n}]" for n in dict.fromkeys(ONE_MARKER.findall(m.group(0)))), text)
    # « phrase. [1] » -> « phrase [1]. »: a marker belongs to the sentence before it
    text = re.sub(r"([.!?])[ \t]*((?:\[\d+\])+)([.!?]?)", r" \2\1", text)  # « Inc. [1]. » ends once
    return re.sub(r"[ \t]+([.,;!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def repoint(text: str, hits: Sequence[Hit], question: str = "") -> str:
    """Move each answer sentence's markers to the passage that supports it best, when
    the passages it cites support it less well than another one does."""
    out = re.split(f"({SENTENCE_BREAK})", text.strip())  # sentences, with what separates them
    for i, sentence in enumerate(out[::2]):
        numbers = [n for n in cited_numbers(sentence) if 1 <= n <= len(hits)]
        if numbers:
            scores = [support(h.passage.text, sentence, question)[1] for h in hits]
            best = max(range(len(hits)), key=lambda i: scores[i]) + 1
            if scores[best - 1] > max(scores[n - 1] for n in numbers):
                sentence = MARKER.sub("", sentence)
                out[2 * i] = clean_markers(re.sub(r"([.!?]?)$", f" [{best}]\\1", sentence, count=1), len(hits))
    return "".join(out)


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


def supporting_sentence(passage_text: str, claim: str, question: str = "") -> tuple[int, int]:
    """Span of the passage sentence that shares most (weighted) terms with `claim`."""
    return support(passage_text, claim, question)[0]


def support(passage_text: str, claim: str, question: str = "") -> tuple[tuple[int, int], float]:
    """(span, score) of the passage sentence sharing most terms with `claim`. Numbers
    count double (the facts most often asked for); terms the claim merely repeats from
    the question count half (every retrieved passage tends to have them)."""
    wanted = set(terms(MARKER.sub(" ", claim)))
    asked = set(terms(question))
    best, best_score = (0, len(passage_text)), -1.0
    for start, end in split_sentences(passage_text):
        got = wanted & set(terms(passage_text[start:end]))
        score = sum((2.0 if t[0].isdigit() else 1.0) * (0.5 if t in asked else 1.0) for t in got)
        if score > best_score:
            best, best_score = (start, end), score
    return best, best_score


def evidence(text: str, citation: Citation, question: str = "", n: int = 2) -> str:
    """The `n` sentences of a cited passage that best support the answer, in text order:
    what the verifier reads (one sentence alone often lacks its subject)."""
    passage = citation.passage.text
    claim = _citing_text(text, citation.number)
    spans = sorted(split_sentences(passage),
                   key=lambda sp: -support(passage[sp[0]:sp[1]], claim, question)[1])[:n]
    return " ".join(passage[a:b] for a, b in sorted(spans))


def _answer_sentences(text: str) -> list[str]:
    return re.split(SENTENCE_BREAK, text.strip())


def _citing_text(text: str, n: int) -> str:
    """The answer sentences that carry marker n (the whole answer if none is found)."""
    citing = [s for s in _answer_sentences(text) if n in cited_numbers(s)]
    return " ".join(citing) or text
