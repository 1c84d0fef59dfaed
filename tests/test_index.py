"""Index build, round trip, stale/corrupt detection, atomic writes, incremental updates,
the FAISS type chosen by size, BM25 saved and loaded (never rebuilt at start)."""

import json
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.index import MANIFEST, build_index, ensure_index, load_index, read_manifest
from rag.settings import Settings
from rag.stores.bm25 import ANALYZER


def quiet(*_):
    pass


def test_build_then_load_round_trip(settings: Settings):
    built = build_index(settings, log=quiet)
    loaded = load_index(settings)
    assert list(loaded.passages) == list(built.passages)
    assert loaded.store.count() == len(loaded.bm25) == len(built.passages) > 5
    assert set(loaded.articles) == {p.stem for p in settings.seeds_dir.glob("*.txt")}
    for p in loaded.passages:  # offsets point at the exact text
        assert loaded.article(p.doc_id).text[p.start:p.end] == p.text
    m = read_manifest(settings.index_dir)
    assert m["embedder"] == "fake" and m["dim"] == 64 and len(m["sources"]) == 5
    assert m["store"] == {"kind": "faiss", "dim": 64, "count": len(built.passages), "type": "flat"}
    assert m["analyzer"] == ANALYZER and "bm25/vocab.index.json" in m["files"]


def test_missing_index_is_built_by_ensure(settings: Settings):
    messages = []
    index = ensure_index(settings, log=messages.append)
    assert index.passages and any("construction" in m for m in messages)


def test_changed_article_makes_index_stale(settings: Settings):
    build_index(settings, log=quiet)
    (settings.seeds_dir / "005_nouveau.txt").write_text("Un nouvel article.\n\nIl parle de Meta.", "utf-8")
    with pytest.raises(RagError, match="périmé.*005_nouveau"):
        load_index(settings)
    with pytest.raises(RagError, match="--rebuild"):
        ensure_index(settings, log=quiet)
    assert "005_nouveau" in ensure_index(settings, rebuild=True, log=quiet).articles


def test_changed_settings_make_index_stale(settings: Settings):
    build_index(settings, log=quiet)
    other = settings.model_copy(update={"passage_chars": 300})
    with pytest.raises(RagError, match="passage_chars"):
        load_index(other)


def test_rebuild_reembeds_only_changed_articles(settings: Settings):
    build_index(settings, log=quiet)
    path = next(settings.seeds_dir.glob("002_*.txt"))
    path.write_text(path.read_text("utf-8") + "\n\nUn paragraphe ajouté à la fin.", "utf-8")
    messages = []
    index = build_index(settings, log=messages.append)
    changed = sum(p.doc_id == path.stem for p in index.passages)
    assert any(f"{len(index.passages) - changed} passages repris" in m for m in messages), messages


def test_corrupt_file_is_detected(settings: Settings):
    build_index(settings, log=quiet)
    build = settings.index_dir / read_manifest(settings.index_dir)["build"]
    data = (build / "vectors.npy").read_bytes()
    (build / "vectors.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(RagError, match="corrompu.*vectors.npy"):
        load_index(settings)


@pytest.mark.parametrize("name", ["passages.jsonl", "bm25/data.csc.index.npy", "keys.npy"])
def test_any_damaged_file_is_reported_not_half_loaded(settings: Settings, name: str):
    build_index(settings, log=quiet)
    path = settings.index_dir / read_manifest(settings.index_dir)["build"] / name
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(RagError, match=r"corrompu.*rag index --rebuild"):
        load_index(settings)


def test_old_format_asks_for_a_rebuild_and_rebuild_fixes_it(settings: Settings):
    build_index(settings, log=quiet)
    manifest = json.loads((settings.index_dir / MANIFEST).read_text("utf-8"))
    (settings.index_dir / MANIFEST).write_text(json.dumps({**manifest, "format": 1}), "utf-8")
    with pytest.raises(RagError, match="format ancien.*--rebuild"):
        load_index(settings)
    assert ensure_index(settings, rebuild=True, log=quiet).store.count() > 5


def test_bm25_is_loaded_never_rebuilt_at_start(settings: Settings, monkeypatch):
    build_index(settings, log=quiet)
    import rag.index as index_module

    monkeypatch.setattr(index_module, "build_bm25", lambda *a, **k: pytest.fail("BM25 rebuilt at start"))
    index = load_index(settings)
    assert index.bm25.top("Meta", 3)


def test_big_corpus_gets_a_tuned_ivf_and_rebuilds_reuse_its_vectors(settings: Settings, monkeypatch):
    import rag.stores.faiss_store as faiss_store

    monkeypatch.setattr(faiss_store, "FLAT_LIMIT", 10)  # the seeds' ~80 passages count as big
    built = build_index(settings, log=quiet)
    record = read_manifest(settings.index_dir)["store"]
    assert record["type"] == "ivf" and record["lists"] == faiss_store.ivf_lists(len(built.passages))
    assert record["nprobe"] in faiss_store.NPROBES and record["tuning_recall"] >= faiss_store.RECALL_TARGET
    assert record["unread_at_start"] == ["vectors.npy"]
    before = {h.passage.id for h in _retriever(built, settings).search("Meta dépense", 5, "dense")}
    path = next(settings.seeds_dir.glob("002_*.txt"))
    path.write_text(path.read_text("utf-8") + "\n\nUn paragraphe ajouté à la fin.", "utf-8")
    messages = []
    rebuilt = build_index(settings, log=messages.append)
    changed = sum(p.doc_id == path.stem for p in rebuilt.passages)
    assert any(f"{len(rebuilt.passages) - changed} passages repris" in m for m in messages), messages
    assert rebuilt.store.count() == len(rebuilt.passages)
    assert {h.passage.id for h in _retriever(rebuilt, settings).search("Meta dépense", 5, "dense")} & before


def test_removed_article_leaves_the_store(settings: Settings):
    build_index(settings, log=quiet)
    gone = next(settings.seeds_dir.glob("003_*.txt"))
    gone.unlink()
    index = build_index(settings, log=quiet)
    assert gone.stem not in index.articles
    assert index.store.count() == len(index.passages)
    assert all(p.doc_id != gone.stem for p in index.passages)


def _retriever(index, settings: Settings):
    from rag.embedding import get_embedder
    from rag.retrieval import Retriever

    return Retriever.from_index(index, get_embedder(settings))


def test_garbled_manifest_is_detected(settings: Settings):
    build_index(settings, log=quiet)
    (settings.index_dir / MANIFEST).write_text("{pas du json", "utf-8")
    with pytest.raises(RagError, match="manifeste illisible"):
        load_index(settings)


def test_crash_mid_build_keeps_the_old_index(settings: Settings, monkeypatch):
    first = build_index(settings, log=quiet)
    (settings.seeds_dir / "005_nouveau.txt").write_text("Un article de plus sur Meta.", "utf-8")
    import rag.index as index_module

    def boom(*a, **k):
        raise OSError("disque plein")

    monkeypatch.setattr(index_module, "_atomic_json", boom)
    with pytest.raises(OSError):
        build_index(settings, log=quiet)
    monkeypatch.undo()
    old = load_index(settings, check_corpus=False)
    assert list(old.passages) == list(first.passages)


def test_missing_corpus_folder(settings: Settings, tmp_path: Path):
    gone = settings.model_copy(update={"seeds_dir": tmp_path / "nulle-part"})
    with pytest.raises(RagError, match="introuvable"):
        build_index(gone, log=quiet)
