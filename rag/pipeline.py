"""One question in, one cited answer out: retrieval, prompt, generation, checks.

`Pipeline.stream()` yields the answer's text pieces as the model writes them, then the
final, checked `Answer` (whose text may differ from the pieces: show `Answer.text`);
`ask()` is the same without the pieces. The checks after generation are what make a
small model usable: a refusal is recognised in any wording and replaced by one
sentence; markers of passages the model was not given are dropped; an answer without a
valid marker is tied to the passage it copies from, or refused; a marker is moved to
the passage that holds the answer when the model cited another; an answer that the
model does not confirm when asked on its supporting sentence alone (rag/grounding.py)
is refused.
`Answer.checks` records what was seen and decided.
"""

from __future__ import annotations

import re
import time
from typing import Iterator

from rag import citations, grounding
from rag.embedding import get_embedder
from rag.errors import RagError
from rag.llms import LLM, get_llm
from rag.index import Index, ensure_index
from rag.prompts import render
from rag.records import Answer, Hit
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.text import terms

REFUSAL = "Je ne trouve pas la réponse dans le corpus."
_REFUSAL_PATTERNS = re.compile(
    r"je ne (?:trouve|sais|peux|dispose)|ne (?:contien|mentionn|précis|indiqu|donn|fourni)\w*"
    r"|aucune (?:information|mention|réponse)|pas d'information|pas de réponse|n'est pas (?:mentionn|indiqu|précis)"
    r"|i (?:don't|do not|cannot) |not (?:mentioned|provided|found)",
    re.IGNORECASE,
)


class Pipeline:
    """Holds the index, retriever and model for the life of the process."""

    def __init__(self, settings: Settings, index: Index | None = None, llm: LLM | None = None,
                 log=print):
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
            self._retriever = Retriever.from_index(self.index, get_embedder(self.settings))
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

    def ask(self, question: str) -> Answer:
        *_, answer = self.stream(question)
        return answer

    def stream(self, question: str) -> Iterator[str | Answer]:
        """Yield answer pieces (str) as generated, then the checked `Answer`."""
        question = self.validate(question)
        started = time.perf_counter()
        hits = self.retrieve(question)
        timings = {"retrieval": time.perf_counter() - started}
        if not hits:
            yield REFUSAL
            yield self._answer(question, REFUSAL, True, (), hits, timings, 0, "", {"refusal": "no passage"})
            return
        messages = self.messages(question, hits)
        timings["prompt"] = time.perf_counter() - started - timings["retrieval"]
        raw: list[str] = []

        def generated():
            for piece in self.llm.stream(messages, self.settings.max_tokens, self.settings.temperature):
                timings.setdefault("first_token", time.perf_counter() - started)
                raw.append(piece)
                yield piece

        yield from generated()
        answer = self.check("".join(raw), question, hits, timings, len(raw))
        timings["total"] = time.perf_counter() - started
        yield answer

    def validate(self, question: str) -> str:
        return validate_question(question, self.settings.max_question_chars)

    def messages(self, question: str, hits: list[Hit]) -> list[dict]:
        prompts = self.settings.prompts_dir
        return [
            {"role": "system", "content": render(prompts, "system.txt")},
            {"role": "user", "content": render(prompts, "user.txt", question=question, passages=hits)},
        ]

    def check(self, raw: str, question: str, hits: list[Hit], timings: dict, tokens: int) -> Answer:
        """Turn the model's raw output into a checked answer (see module docstring)."""
        text = citations.clean_markers(grounding.strip_label(raw), len(hits))
        checks: dict = {}

        def refuse(reason: str) -> Answer:
            checks["refusal"] = reason
            return self._answer(question, REFUSAL, True, (), hits, timings, tokens, raw, checks)

        if not text or _REFUSAL_PATTERNS.search(text):
            return refuse("model")
        if not citations.cited_numbers(text):
            n = best_source(text, hits)
            if n is None:
                return refuse("uncited")
            text = citations.clean_markers(f"{text} [{n}]", len(hits))
        text = citations.repoint(text, hits, question)
        # recorded for diagnosis only: refusing on it cost more right answers (« une heure »
        # vs « 1 heure ») than the verification below leaves wrong ones
        checks["unsupported"] = grounding.unsupported(text, question, [h.passage.text for h in hits])[1]
        cited = citations.resolve(text, hits)
        if self.settings.verify:
            started = time.perf_counter()
            evidence = " ".join(citations.evidence(text, c, question) for c in cited)
            confirmed = grounding.verify(self.llm, self.settings.prompts_dir, question, text, evidence)
            timings["verify"] = time.perf_counter() - started
            checks["verified"] = confirmed
            if not confirmed:
                return refuse("verification")
        return self._answer(question, text, False, cited, hits, timings, tokens, raw, checks)

    def _answer(self, question, text, refused, cited, hits, timings, tokens, raw="", checks=None) -> Answer:
        models = {"llm": self.settings.llm, "embedder": self.settings.embedder}
        return Answer(question, text, refused, tuple(cited), tuple(hits), timings, tokens, models,
                      raw, checks or {})


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


def best_source(text: str, hits: list[Hit], min_shared: int = 2) -> int | None:
    """The 1-based passage sharing most terms with an uncited answer, if it shares enough."""
    wanted = set(terms(text))
    shared = [len(wanted & set(terms(h.passage.text))) for h in hits]
    best = max(range(len(hits)), key=lambda i: shared[i])
    return best + 1 if shared[best] >= min_shared else None
