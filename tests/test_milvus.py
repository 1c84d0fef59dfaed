"""The Milvus store against a real Milvus Lite (pymilvus + milvus-lite), in tmp_path:
build, search with filters, incremental add, delete of a removed article, re-index without
duplicates, reopen after close, an interrupted update, the token kept out of the manifest.

Select them with `-m milvus`; they run in the default command too (small corpus, fake
embedder: a few seconds).
"""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from rag.embedding import get_embedder
from rag.errors import RagError
from rag.index import MANIFEST, build_index, ensure_index, load_index, read_manifest
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.stores import Filter
from rag.stores.milvus_store import COLLECTION, MilvusStore, public_uri

pytestmark = pytest.mark.milvus
QUESTION = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"


@pytest.fixture
def milvus(settings: Settings) -> Settings:
    return settings.model_copy(update={"store": "milvus"})


def quiet(*_):
    pass


def search(index, settings: Settings, mode: str = "hybrid", k: int = 3, where: Filter | None = None):
    return Retriever.from_index(index, get_embedder(settings)).search(QUESTION, k, mode, where=where)


def test_build_search_and_manifest(milvus: Settings):
    index = build_index(milvus, log=quiet)
    record = read_manifest(milvus.index_dir)["store"]
    assert record["kind"] == "milvus" and record["collection"] == COLLECTION
    assert record["uri"] == str((milvus.index_dir / "milvus.db").resolve()) and record["count"] == len(index.passages)
    assert index.bm25 is None  # BM25 runs in Milvus (BM25 function on the terms field)
    for mode in ("bm25", "dense", "hybrid"):
        hits = search(index, milvus, mode)
        assert len(hits) == 3 and hits[0].score >= hits[-1].score
    assert search(index, milvus, "bm25")[0].passage.doc_id.startswith("002_")  # « 65 milliards » is there
    doc = next(iter(index.articles))
    for mode in ("bm25", "dense", "hybrid"):
        assert {h.passage.doc_id for h in search(index, milvus, mode, 5, Filter(doc_ids=frozenset({doc})))} == {doc}
        assert search(index, milvus, mode, 5, Filter(date_from="2999")) == []
    index.store.close()


def test_incremental_add_delete_and_reindex_leave_no_duplicates(milvus: Settings):
    first = build_index(milvus, log=quiet)
    first.store.close()
    (milvus.seeds_dir / "005_nouveau.txt").write_text(
        "Un nouvel article.\n\nMeta annonce un centre de données géant en Louisiane.", "utf-8")
    messages = []
    added = build_index(milvus, log=messages.append)
    assert any(f"{len(first.passages)} passages repris" in m for m in messages), messages
    assert added.store.count() == len(added.passages) > len(first.passages)
    new = search(added, milvus, "bm25", 1, Filter(doc_ids=frozenset({"005_nouveau"})))
    assert new and "Louisiane" in new[0].passage.text
    added.store.close()
    gone = next(milvus.seeds_dir.glob("003_*.txt"))
    gone.unlink()
    removed = build_index(milvus, log=quiet)
    assert removed.store.count() == len(removed.passages)
    assert search(removed, milvus, "dense", 5, Filter(doc_ids=frozenset({gone.stem}))) == []
    removed.store.close()
    again = build_index(milvus, log=quiet)  # nothing changed: nothing re-embedded, nothing doubled
    assert again.store.count() == len(again.passages) == len(removed.passages)
    again.store.close()


def test_reopen_after_close(milvus: Settings):
    built = build_index(milvus, log=quiet)
    before = [h.passage.id for h in search(built, milvus)]
    built.store.close()
    reopened = load_index(milvus)
    assert reopened.store.count() == len(reopened.passages)
    assert [h.passage.id for h in search(reopened, milvus)] == before
    reopened.store.close()


def test_missing_collection_or_interrupted_update_asks_for_a_rebuild(milvus: Settings, monkeypatch):
    build_index(milvus, log=quiet).store.close()
    store = MilvusStore.open(milvus, 64, read_manifest(milvus.index_dir)["store"])
    store.client.drop_collection(COLLECTION)
    store.close()
    with pytest.raises(RagError, match="n'existe plus.*rag index --rebuild"):
        load_index(milvus)
    ensure_index(milvus, rebuild=True, log=quiet).store.close()
    (milvus.seeds_dir / "005_nouveau.txt").write_text("Un article de plus sur Meta.", "utf-8")

    def crash(*_a, **_k):
        raise OSError("connexion perdue")

    monkeypatch.setattr(MilvusStore, "add", crash)
    with pytest.raises(OSError):
        build_index(milvus, log=quiet)
    monkeypatch.undo()
    with pytest.raises(RagError, match="interrompue.*rag index --rebuild"):
        load_index(milvus, check_corpus=False)
    fixed = ensure_index(milvus, rebuild=True, log=quiet)
    assert fixed.store.count() == len(fixed.passages)
    fixed.store.close()


def test_token_and_password_stay_out_of_the_manifest(milvus: Settings):
    secret = milvus.model_copy(update={"milvus_token": SecretStr("jeton-secret")})
    build_index(secret, log=quiet).store.close()
    assert "jeton-secret" not in (milvus.index_dir / MANIFEST).read_text("utf-8")
    server = milvus.model_copy(update={"milvus_uri": "http://root:motdepasse@milvus.example:19530"})
    assert public_uri(server) == "http://milvus.example:19530"


def test_switching_store_makes_the_index_stale(milvus: Settings):
    build_index(milvus, log=quiet).store.close()
    faiss = milvus.model_copy(update={"store": "faiss"})
    with pytest.raises(RagError, match="store.*milvus.*faiss"):
        load_index(faiss)
    rebuilt = ensure_index(faiss, rebuild=True, log=quiet)
    assert json.loads((faiss.index_dir / MANIFEST).read_text("utf-8"))["store"]["kind"] == "faiss"
    assert rebuilt.store.count() == len(rebuilt.passages)
