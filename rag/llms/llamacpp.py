"""A GGUF model run in this process by llama-cpp-python: loaded once, one generation at a time.

The chat template is the one stored in the GGUF file (llama-cpp-python reads it when no
chat_format is forced). This module knows nothing of passages or citations: it turns
chat messages into text, and into first-token probabilities.

Prefix cache: the fixed system prompt is a third of every answer's prompt, and the
verification, which has its own system prompt, overwrites it in the context between two
questions. So each system prompt is evaluated once, on its own, its KV cache saved
(~10 MB), and put back before every prompt that starts with it; llama-cpp-python then
evaluates only the rest (its own longest-prefix match). Evaluating the prefix separately
every time also makes an answer independent of what was asked before it.

First-token probabilities come from the logits llama.cpp leaves for the last prompt
token, so they cost one prompt evaluation and no `logits_all` (which would compute a
vocabulary-wide row for every prompt token); the generation that follows reuses it.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from rag.errors import RagError
from rag.llms import TOP_LOGPROBS, option_probs
from rag.settings import Settings


@dataclass(frozen=True)
class Prefix:
    """A system prompt's tokens and the context state (KV cache) once they are evaluated."""

    tokens: tuple[int, ...]
    state: bytes


class LlamaCppLLM:
    """A GGUF model through llama-cpp-python; one generation at a time."""

    MAX_PREFIXES = 4  # system prompts kept: answer, verification, question rewriting, + 1

    def __init__(self, name: str, path: str, n_ctx: int, threads: int, reuse_prefix: bool = True):
        import llama_cpp

        self.name = name
        self.n_ctx = n_ctx
        self.reuse_prefix = reuse_prefix
        self.prefixes: OrderedDict[str, Prefix] = OrderedDict()
        self.prefix_stats = {"computed": 0, "restored": 0, "kept": 0}
        try:
            self.model = llama_cpp.Llama(
                model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                n_batch=512, verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise RagError(f"Impossible de charger le modèle {name} ({path}) : {exc}") from None
        # llama.cpp contexts are not thread-safe: the chat may call from several threads.
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "LlamaCppLLM":
        from rag import models

        models.get_spec(settings, settings.llm, role="llm")
        path = models.local_path(settings, settings.llm)
        return cls(settings.llm, str(path), settings.n_ctx, settings.threads, settings.reuse_prefix)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        with self.lock:
            if self.reuse_prefix:
                self.restore_prefix(messages)
            chunks = self.model.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature,
                top_k=1 if temperature == 0 else 40, repeat_penalty=1.05, stream=True,
            )
            for chunk in chunks:
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

    def first_token_probs(self, messages: list[dict], options: Sequence[str]) -> dict[str, float]:
        with self.lock:
            if self.reuse_prefix:
                self.restore_prefix(messages)
            logits = self._last_logits(self._prompt_tokens(messages))
        return option_probs(self._top(logits), options)

    def _last_logits(self, tokens: list[int]) -> np.ndarray:
        """Evaluate what the context does not hold yet of `tokens` (at least the last one,
        whose logits are wanted) and return those logits."""
        model = self.model
        held = min(model.n_tokens, len(tokens) - 1)
        same = next((i for i in range(held) if model.input_ids[i] != tokens[i]), held)
        model.n_tokens = same  # eval() drops the KV cache from here on
        model.eval(tokens[same:])
        return np.ctypeslib.as_array(model._ctx.get_logits(), shape=(model.n_vocab(),)).copy()

    def _top(self, logits: np.ndarray) -> list[tuple[str, float]]:
        """The most likely tokens as (text, log-probability)."""
        shifted = logits - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        best = np.argpartition(-logprobs, TOP_LOGPROBS)[:TOP_LOGPROBS]
        return [(self.model.detokenize([int(t)], special=True).decode("utf-8", "replace"), float(logprobs[t]))
                for t in best]

    # ------------------------------------------------------------ prefix cache

    def restore_prefix(self, messages: list[dict]) -> Prefix | None:
        """Leave the context holding exactly the evaluated system prompt of `messages`
        (computed on first sight), unless it already starts with it."""
        if not messages or messages[0].get("role") != "system":
            return None
        key = messages[0]["content"]
        prefix = self.prefixes.get(key)
        if prefix is None:
            prefix = self.prefixes[key] = self._compute_prefix(messages[0])
            self.prefix_stats["computed"] += 1
            while len(self.prefixes) > self.MAX_PREFIXES:
                self.prefixes.popitem(last=False)
        else:
            self.prefixes.move_to_end(key)
            if self._holds(prefix.tokens):
                self.prefix_stats["kept"] += 1
                return prefix
            self._put_back(prefix)
            self.prefix_stats["restored"] += 1
        return prefix

    def _compute_prefix(self, system: dict) -> Prefix:
        """The tokens two prompts with this system message and different questions share
        (the template's rendering of the system message), evaluated alone and saved."""
        import llama_cpp

        a, b = (self._prompt_tokens([system, {"role": "user", "content": c}]) for c in ("a", "b"))
        shared = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        tokens = tuple(a[:shared])
        self.model.reset()
        if tokens:
            self.model.eval(list(tokens))
        size = llama_cpp.llama_state_get_size(self.model.ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(self.model.ctx, buffer, size)
        return Prefix(tokens, bytes(buffer[:written]))

    def _put_back(self, prefix: Prefix) -> None:
        """Put the saved state back. Llama.load_state() would also copy a logits row per
        token (~200 MB, most of a second here); the next evaluation recomputes them anyway."""
        import llama_cpp

        buffer = (ctypes.c_uint8 * len(prefix.state)).from_buffer_copy(prefix.state)
        if llama_cpp.llama_state_set_data(self.model.ctx, buffer, len(prefix.state)) != len(prefix.state):
            self.model.reset()  # nothing reused, nothing wrong: the whole prompt is evaluated
            return
        n = len(prefix.tokens)
        self.model.input_ids[:n] = prefix.tokens
        self.model.n_tokens = n
        self.model._requires_eval = True  # sample only after a live decode (llama_cpp's own flag)

    def _holds(self, tokens: tuple[int, ...]) -> bool:
        n = len(tokens)
        return self.model.n_tokens >= n and tuple(self.model.input_ids[:n].tolist()) == tokens

    def _prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The prompt tokens as create_chat_completion makes them with the GGUF template."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.model.metadata.get("tokenizer.chat_template")
        if not template:
            return []
        eos, bos = (self.model.detokenize([t], special=True).decode("utf-8", "replace")
                    for t in (self.model.token_eos(), self.model.token_bos()))
        rendered = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)(messages=messages)
        return self.model.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special,
                                   special=True)
