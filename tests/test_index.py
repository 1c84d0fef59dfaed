"""Index build, round trip, stale/corrupt detection, atomic writes, incremental updates,
the FAISS type chosen by size, BM25 saved and loaded (never rebuilt at start)."""

import json
import time
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
    _edit_body(path)
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
    _rewrite_manifest(settings, format=1)
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
    _edit_body(path)
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


def _edit_body(path: Path) -> None:
    """Change one sentence of the article's body (text after its footer would be cut off)."""
    text = path.read_text("utf-8")
    assert "65 milliards" in text
    path.write_text(text.replace("65 milliards", "66 milliards"), "utf-8")


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


# ------------------------------------------------------------------ issue 12: ids, skipped files, groups, lock


def test_unique_doc_ids_and_skipped_files_in_the_index(settings: Settings):
    seeds = settings.seeds_dir
    (seeds / "a.txt").write_text("Le zorglub mange des pommes chaque matin.", "utf-8")
    (seeds / "a.md").write_text("# Zorglub\n\nLe zorglub boit du thé vert le soir.", "utf-8")
    (seeds / "vide.txt").write_text("fermer\n\nPartager\n", "utf-8")
    messages = []
    index = build_index(settings, log=messages.append)
    assert {"a", "a.md"} <= set(index.articles) and index.article("a.md").path == "a.md"
    assert any(p.doc_id == "a.md" for p in index.passages) and any(p.doc_id == "a" for p in index.passages)
    m = read_manifest(settings.index_dir)
    assert m["skipped"]["vide.txt"]["reason"] == "vide après nettoyage"
    assert "Fichier ignoré : vide.txt (vide après nettoyage)." in messages
    assert load_index(settings).store.count() == len(index.passages)  # a skipped file does not make it stale
    (seeds / "vide.txt").write_text("Le zorglub a enfin écrit un article.", "utf-8")
    with pytest.raises(RagError, match="vide.txt"):
        load_index(settings)  # the fixed file makes it stale


def test_near_duplicate_groups_are_recorded(settings: Settings):
    index = build_index(settings, log=quiet)
    assert read_manifest(settings.index_dir)["duplicates"] == [["000_6aa0d2c1c64dd291", "001_7964a669a5581a1c"]]
    assert index.copies("000_6aa0d2c1c64dd291") == ["001_7964a669a5581a1c"]
    assert index.copies("002_dbf84de5b56e379c") == []


def test_new_cleaning_rules_reembed_only_the_articles_they_change(settings: Settings):
    build_index(settings, log=quiet)
    _rewrite_manifest(settings, pipeline=1)
    with pytest.raises(RagError, match="pipeline"):
        load_index(settings)
    messages = []
    index = build_index(settings, log=messages.append)
    assert f"{len(index.passages)} passages repris de l'index précédent, 0 à encoder avec fake." in messages


def _hold_lock(settings: Settings, seconds: float, holding=None):
    """Hold the builder lock in a thread for `seconds`; `holding` is set once it is held."""
    import threading

    from rag.index import index_lock

    holding = holding or threading.Event()

    def hold():
        with index_lock(settings):
            holding.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(5)
    return thread


def test_a_second_builder_waits_then_stops_with_a_clear_message(settings: Settings):
    build_index(settings, log=quiet)
    thread = _hold_lock(settings, 1.5)
    impatient = settings.model_copy(update={"index_lock_wait": 0.3})
    started = time.monotonic()
    with pytest.raises(RagError, match=r"déjà en construction par un autre processus \(\d+\).*0.3 s"):
        build_index(impatient, log=quiet)
    assert 0.3 <= time.monotonic() - started < 1.4
    assert load_index(settings).store.count() > 5  # readers are never blocked
    thread.join()


def test_a_second_builder_that_waits_long_enough_builds(settings: Settings):
    thread = _hold_lock(settings, 0.5)
    assert build_index(settings, log=quiet).store.count() > 5
    thread.join()


def test_the_lock_is_reentrant_within_one_builder(settings: Settings):
    from rag.index import index_lock

    with index_lock(settings.model_copy(update={"index_lock_wait": 0})):
        assert build_index(settings.model_copy(update={"index_lock_wait": 0}), log=quiet).passages


def test_a_reader_meeting_a_replaced_build_reads_the_new_one(settings: Settings, monkeypatch):
    build_index(settings, log=quiet)
    import rag.index as index_module

    real, calls = index_module._load, []

    def racing(s, check_corpus):
        calls.append(1)
        if len(calls) == 1:  # another process finishes a build while this reader starts
            (settings.seeds_dir / "005_nouveau.txt").write_text("Un article de plus sur Meta.", "utf-8")
            build_index(settings, log=quiet)
            raise RagError("Index corrompu : fichier manquant (build remplacé)")
        return real(s, check_corpus)

    monkeypatch.setattr(index_module, "_load", racing)
    assert "005_nouveau" in load_index(settings).articles  # read again, not the error


def _rewrite_manifest(settings: Settings, **changes) -> None:
    """The index's manifest as an older version of the app wrote it."""
    path = settings.index_dir / MANIFEST
    path.write_text(json.dumps({**json.loads(path.read_text("utf-8")), **changes}), "utf-8")
