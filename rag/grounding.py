"""Checking that an answer rests on the passages, before it is shown.

- `verify`: the model is asked again, on a short prompt (prompts/verify.txt), whether
  the answer is right according to the two sentences of the cited passage it rests on. This catches the
  small model's favourite mistake, which no word count can see: answering an
  off-corpus question with a real name or figure of the corpus that answers something
  else (« Le PDG de Klarna est Steve Davis »). It costs one short prompt and one token.
- `unsupported`: what the answer adds to the question (its new terms) and is found in
  none of the passages. Recorded for diagnosis; as a refusal rule it rejected more
  right answers than wrong ones (« 1 heure » against the article's « une heure »).

Measured on eval/reference.jsonl: README, « Answer quality, measured ».
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from rag.prompts import render
from rag.text import fold, terms

_LABEL = re.compile(r"^\s*\**r[ée]ponse\**\s*:\s*", re.IGNORECASE)


def strip_label(raw: str) -> str:
    """The answer without a « Réponse : » label some models add, on one line."""
    return " ".join(_LABEL.sub("", raw).split())


def unsupported(answer: str, question: str, passages: Sequence[str]) -> tuple[list[str], list[str]]:
    """(new terms, unsupported terms): the answer's terms that are not in the question,
    and those of them found in none of the passages."""
    asked = set(terms(question))
    have = set()
    for text in passages:
        have.update(terms(text))
    new = [t for t in dict.fromkeys(terms(_strip_markers(answer))) if t not in asked]
    return new, [t for t in new if t not in have]


def verify(llm, prompts_dir: Path, question: str, answer: str, evidence: str) -> bool:
    """Does the model, asked on `evidence` alone, confirm the answer? (oui / non)"""
    messages = [
        {"role": "system", "content": render(prompts_dir, "verify_system.txt")},
        {"role": "user", "content": render(prompts_dir, "verify.txt", question=question,
                                           answer=_strip_markers(answer, keep_case=True),
                                           evidence=evidence)},
    ]
    reply = "".join(llm.stream(messages, 3, 0.0))
    return not fold(reply).strip(" .«»\"'*").startswith("non")


def _strip_markers(text: str, keep_case: bool = False) -> str:
    text = " ".join(re.sub(r"\s*\[\d+\]", "", text).split())
    return text if keep_case else fold(text)
