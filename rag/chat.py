"""The chat's logic without any UI: one conversation turn as a stream of events.

A turn validates the question, rewrites a follow-up into a standalone question
(rag/conversation.py), then streams the pipeline's answer. Every failure becomes one
French sentence for the conversation (a RagError's own message, or a generic one for a
bug, whose traceback goes to the server log), so the chat keeps serving; as the chat may
be served on a network, the sentence carries no server file path. The per-turn options
(passages, temperature, answer length, model) are checked by the settings' own rules and
make a pipeline that shares the loaded index; the conversation's history is checked too. Drawing the page is rag/app.py; turning answers into HTML, rag/chat_html.py.
"""

from __future__ import annotations

import logging
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence

from rag.conversation import MAX_ANSWER_CHARS, MAX_TURNS, standalone_question
from rag.errors import RagError, without_paths
from rag.index import Index
from rag.pipeline import Pipeline, validate_question
from rag.records import Answer, answer_json
from rag.settings import Settings, with_changes

log = logging.getLogger(__name__)

UNEXPECTED = ("Une erreur inattendue est survenue pendant la réponse (elle est consignée dans le "
              "journal du serveur). Réessayez ou reformulez la question.")
_MAX_PIPELINES = 8  # option combinations kept ready; each only shares the index


@dataclass(frozen=True)
class Options:
    """What the user may change between two questions."""

    k: int
    temperature: float
    max_tokens: int
    llm: str

    @classmethod
    def of(cls, settings: Settings) -> "Options":
        return cls(settings.k, settings.temperature, settings.max_tokens, settings.llm)


@dataclass
class Turn:
    """One question and what became of it. `status`: queued (waiting for the model),
    pending (being answered), done, error, or stopped / cleared by the user."""

    question: str
    standalone: str = ""
    text: str = ""  # streamed so far, then the checked answer, or the error message
    answer: Answer | None = None
    status: str = "pending"
    started: float = field(default_factory=time.time)


class Chat:
    """Answers conversation turns with a pipeline per set of options, sharing one index."""

    def __init__(self, pipeline: Pipeline):
        self.base = pipeline
        self._pipelines: dict[Options, Pipeline] = {Options.of(pipeline.settings): pipeline}

    @property
    def index(self) -> Index:
        return self.base.index

    def pipeline(self, options: Options) -> Pipeline:
        """The pipeline for `options`, which the settings' rules check first (they may come
        from an API client: a negative k, max_tokens <= 0... are a RagError)."""
        settings = with_changes(self.base.settings, **asdict(options))
        options = Options.of(settings)
        if options not in self._pipelines:
            if len(self._pipelines) >= _MAX_PIPELINES:
                self._pipelines = {Options.of(self.base.settings): self.base}
            self._pipelines[options] = self.base.with_settings(settings)
        return self._pipelines[options]

    def respond(self, history: Sequence[tuple[str, str]], question: str,
                options: Options) -> Iterator[tuple[str, object]]:
        """Yield ("standalone", str), then ("piece", str)..., then ("answer", Answer);
        or ("error", French message) at the first failure."""
        try:
            question = validate_question(question, self.base.settings.max_question_chars)
            history = recent_history(history, self.base.settings.max_question_chars)
            pipeline = self.pipeline(options)
            standalone = standalone_question(history, question, pipeline.llm, pipeline.settings)
            yield "standalone", standalone
            with closing(pipeline.stream(standalone)) as events:  # closed on stop: frees the model
                for event in events:
                    yield ("answer", event) if isinstance(event, Answer) else ("piece", event)
        except RagError as exc:
            log.warning("Question refusée ou échec : %s", exc)  # paths included, for the server's owner
            yield "error", without_paths(str(exc))
        except Exception:  # a bug must not take the chat down: logged, shown as one sentence
            log.exception("Erreur pendant la réponse à %r", question)
            yield "error", UNEXPECTED

    def ask(self, history: Sequence[tuple[str, str]], question: str, options: Options) -> Turn:
        """One whole turn, for the API: the finished Turn (status done or error)."""
        turn = Turn(question)
        for kind, value in self.respond(history, question, options):
            update(turn, kind, value)
        return turn


def update(turn: Turn, kind: str, value) -> None:
    """Apply one event of `Chat.respond` to the turn."""
    if kind == "standalone":
        turn.standalone = value
    elif kind == "piece":
        turn.text += value
    elif kind == "answer":
        turn.answer, turn.text, turn.status = value, value.text, "done"
    elif kind == "error":
        turn.text, turn.status = value, "error"


def recent_history(history: object, max_question_chars: int) -> list[tuple[str, str]]:
    """The turns a follow-up is rewritten from: the last MAX_TURNS [question, answer] pairs
    (older ones are dropped unread, as a long conversation must keep working), each question
    no longer than a question may be, each answer cut to what the rewrite may read of it.
    A RagError when the history is not a list of pairs of texts or holds a longer question
    (which the chat itself never sends)."""
    shape = "L'historique doit être une liste de paires [question, réponse] (deux textes)."
    if not isinstance(history, (list, tuple)):
        raise RagError(shape)
    turns = []
    for turn in history[-MAX_TURNS:]:
        if not (isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(x, str) for x in turn)):
            raise RagError(shape)
        question, answer = " ".join(turn[0].split()), turn[1]  # spaces flattened, as when it was asked
        if len(question) > max_question_chars:
            raise RagError(f"Une question de l'historique est trop longue ({len(question)} caractères, "
                           f"maximum {max_question_chars}).")
        # the rewrite reads MAX_ANSWER_CHARS once the [n] markers are out: 4x leaves room for them
        turns.append((question, answer[:4 * MAX_ANSWER_CHARS]))
    return turns


def history(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    """(question, answer) pairs of the turns that got an answer, for the rewrite."""
    return [(t.question, t.text) for t in turns if t.status in ("done", "stopped") and t.text]


def turn_record(turn: Turn, index: Index) -> dict:
    """A finished turn as plain JSON-able data (the API's answer): `answer_json` with the
    question as asked, the question searched, and each citation's article file."""
    answer = turn.answer or Answer(turn.question, turn.text, False, (), ())
    record = answer_json(answer)
    for c in record["citations"]:
        article = index.article(c["doc_id"])
        c |= {"title": article.title, "file": article.path, "passage": c["passage_text"]}
    return record | {
        "question": turn.question, "standalone_question": turn.standalone or turn.question,
        "answer": turn.text, "error": turn.text if turn.status == "error" else None,
    }


def local_llms(settings: Settings) -> list[str]:
    """The configured model first, then the other language models ready on this machine."""
    from rag.models import list_models

    try:
        ready = [spec.name for spec, status in list_models(settings)
                 if spec.role == "llm" and status.startswith("prêt")]
    except RagError as exc:
        log.warning("Liste des modèles indisponible : %s", exc)
        ready = []
    return [settings.llm] + [name for name in ready if name != settings.llm]
