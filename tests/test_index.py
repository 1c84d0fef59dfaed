"""Index build, round trip, stale/corrupt detection, atomic writes, incremental updates."""

from pathlib import Path

import pytest

from rag.errors import RagError
from rag.index import MANIFEST, build_index, ensure_index, load_index, read_manifest
from rag.settings import Settings


def quiet(*_):
    pass


def test_build_then_load_round_trip(settings: Settings):
    built = build_index(settings, log=quiet)
    loaded = load_index(settings)
    assert loaded.passages == built.passages
    assert loaded.vectors.ntotal == len(built.passages) > 5
    assert set(loaded.articles) == {p.stem for p in settings.seeds_dir.glob("*.txt")}
    for p in loaded.passages:  # offsets point at the exact text
        assert loaded.article(p.doc_id).text[p.start:p.end] == p.text
    m = read_manifest(settings.index_dir)
    assert m["embedder"] == "fake" and m["dim"] == 64 and len(m["sources"]) == 5


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
    data = (build / "vectors.faiss").read_bytes()
    (build / "vectors.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(RagError, match="corrompu.*vectors.faiss"):
        load_index(settings)


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
    assert old.passages == first.passages


def test_missing_corpus_folder(settings: Settings, tmp_path: Path):
    gone = settings.model_copy(update={"seeds_dir": tmp_path / "nulle-part"})
    with pytest.raises(RagError, match="introuvable"):
        build_index(gone, log=quiet)
