"""One question in, one cited answer out: retrieval, prompt, generation, checks.

`Pipeline.stream()` yields the answer's text pieces as the model writes them, then the
final, checked `Answer` (whose text may differ from the pieces: show `Answer.text`);
`ask()` is the same without the pieces. Before the model writes, its probability of
opening with the refusal is read when `max_p_refuse` or a calibration run needs it (one
prompt evaluation the generation then reuses); after, the checks of rag/checks.py run in
their order and `Answer.checks` records each verdict. What a small model needs to be
usable lives there, not here.
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Iterator

from rag import checks, citations
from rag.embedding import get_embedder
from rag.errors import RagError
from rag.evidence import close_to_best, extracts
from rag.llms import LLM, get_llm
from rag.index import Index, ensure_index
from rag.prompts import render
from rag.records import Answer, Hit
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.text import terms

REFUSAL = checks.REFUSAL
_log = logging.getLogger(__name__)


class Pipeline:
    """Holds the index, retriever and model for the life of the process."""

    def __init__(self, settings: Settings, index: Index | None = None, llm: LLM | None = None,
                 log=_log.info):
        self.settings = settings
        self.index = index or ensure_index(settings, log=log)
        self._llm = llm
        self._retriever: Retriever | None = None

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            self._llm = get_llm(self.settings)
        return self._llm

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever.from_index(self.index, get_embedder(self.settings), self.settings.diversify)
        return self._retriever

    def with_settings(self, settings: Settings) -> "Pipeline":
        """A pipeline for other per-question options (k, temperature, model...) that
        shares this one's index and retriever, and its model when it is the same one."""
        other = Pipeline(settings, index=self.index,
                         llm=self._llm if settings.llm == self.settings.llm else None)
        if settings.embedder == self.settings.embedder:
            other._retriever = self.retriever
        return other

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        s = self.settings
        return self.retriever.search(question, k or s.k, s.retrieval, s.candidates, s.bm25_weight)

    def read(self, question: str) -> list[Hit]:
        """What the model reads: the retrieved passages (with dense retrieval, those close
        enough to the best one) widened into extracts (rag/evidence.py)."""
        hits = self.retrieve(question)
        if self.settings.retrieval == "dense":  # fused ranks mean to keep what dense search misses
            hits = close_to_best(hits, self.settings.max_gap)
        return extracts(hits, self.index.article, self.settings.window)

    def ask(self, question: str) -> Answer:
        *_, answer = self.stream(question)
        return answer

    def stream(self, question: str) -> Iterator[str | Answer]:
        """Yield answer pieces (str) as generated, then the checked `Answer`."""
        question = self.validate(question)
        started = time.perf_counter()
        hits = self.read(question)
        timings = {"retrieval": time.perf_counter() - started}
        if not hits:
            yield REFUSAL
            yield self._answer(question, REFUSAL, True, (), hits, timings, 0, "", {"refusal": "no passage"})
            return
        messages = self.messages(question, hits)
        self.check_fits(messages, len(hits))
        timings["prompt"] = time.perf_counter() - started - timings["retrieval"]
        p_refuse = self.p_refuse(messages)
        raw: list[str] = []
        for piece in self.llm.stream(messages, self.settings.max_tokens, self.settings.temperature):
            timings.setdefault("first_token", time.perf_counter() - started)
            raw.append(piece)
            yield piece
        answer = self.check("".join(raw), question, hits, timings, len(raw), p_refuse)
        timings["total"] = time.perf_counter() - started
        yield answer

    def check_fits(self, messages: list[dict], extracts: int) -> None:
        """A RagError when the prompt and the longest answer would overflow the model's
        context (a k too large for the passages' size), before the model reads anything:
        llama.cpp would evaluate the whole context, then fail. A model server, which counts
        no tokens here, knows its own context."""
        count = getattr(self.llm, "count_tokens", None)
        if count is None:
            return
        s = self.settings
        used = sum(count(m["content"]) for m in messages)
        if used + s.max_tokens > s.n_ctx:
            raise RagError(f"Trop long pour le modèle : la consigne et les {extracts} extraits font {used} jetons, "
                           f"et la réponse peut en prendre {s.max_tokens}, au-delà de son contexte de {s.n_ctx}. "
                           "Réduisez k (passages) ou max_tokens.")

    def p_refuse(self, messages: list[dict]) -> float | None:
        """The model's probability of opening its reply with the refusal (None: not given).
        Read only when a threshold or a calibration run needs it: on a model server it is
        one more request."""
        if self.settings.max_p_refuse >= 1 and self.settings.enforce_checks:
            return None
        probs = self.llm.first_token_probs(messages, [checks.REFUSAL_START])
        return probs[checks.REFUSAL_START] if probs else None

    def validate(self, question: str) -> str:
        return validate_question(question, self.settings.max_question_chars)

    def messages(self, question: str, hits: list[Hit]) -> list[dict]:
        prompts = self.settings.prompts_dir
        return [
            {"role": "system", "content": render(prompts, "system.txt")},
            {"role": "user", "content": render(prompts, "user.txt", question=question, passages=hits)},
        ]

    def check(self, raw: str, question: str, hits: list[Hit], timings: dict, tokens: int,
              p_refuse: float | None = None) -> Answer:
        """Turn the model's raw output into a checked answer (rag/checks.py)."""
        s = self.settings
        started = time.perf_counter()
        articles = {h.passage.doc_id: self.index.article(h.passage.doc_id).text for h in hits}
        draft = checks.Draft(raw, question, tuple(hits), p_refuse, articles, own_subjects(self.index))
        stage = checks.standard(self.llm, s.prompts_dir, s.verify, s.min_p_yes, s.max_p_refuse,
                                checks.RULES if not s.enforce_checks else s.rules)
        outcome = checks.run(draft, stage, s.enforce_checks)
        timings["checks"] = time.perf_counter() - started
        cited = () if outcome.refused else citations.resolve(outcome.text, hits)
        record = outcome.record() | {"p_refuse": p_refuse, "top_score": hits[0].score if hits else None}
        if outcome.refused and record["refusal"] != "refusal":
            record["withheld"] = raw.strip()  # what a check kept from the reader: why is in its verdict
        return self._answer(question, outcome.text, outcome.refused, cited, hits, timings, tokens, raw, record)

    def _answer(self, question, text, refused, cited, hits, timings, tokens, raw="", checks=None) -> Answer:
        models = {"llm": self.settings.llm, "embedder": self.settings.embedder}
        return Answer(question, text, refused, tuple(cited), tuple(hits), timings, tokens, models,
                      raw, checks or {})


_subjects: "weakref.WeakKeyDictionary[Index, dict[str, frozenset[str]]]" = weakref.WeakKeyDictionary()


def own_subjects(index: Index) -> dict[str, frozenset[str]]:
    """What each document of the index alone is about (checks.own_subjects), read once per
    index and forgotten with it (the chat replaces its index when documents are added)."""
    if index not in _subjects:
        _subjects[index] = checks.own_subjects({doc_id: a.title for doc_id, a in index.articles.items()})
    return _subjects[index]


def validate_question(question: str, max_chars: int) -> str:
    """The question with its spaces flattened, or a RagError saying what is wrong with it."""
    question = " ".join((question or "").split())
    if not question:
        raise RagError("La question est vide.")
    if len(question) > max_chars:
        raise RagError(f"La question est trop longue ({len(question)} caractères, maximum {max_chars}).")
    if not terms(question):
        raise RagError("La question ne contient aucun mot à chercher.")
    return question

