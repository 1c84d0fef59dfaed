"""End to end with the real EmbeddingGemma-300M, assembled by `rag models pull embeddinggemma-300m`.

The default embedder. On the shared index of seeds/ (built once per session) checks that dense
retrieval alone finds the evidence of clear-cut reference questions, and that the
model's query and document prompts (with the article title) are what gets encoded.
Without the model assembled, the shared index fails to build: a failure, never a skip.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from rag.embedding import Embedder, get_embedder
from rag.evaluation import holds
from rag.index import Index, load_index
from rag.retrieval import Retriever
from rag.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.e2e

NAME = "embeddinggemma-300m"
# Short factual questions, one per article but one, each with a single evidence sentence
# that no other passage repeats.
QUESTIONS = ["q001", "q014", "q040", "q059"]


@pytest.fixture(scope="module")
def gemma(real_index_dir) -> tuple[Embedder, Index]:
    """The default embedder: the shared e2e index (tests/conftest.py) is built with it."""
    settings = Settings(index_dir=real_index_dir, threads=os.cpu_count() or 2)
    assert settings.embedder == NAME
    return get_embedder(settings), load_index(settings)


def references() -> dict[str, dict]:
    lines = (PROJECT_ROOT / "eval" / "reference.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["id"]: r for r in map(json.loads, lines) if r["id"] in QUESTIONS}


def test_dense_retrieval_puts_the_evidence_first(gemma):
    embedder, index = gemma
    assert embedder.dim == 768 and index.manifest["embedder"] == NAME
    retriever = Retriever.from_index(index, embedder)
    first = {}
    for qid, ref in references().items():
        top = retriever.search(ref["question"], k=1, mode="dense")[0].passage
        first[qid] = any(holds(top, e["doc_id"], e["text"]) for e in ref["evidence"])
    assert sum(first.values()) >= 3, first


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_query_prompt_is_applied(gemma):
    embedder, _ = gemma
    question = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
    prompted = embedder.embed_query(question)
    by_hand = embedder.encode(["task: search result | query: " + question], "query", "", False)[0]
    bare = embedder.encode([question], "query", "", False)[0]
    assert cosine(prompted, by_hand) > 0.999
    assert cosine(prompted, bare) < 0.99


def test_the_document_prompt_carries_the_title(gemma):
    embedder, index = gemma
    passage = index.passages[0]
    titled = embedder.embed_passages([passage.text], titles=[passage.title])[0]
    title = " ".join(passage.title.split())
    by_hand = embedder.encode([f"title: {title} | text: {passage.text}"], "document", "", False)[0]
    untitled = embedder.embed_passages([passage.text])[0]
    none_by_hand = embedder.encode([f"title: none | text: {passage.text}"], "document", "", False)[0]
    assert cosine(titled, by_hand) > 0.999 and cosine(untitled, none_by_hand) > 0.999
    assert cosine(titled, untitled) < 0.999
