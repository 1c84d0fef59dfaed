"""BM25 with bm25s: built with the index, saved in the build folder, memory-mapped at start.

How text becomes terms (the same for passages and questions) is the analyzer:
- "terms": rag.text.terms, accent folding, French stopwords, a light plural stemmer;
- "snowball": bm25s's own tokenizer (lowercase, words of 2+ letters), its French
  stopwords and PyStemmer's French Snowball stemmer, accents kept;
- "snowball-folded": rag.text's folded words and stopwords, then Snowball.
The default is the one that retrieved best on the reference questions
(bench/retrieval_quality.py, README « The index »). Scores are Okapi BM25 with k1 = 1.2,
b = 0.75 and Lucene's idf, the formula of the in-house BM25 this replaced. bm25s keeps the
term x passage scores as sparse arrays (.npy) that load memory-mapped: start-up reads the
vocabulary only, and a question touches the pages of its own terms.
Left out: phrase and fuzzy queries, changing a saved index in place (a build rewrites it).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from rag.text import STOPWORDS, terms, words

ANALYZER = "snowball-folded"  # best on the dev questions, with or without accents (README « The index »)
K1, B = 1.2, 0.75
FOLDER = "bm25"
_BM25S_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s.tokenize's default pattern


@functools.lru_cache(maxsize=1)
def _snowball():
    import Stemmer

    return Stemmer.Stemmer("french").stemWords


@functools.lru_cache(maxsize=1)
def _bm25s_stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_FRENCH

    return frozenset(STOPWORDS_FRENCH)


def _snowball_terms(text: str) -> list[str]:
    stop = _bm25s_stopwords()
    return _snowball()([w for w in _BM25S_WORD.findall(text.lower()) if w not in stop])


def _snowball_folded_terms(text: str) -> list[str]:
    return _snowball()([w for w in words(text) if w not in STOPWORDS])


ANALYZERS: dict[str, Callable[[str], list[str]]] = {
    "terms": terms, "snowball": _snowball_terms, "snowball-folded": _snowball_folded_terms}


def analyze(text: str, analyzer: str = ANALYZER) -> list[str]:
    return ANALYZERS[analyzer](text)


def build_bm25(texts: Iterable[str], folder: Path, analyzer: str = ANALYZER) -> None:
    """Index `texts` (passage rows, in order) and save the index into folder/bm25."""
    import bm25s

    model = bm25s.BM25(k1=K1, b=B, method="lucene")
    model.index([analyze(t, analyzer) for t in texts], show_progress=False)
    model.save(str(folder / FOLDER), show_progress=False)


class Bm25Index:
    """A saved BM25 index: scores of every passage row for a question, and the top ones."""

    def __init__(self, model, analyzer: str):
        self.model, self.analyzer = model, analyzer

    @classmethod
    def load(cls, folder: Path, analyzer: str = ANALYZER) -> "Bm25Index":
        import bm25s

        model = bm25s.BM25.load(str(folder / FOLDER), mmap=True, show_progress=False)
        return cls(model, analyzer)

    def __len__(self) -> int:
        return int(self.model.scores["num_docs"])

    def scores(self, query: str, mask: np.ndarray | None = None) -> np.ndarray:
        """BM25 of every row (0 for rows `mask` leaves out)."""
        ids = self.model.get_tokens_ids(analyze(query, self.analyzer))
        if not ids:
            return np.zeros(len(self), dtype=np.float32)
        return self.model.get_scores_from_ids(ids, weight_mask=mask)

    def top(self, query: str, n: int, mask: np.ndarray | None = None) -> dict[int, float]:
        """{row: score} of the n best rows with a positive score, best first (ties: lower row)."""
        return top_rows(self.scores(query, mask), n)


def top_rows(scores: np.ndarray, n: int) -> dict[int, float]:
    """The n highest positive scores, best first, ties broken by row as a stable sort
    would, without sorting every row."""
    rows = np.flatnonzero(scores > 0)
    if len(rows) > n:
        values = scores[rows]
        kth = np.partition(values, len(values) - n)[len(values) - n]
        above = rows[values > kth]
        rows = np.concatenate([above, rows[values == kth][: n - len(above)]])
    order = rows[np.lexsort((rows, -scores[rows]))]
    return {int(i): float(scores[i]) for i in order}
