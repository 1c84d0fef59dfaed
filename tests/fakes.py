"""Fake models for fast tests, selected like real ones: `llm_backend="fakes:FakeLLM"`,
`embedder_backend="fakes:fake_embedder"`.

The fake language model reads the prompts the app really sends (prompts/*.txt) and
answers as a compliant small model would: the first sentence of the extract sharing most
words with the question, cited; the refusal sentence without extracts; « oui » to a
verification; a follow-up rewritten as the previous question's content words then the new
question. It gives first-token
probabilities that agree with what it writes. The fake embedder is a hashed bag of French
terms: similar wording, similar vectors, no meaning (BM25 in the fusion finds passages).
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Iterator, Sequence

import numpy as np

from rag.embedding import Embedder
from rag.errors import RagError
from rag.llms import option_probs
from rag.text import terms

REFUSAL = "Je ne trouve pas la réponse dans le corpus."
FAKE_DIM = 64


def fake_embedder(settings) -> Embedder:
    if not settings.embedder.startswith("fake"):  # the one model it knows
        raise RagError(f"Embedder inconnu : {settings.embedder} (modèles connus : fake)")
    return Embedder(settings.embedder, FAKE_DIM, fake_encode)


def fake_encode(texts: list[str], task: str = "document", prompt: str | None = None,
                progress: bool = False) -> np.ndarray:
    """Deterministic hashed bag of French terms: similar wording, similar vectors."""
    out = np.zeros((len(texts), FAKE_DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for term in terms(text):
            bucket = int.from_bytes(hashlib.md5(term.encode()).digest()[:4], "little")
            out[row, bucket % FAKE_DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


class FakeLLM:
    name = "fake"

    def __init__(self, settings=None):
        if settings is not None and not settings.llm.startswith("fake"):  # the one model it knows
            raise RagError(f"Modèle inconnu : {settings.llm} (modèles connus : fake)")
        self.settings = settings

    def reply(self, messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if "oui ou par non" in prompt:
            return "oui"
        if "Question de suivi :" in prompt:
            return _rewrite(prompt)
        # the first sentence of the extract sharing most words with the question, cited
        extracts = re.findall(r"^\[(\d+)\] « (.*?) »\n(?=\[\d+\] |Question : )", prompt,
                              re.MULTILINE | re.DOTALL)
        question = re.search(r"^Question : (.*)$", prompt, re.MULTILINE)
        if not extracts or not question:
            return REFUSAL
        asked = set(terms(question.group(1)))
        number, text = max(extracts, key=lambda e: (len(asked & set(terms(e[1]))), -int(e[0])))
        sentence = re.match(r".*?[.!?](?=\s|$)", text)
        return f"{sentence.group(0) if sentence else text} [{number}]"

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        words = self.reply(messages).split(" ")
        yield from (w + " " for w in words[:-1])
        yield words[-1]

    def first_token_probs(self, messages: list[dict], options: Sequence[str]) -> dict[str, float]:
        first = self.reply(messages).split(" ")[0]
        other = "non" if first == "oui" else "Je" if first != "Je" else "["
        return option_probs([(first, math.log(0.9)), (other, math.log(0.02))], options)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class Scripted:
    """Writes a fixed text whatever it is asked, and records the calls; verifies with `verdict`.
    Like a server without log-probabilities, it gives no first-token probabilities."""

    name = "scripted"

    def __init__(self, text: str, verdict: str = "oui"):
        self.text, self.verdict = text, verdict
        self.calls = []

    @property
    def prompts(self) -> list[list[dict]]:
        return [messages for messages, *_ in self.calls]

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        self.calls.append((messages, max_tokens, temperature))
        if "oui ou par non" in messages[-1]["content"]:
            yield self.verdict
            return
        words = self.text.split(" ")
        yield from (w + " " for w in words[:-1])
        yield words[-1]

    def first_token_probs(self, messages: list[dict], options: Sequence[str]) -> None:
        return None


def _rewrite(prompt: str) -> str:
    """« Meta prévoit-elle dépenser IA 2025 : Et combien en 2024 ? »: the last question of the
    conversation's content words, then the follow-up."""
    previous = re.findall(r"^Utilisateur : (.*)$", prompt, re.MULTILINE)[-1]
    question = re.search(r"^Question de suivi : (.*)$", prompt, re.MULTILINE).group(1)
    asked = set(terms(question))
    kept: list[str] = []
    for word in re.findall(r"[\w'’-]+", previous):
        if any(t not in asked for t in terms(word)) and word not in kept:
            kept.append(word)
    return f"{' '.join(kept)} : {question}" if kept else question
