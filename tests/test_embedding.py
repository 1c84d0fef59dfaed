"""Prompts, prefixes and titles on their way into the embedder, without a real model.

A stub stands in for the sentence-transformers model: it records which method was
called with which prompt, and returns vectors that depend on the text it would see.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag import embedding
from rag.embedding import Embedder, get_embedder
from rag.errors import RagError
from rag.index import build_index
from rag.settings import Settings, load_settings

GEMMA_PROMPTS = {"query": "task: search result | query: ", "document": "title: none | text: ",
                 "Clustering": "task: clustering | query: "}


class StubModel:
    """Answers like SentenceTransformer: encode / encode_query / encode_document."""

    def __init__(self, prompts: dict | None = None, dim: int = 4):
        self.prompts, self.dim, self.calls = dict(prompts or {}), dim, []

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(self, texts, prompt=None, **options):
        return self._answer("encode", texts, prompt, options)

    def encode_query(self, texts, prompt=None, **options):
        return self._answer("encode_query", texts, self.prompts["query"] if prompt is None else prompt, options)

    def encode_document(self, texts, prompt=None, **options):
        return self._answer("encode_document", texts, self.prompts["document"] if prompt is None else prompt, options)

    def _answer(self, method, texts, prompt, options):
        seen = [(prompt or "") + t for t in texts]
        self.calls.append((method, seen, options["batch_size"]))
        rows = np.array([[len(s), s.count("e"), s.count("a") + 1, 1.0] for s in seen], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def recording_embedder(**fields) -> tuple[Embedder, list]:
    calls = []

    def encode(texts, task, prompt, progress):
        calls.append((task, prompt, list(texts)))
        return np.ones((len(texts), 2), dtype=np.float32)

    return Embedder("rec", 2, encode, **fields), calls


# ---------------------------------------------------------------- the Embedder record

def test_titles_fill_the_title_slot_one_call_per_run_of_a_title():
    embedder, calls = recording_embedder(document_prompt="title: none | text: ")
    vectors = embedder.embed_passages(["a1", "a2", "b1", "c1"], titles=["Meta | IA", "Meta | IA", "", "  Deux\nlignes "])
    assert vectors.shape == (4, 2)
    assert calls == [
        ("document", "title: Meta - IA | text: ", ["a1", "a2"]),
        ("document", "title: none | text: ", ["b1"]),
        ("document", "title: Deux lignes | text: ", ["c1"]),
    ]


def test_without_titles_or_a_title_slot_passages_take_the_model_prompt():
    embedder, calls = recording_embedder(document_prompt="title: none | text: ")
    embedder.embed_passages(["a", "b"])
    plain, plain_calls = recording_embedder()
    plain.embed_passages(["a", "b"], titles=["T", "T"])
    assert calls == plain_calls == [("document", None, ["a", "b"])]


def test_prefixes_from_the_registry_still_apply():
    embedder, calls = recording_embedder(query_prefix="query: ", passage_prefix="passage: ")
    embedder.embed_query("Qui ?")
    embedder.embed_passages(["Lui."], titles=["Titre"])
    assert calls == [("query", None, ["query: Qui ?"]), ("document", None, ["passage: Lui."])]


def test_titles_must_match_the_passages():
    embedder, _ = recording_embedder(document_prompt="title: none | text: ")
    with pytest.raises(ValueError, match="1 titres pour 2 passages"):
        embedder.embed_passages(["a", "b"], titles=["T"])


def test_the_fake_embedder_ignores_titles():
    fake = get_embedder(Settings(embedder="fake", embedder_backend="fakes:fake_embedder"))
    texts = ["Meta dépense 65 milliards.", "Elon Musk et Twitter."]
    assert np.array_equal(fake.embed_passages(texts, titles=["A", "B"]), fake.embed_passages(texts))


def test_fake_is_no_model_name_of_the_app(tmp_path):
    """The tests' fake embedder lives in tests/fakes.py, reached only through embedder_backend."""
    with pytest.raises(RagError, match="fake"):
        get_embedder(Settings(embedder="fake", models_dir=tmp_path))
    with pytest.raises(RagError, match="Embedder inconnu"):
        get_embedder(Settings(embedder="gemma", embedder_backend="fakes:fake_embedder"))


def test_embedder_backend_is_local_or_a_factory():
    with pytest.raises(RagError, match="embedder_backend"):
        load_settings(env={"RAG_EMBEDDER_BACKEND": "torch"})
    assert load_settings(env={"RAG_EMBEDDER_BACKEND": "fakes:fake_embedder"}).embedder_backend == "fakes:fake_embedder"


