"""What the model reads: short extracts around the retrieved passages, not whole pages.

A small model answers best from little, focused text, and a retrieval unit small enough
to match one fact (a sentence or two) is too small to read alone: « Il a payé 44
milliards » needs the sentence before it to say who. So each retrieved passage is
widened by `window` sentences on each side within its article, extracts that overlap or
touch are merged (one article's story is read once, in order), and each extract keeps
its article's title. Extracts are ordinary passages with offsets into the cleaned
article, so citations, the chat's cards and the eval treat them like any passage.
Before that, with dense retrieval, a passage much less similar to the question than the
best one is dropped (`max_gap`): the best passages are read, the stragglers that only fill
k are not. Fused retrieval is left whole: BM25 is there to bring what dense similarity
ranks low (with USE, the gap cost fused retrieval evidence: README).
Sizes, gap and windows were chosen on the dev split (bench/context_quality.py, README).
"""

from __future__ import annotations

from typing import Callable, Sequence

from rag.passages import split_sentences
from rag.records import Article, Hit, Passage


def close_to_best(hits: Sequence[Hit], max_gap: float) -> list[Hit]:
    """The hits whose embedding similarity to the question is at most `max_gap` below the
    most similar one's, in their order. A hit without a dense score (BM25's alone) has no
    gap to measure and stays."""
    scores = [h.dense for h in hits if h.dense is not None]
    if not scores:
        return list(hits)
    best = max(scores)
    return [h for h in hits if h.dense is None or best - h.dense <= max_gap]


def extracts(hits: Sequence[Hit], article: Callable[[str], Article], window: int = 1) -> list[Hit]:
    """The hits widened by `window` sentences each side and merged within an article, grouped
    by article (the article of the best hit first) and in text order within one, so that the
    model reads an article's extracts together, as its story runs."""
    spans: dict[str, list[tuple[int, int, Hit]]] = {}
    for hit in hits:
        text = article(hit.passage.doc_id).text
        start, end = widen(text, hit.passage.start, hit.passage.end, window)
        spans.setdefault(hit.passage.doc_id, []).append((start, end, hit))
    # `spans` lists the articles in the order of their best hit (hits come best first)
    return [extract for doc_id, found in spans.items() for extract in _merge(found, article(doc_id))]


def widen(text: str, start: int, end: int, window: int) -> tuple[int, int]:
    """[start, end) grown to whole sentences, plus `window` sentences before and after."""
    if window <= 0:  # the default: no need to split the article
        return start, end
    sentences = split_sentences(text)
    if not sentences:
        return start, end
    first = next((i for i, (_, e) in enumerate(sentences) if e > start), len(sentences) - 1)
    last = max((i for i, (s, _) in enumerate(sentences) if s < end), default=first)
    first, last = max(0, first - window), min(len(sentences) - 1, last + window)
    return min(start, sentences[first][0]), max(end, sentences[last][1])


def _merge(found: list[tuple[int, int, Hit]], article: Article) -> list[Hit]:
    """One extract for each run of overlapping or adjacent spans of one article, in text order
    (it scores as its best hit)."""
    runs: list[list] = []
    for start, end, hit in sorted(found, key=lambda f: f[0]):
        if runs and start <= runs[-1][1] + 2:  # touching: only a space or a line break between
            runs[-1][1] = max(runs[-1][1], end)
            runs[-1][2].append(hit)
        else:
            runs.append([start, end, [hit]])
    out = []
    for start, end, members in runs:
        best = max(members, key=lambda h: h.score)
        passage = Passage(f"{article.doc_id}#{start}-{end}", article.doc_id, article.title, start, end,
                          article.text[start:end])
        out.append(Hit(passage, best.score, best.dense, best.bm25))
    return out
