"""The small immutable values that travel between the stages of the pipeline.

Articles become passages, passages become hits, hits become an answer. Each stage
takes and returns these records; none of them knows about models or files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Article:
    doc_id: str  # file stem, e.g. "002_dbf84de5b56e379c"
    path: str  # file name inside the corpus folder
    title: str
    date: str | None
    text: str  # cleaned body; passage offsets point into this string
    sha256: str  # of the raw file bytes, to detect changes


@dataclass(frozen=True)
class Passage:
    id: str  # stable: "<doc_id>#<start>-<end>"
    doc_id: str
    title: str
    start: int  # character offsets into Article.text
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    passage: Passage
    score: float  # the score the ranking used (fused, dense or bm25)
    dense: float | None = None
    bm25: float | None = None


@dataclass(frozen=True)
class Citation:
    number: int  # the [n] the model wrote
    passage: Passage
    quote: str  # the sentence of the passage that best supports the answer
    quote_start: int  # offsets of the quote into the article text
    quote_end: int


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    refused: bool
    citations: tuple[Citation, ...]
    passages: tuple[Hit, ...]  # what the model was given, numbered from 1
    timings: dict = field(default_factory=dict)  # seconds: retrieval, first_token, total
    tokens: int = 0
    models: dict = field(default_factory=dict)  # role -> model name
    raw: str = ""  # what the model wrote, before parsing and checks
    checks: dict = field(default_factory=dict)  # what the checks saw and decided (see pipeline)


def answer_json(answer: Answer) -> dict:
    """An answer as plain data: `rag ask --json`, and what batch records and the API's
    answer are made of (each changes or adds a few fields)."""
    return {
        "question": answer.question, "answer": answer.text, "refused": answer.refused, "error": None,
        "citations": [citation_json(c) for c in answer.citations],
        "passages": [asdict(h.passage) | {"score": float(h.score)} for h in answer.passages],
        "models": answer.models,
        "checks": answer.checks,  # every verdict and the signals behind them (rag/checks.py)
        "timings": answer.timings, "tokens": answer.tokens,
    }


def citation_json(c: Citation) -> dict:
    """A citation as plain data, the same in `rag ask --json`, batch records and the API."""
    return {
        "number": c.number, "passage_id": c.passage.id, "doc_id": c.passage.doc_id,
        "title": c.passage.title, "span": [c.quote_start, c.quote_end], "quote": c.quote,
        "passage_span": [c.passage.start, c.passage.end], "passage_text": c.passage.text,
    }