# ---------------------------------------------------------------- which prompts a model gets

class Spec:
    def __init__(self, query_prefix="", passage_prefix="", passage_title=None):
        self.name, self.query_prefix, self.passage_prefix, self.passage_title = "m", query_prefix, passage_prefix, passage_title


@pytest.mark.parametrize("prompts, spec, expected", [
    (GEMMA_PROMPTS, Spec(), (True, "title: none | text: ")),  # a title slot: used by default
    (GEMMA_PROMPTS, Spec(passage_title=True), (True, "title: none | text: ")),
    (GEMMA_PROMPTS, Spec(passage_title=False), (True, "")),  # measured without titles
    ({"query": "q: ", "document": "d: "}, Spec(), (True, "")),  # prompts, no slot
    (GEMMA_PROMPTS, Spec("query: ", "passage: "), (False, "")),  # registry prefixes win
    ({"query": "query: ", "passage": "passage: "}, Spec(), (False, "")),  # no "document" prompt
    ({}, Spec(), (False, "")),
])
def test_which_prompts_apply(prompts, spec, expected):
    assert embedding._prompts(StubModel(prompts), spec) == expected


def test_asking_for_titles_on_a_model_without_a_slot_is_an_error():
    with pytest.raises(RagError, match="passage_title = true.*« title: none »"):
        embedding._prompts(StubModel({"query": "q: ", "document": "d: "}), Spec(passage_title=True))


def test_own_prompts_go_through_encode_query_and_encode_document():
    model = StubModel(GEMMA_PROMPTS)
    encode = embedding._st_encoder(model, own_prompts=True, batch_size=8)
    encode(["Qui ?"], "query", None, False)
    encode(["Texte."], "document", None, False)
    encode(["Texte."], "document", "title: Meta | text: ", False)
    assert model.calls == [
        ("encode_query", ["task: search result | query: Qui ?"], 8),
        ("encode_document", ["title: none | text: Texte."], 8),
        ("encode_document", ["title: Meta | text: Texte."], 8),
    ]


def test_without_own_prompts_nothing_is_prepended():
    model = StubModel(GEMMA_PROMPTS)  # e.g. prompts saved with the model, but prefixes in models.txt
    encode = embedding._st_encoder(model, own_prompts=False, batch_size=32)
    encode(["query: Qui ?"], "query", None, False)
    assert model.calls == [("encode", ["query: Qui ?"], 32)]


# ---------------------------------------------------------------- from models.txt to the index

REGISTRY = """
[gemma-like]
role = embedding
kind = sentence-transformers
source = hub:org/gemma-like
dim = 4
{extra}
licence = test
"""


@pytest.fixture
def stub_model(tmp_path, monkeypatch) -> StubModel:
    model = StubModel(GEMMA_PROMPTS)
    monkeypatch.setattr(embedding, "_sentence_transformer", lambda kind, path, threads: model)
    (tmp_path / "models" / "gemma-like").mkdir(parents=True)  # "downloaded": local_path finds it
    return model


def gemma_settings(settings: Settings, tmp_path, extra: str = "") -> Settings:
    (tmp_path / "models.txt").write_text(REGISTRY.format(extra=extra), encoding="utf-8")
    return settings.model_copy(update={"embedder": "gemma-like", "embedder_backend": "local",
                                       "models_file": tmp_path / "models.txt"})


def test_the_index_embeds_passages_with_their_article_titles(settings, tmp_path, stub_model):
    settings = gemma_settings(settings, tmp_path)
    index = build_index(settings, log=lambda *_: None)
    documents = [text for method, texts, _ in stub_model.calls if method == "encode_document" for text in texts]
    assert len(documents) == len(index.passages)
    expected = {f"title: {' '.join(p.title.split())} | text: {p.text}" for p in index.passages}
    assert set(documents) == expected
    assert all(batch == embedding.BATCH["sentence-transformers"] for _, _, batch in stub_model.calls)


def test_passage_title_false_in_the_registry_keeps_none(settings, tmp_path, stub_model):
    settings = gemma_settings(settings, tmp_path, "passage_title = false")
    get_embedder(settings).embed_passages(["Texte."], titles=["Un titre"])
    assert stub_model.calls == [("encode_document", ["title: none | text: Texte."], 8)]
