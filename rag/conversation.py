"""Follow-up questions: rewriting « Et en 2024 ? » into a question that stands alone.

Retrieval sees one question, not a conversation, so a follow-up is rewritten first with
the language model (prompts/rewrite.txt, temperature 0, a few dozen tokens) from the
last turns. The rewrite is sanitised: one line, no label or quotes; an empty, overlong
or answer-like output falls back to the question as asked. Answering is not done here.
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.citations import strip_markers
from rag.errors import RagError
from rag.pipeline import validate_question
from rag.prompts import render
from rag.settings import Settings

MAX_TURNS = 3  # turns of the conversation shown to the model
MAX_ANSWER_CHARS = 400  # each past answer is cut to this in the prompt
MAX_TOKENS = 64
_LABEL = re.compile(r"^\W*(?:question\s*(?:réécrite|reformulée)?|réécriture|reformulation)\s*:\s*", re.I)


def standalone_question(history: Sequence[tuple[str, str]], question: str, llm, settings: Settings) -> str:
    """`question` made understandable without `history` [(question, answer), ...]."""
    if not history:
        return question
    turns = [(asked, strip_markers(answered)[:MAX_ANSWER_CHARS]) for asked, answered in history[-MAX_TURNS:]]
    prompt = render(settings.prompts_dir, "rewrite.txt", history=turns, question=question)
    output = "".join(llm.stream([{"role": "user", "content": prompt}], MAX_TOKENS, 0.0))
    return sanitize(output, question, settings.max_question_chars)


def sanitize(output: str, question: str, max_chars: int) -> str:
    """The model's rewrite as one clean line, or `question` when it is unusable."""
    line = next((line for line in output.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line).strip().strip("«»\"“”*` ").strip()
    line = " ".join(line.split())
    # a rewrite of a question is a question: a statement is the model answering instead
    if not line or ("?" in question and "?" not in line):
        return question
    try:
        return validate_question(line, max_chars)
    except RagError:
        return question

