"""Splitting cleaned articles into sentences and passages with exact character offsets.

Sentences end at . ! ? … followed by a space and a capital (or a quote, a digit), and
at every paragraph break. They do not end after French abbreviations (« M. Zuckerberg »,
« Mme », « p. 12 »), after an initial (« Stephen L. Carter »), inside a number
(« 4.4/5 »), or inside a « … » quotation. Passages are runs of whole sentences up to
`max_chars`, the last `overlap` sentences repeated at the start of the next one, so a
fact that straddles two passages is whole in one of them.
"""

from __future__ import annotations

import re

from rag.records import Article, Passage

ABBREVIATIONS = frozenset(
    """m mm mme mmes mlle mlles dr pr st ste p pp n no vol chap fig cf env av apr j.-c
    éd coll trad hab tél bd inc corp ltd vs sr jr""".split()
)
_END = re.compile(r"[.!?…]+[»\")]*(?=\s)")
_NEXT_START = re.compile(r"\s+[«\"(]?\s*[A-ZÀ-ÝÉÈ0-9•]")
QUOTE_MAX_CHARS = 600  # an unclosed « longer than this is not a quotation we protect


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`, whitespace excluded."""
    spans: list[tuple[int, int]] = []
    for p_start, p_end in _paragraphs(text):
        start = p_start
        for cut in _sentence_ends(text, p_start, p_end):
            spans.append((start, cut))
            start = _skip_space(text, cut, p_end)
        if start < p_end:
            spans.append((start, p_end))
    return spans


def split_passages(article: Article, max_chars: int = 600, overlap: int = 1) -> list[Passage]:
    """Whole sentences packed into passages of at most `max_chars` (a longer sentence
    stands alone), consecutive passages sharing `overlap` sentences."""
    sentences = split_sentences(article.text)
    passages: list[Passage] = []
    i = 0
    while i < len(sentences):
        j = i + 1
        while j < len(sentences) and sentences[j][1] - sentences[i][0] <= max_chars:
            j += 1
        start, end = sentences[i][0], sentences[j - 1][1]
        passages.append(Passage(
            id=f"{article.doc_id}#{start}-{end}", doc_id=article.doc_id, title=article.title,
            start=start, end=end, text=article.text[start:end],
        ))
        if j >= len(sentences):
            break
        i = max(i + 1, j - overlap)
    return passages


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans = []
    for m in re.finditer(r"[^\n]+", text):
        s, e = m.start(), m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            spans.append((s, e))
    return spans


def _sentence_ends(text: str, start: int, end: int):
    depth_opened_at = None  # offset of an open « quotation
    pos = start
    for m in _END.finditer(text, start, end):
        # track « » between the previous candidate and this one
        segment = text[pos:m.end()]
        for offset, char in enumerate(segment):
            if char == "«":
                depth_opened_at = pos + offset
            elif char == "»":
                depth_opened_at = None
        pos = m.end()
        if depth_opened_at is not None and m.end() - depth_opened_at < QUOTE_MAX_CHARS:
            continue
        if not _NEXT_START.match(text, m.end(), end):
            continue
        if text[m.start()] == "." and _is_abbreviation(text, m.start()):
            continue
        yield m.end()


def _is_abbreviation(text: str, dot: int) -> bool:
    word = re.search(r"([\w.-]+)$", text[max(0, dot - 12):dot])
    if not word:
        return False
    token = word.group(1)
    if len(token) == 1 and token.isupper():  # an initial: « Stephen L. Carter »
        return True
    return token.lower() in ABBREVIATIONS


def _skip_space(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos].isspace():
        pos += 1
    return pos
