"""Running the language model: llama-cpp-python, loaded once, streamed token by token.

The chat template is the one stored in the GGUF file (llama-cpp-python reads it when
no chat_format is forced). A `fake` model answers with the first sentence of the first
passage, for fast tests of everything around the model. This module knows nothing of
passages or citations: it turns chat messages into text.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Iterator, Protocol

from rag.errors import RagError
from rag.settings import Settings


class LLM(Protocol):
    name: str

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the answer piece by piece."""


class LlamaLLM:
    """A GGUF model through llama-cpp-python; one generation at a time."""

    def __init__(self, name: str, path: str, n_ctx: int, threads: int):
        import llama_cpp

        self.name = name
        self.n_ctx = n_ctx
        try:
            self.model = llama_cpp.Llama(
                model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise RagError(f"Impossible de charger le modèle {name} ({path}) : {exc}") from None
        # llama.cpp contexts are not thread-safe: the chat may call from several threads.
        self.lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        with self.lock:
            chunks = self.model.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                top_k=1 if temperature == 0 else 40, repeat_penalty=1.05, stream=True,
            )
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece


class FakeLLM:
    """Answers with the first sentence of extract [1], cited; refuses without extracts;
    says « oui » when asked to verify an answer (prompts/verify.txt)."""

    name = "fake"

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        prompt = messages[-1]["content"]
        match = re.search(r"^\[1\] .*?\n(.+?[.!?])(?:\s|$)", prompt, re.MULTILINE | re.DOTALL)
        if "oui ou par non" in prompt:
            text = "oui"
        elif match:
            text = f"{match.group(1)} [1]"
        else:
            text = "Je ne trouve pas la réponse dans le corpus."
        words = text.split(" ")
        yield from (w + " " for w in words[:-1])
        yield words[-1]

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def get_llm(settings: Settings) -> LLM:
    """The model named in the settings, loaded on first use and kept for the process."""
    return _load(settings.llm, settings.models_dir, settings.models_file, settings.n_ctx, settings.threads)


@functools.lru_cache(maxsize=2)
def _load(name: str, models_dir, models_file, n_ctx: int, threads: int) -> LLM:
    if name == "fake":
        return FakeLLM()
    from rag import models

    settings = Settings(models_dir=models_dir, models_file=models_file)
    models.get_spec(settings, name, role="llm")
    return LlamaLLM(name, str(models.local_path(settings, name)), n_ctx, threads)
