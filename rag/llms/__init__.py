"""Language models behind one small interface, one module per backend.

The pipeline sees only `LLM`: chat messages in, the reply's text out piece by piece, and
the probability that the reply starts with given words (how sure the model is of « oui »
against « non », of answering against refusing). Which model runs where is the settings':
- `llm_backend = "llamacpp"` (default): a GGUF file of models.txt, in this process
  (rag/llms/llamacpp.py);
- `llm_backend = "openai"`: any OpenAI-compatible server — vLLM, llama.cpp's server,
  Ollama — (rag/llms/openai.py);
- `llm_backend = "package.module:factory"`: a model of your own, built by
  `factory(settings)` (the tests' fake models are selected this way).
A model is loaded once per process and kept.
"""

from __future__ import annotations

import importlib
import math
import threading
from typing import Iterator, Protocol, Sequence

from rag.errors import RagError
from rag.settings import Settings
from rag.text import fold

TOP_LOGPROBS = 20  # alternatives looked at for the first token (OpenAI's maximum)


class LLM(Protocol):
    name: str

    def stream(self, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the reply piece by piece."""

    def first_token_probs(self, messages: list[dict], options: Sequence[str]) -> dict[str, float] | None:
        """P(the reply starts with each option), from the model's first-token distribution;
        None when the backend gives no probabilities."""


# The settings that make a loaded model different; the others (k, temperature…) only
# change how it is asked, so pipelines that differ by them share the model.
LOAD_FIELDS = ("llm", "llm_backend", "models_dir", "models_file", "n_ctx", "threads", "reuse_prefix",
               "openai_base_url", "openai_model", "openai_timeout", "openai_api_key")
_loaded: dict[tuple, LLM] = {}
_loading = threading.Lock()  # the chat asks from several threads: load each model once
MAX_LOADED = 2


def get_llm(settings: Settings) -> LLM:
    """The model named in the settings, loaded on first use and kept for the process."""
    key = tuple(getattr(settings, name, None) for name in LOAD_FIELDS)
    with _loading:
        if key not in _loaded:
            while len(_loaded) >= MAX_LOADED:
                _loaded.pop(next(iter(_loaded)))
            _loaded[key] = _load(settings)
        return _loaded[key]


def _load(settings: Settings) -> LLM:
    if ":" in settings.llm_backend:
        return plugin(settings.llm_backend, settings)
    if settings.llm_backend == "openai":
        from rag.llms.openai import OpenAILLM

        return OpenAILLM.from_settings(settings)
    from rag.llms.llamacpp import LlamaCppLLM

    return LlamaCppLLM.from_settings(settings)


def plugin(reference: str, settings: Settings):
    """`factory(settings)` for a « package.module:factory » reference."""
    module, _, attribute = reference.partition(":")
    try:
        factory = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise RagError(f"Composant introuvable : {reference} ({exc})") from None
    return factory(settings)


def option_probs(top: Sequence[tuple[str, float]], options: Sequence[str]) -> dict[str, float]:
    """Sum the probabilities of the top first tokens (text, log-probability) over the options
    each one can begin: « Oui », « oui », « ou » all count for « oui », and « Je » for « Je ne
    trouve pas », but « Jeff » does not; case, accents, spaces and quotes are ignored. An
    option no top token begins gets 0."""
    out = {option: 0.0 for option in options}
    for text, logprob in top:
        token = fold(text).strip(" \t\n«»\"'*:.")
        for option in options:
            wanted = fold(option)
            if token and len(token) >= min(2, len(wanted)) and wanted.startswith(token):
                out[option] += math.exp(logprob)
    return out
