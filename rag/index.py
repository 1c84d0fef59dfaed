"""The built index on disk: cleaned articles, passages, their vectors in FAISS, a manifest.

Layout under `settings.index_dir`:
    manifest.json        written last, atomically; names the build folder and holds the
                         embedder, chunking settings, source file hashes, file checksums
    build-<id>/          articles.json, passages.jsonl, vectors.faiss

A crash mid-build leaves a stray build folder but the old manifest, so the old index
still loads whole. Loading checks the checksums (corrupt files) and compares the
manifest with the corpus and settings (stale index). A rebuild re-embeds only the
articles whose file or chunking changed. Retrieval itself lives in retrieval.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rag.articles import load_corpus
from rag.embedding import Embedder, get_embedder
from rag.errors import RagError
from rag.passages import split_passages
from rag.records import Article, Passage
from rag.settings import Settings

FORMAT_VERSION = 1
# Bump when cleaning or splitting rules change: every stored passage is then stale.
PIPELINE_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True, eq=False)
class Index:
    manifest: dict
    articles: dict[str, Article]
    passages: tuple[Passage, ...]
    vectors: Any  # faiss index, row i = passages[i]

    def article(self, doc_id: str) -> Article:
        return self.articles[doc_id]


def ensure_index(settings: Settings, rebuild: bool = False, log: Callable = print) -> Index:
    """Load the index; build it when missing, rebuild it when stale only if asked."""
    if not (settings.index_dir / MANIFEST).exists():
        log(f"Aucun index dans {settings.index_dir} : construction à partir de {settings.seeds_dir}…")
        return build_index(settings, log=log)
    problem = staleness(settings, read_manifest(settings.index_dir))
    if problem and not rebuild:
        raise RagError(f"Index périmé ({problem}) : relancez avec --rebuild ou lancez `rag index`.")
    if problem:
        log(f"Index périmé ({problem}) : mise à jour…")
        return build_index(settings, log=log)
    return load_index(settings)


def build_index(settings: Settings, log: Callable = print) -> Index:
    """Clean, split and embed the corpus, reusing vectors of unchanged articles."""
    started = time.perf_counter()
    articles = load_corpus(settings.seeds_dir)
    passages = [p for a in articles for p in split_passages(a, settings.passage_chars, settings.passage_overlap)]
    embedder = get_embedder(settings)
    vectors = _vectors_for(passages, _reusable_vectors(settings, articles), embedder, log)
    manifest = _manifest(settings, embedder, articles, len(passages))
    _write(settings.index_dir, manifest, articles, passages, vectors)
    log(f"Index construit : {len(articles)} articles, {len(passages)} passages "
        f"en {time.perf_counter() - started:.1f} s.")
    return load_index(settings, check_corpus=False)


def load_index(settings: Settings, check_corpus: bool = True) -> Index:
    """Read a built index, refusing a corrupt, stale or mismatched one."""
    import faiss

    manifest = read_manifest(settings.index_dir)
    if check_corpus and (problem := staleness(settings, manifest)):
        raise RagError(f"Index périmé ({problem}) : relancez avec --rebuild ou lancez `rag index`.")
    build = settings.index_dir / manifest["build"]
    _verify_files(build, manifest["files"])
    articles = {a["doc_id"]: Article(**a) for a in json.loads((build / "articles.json").read_text("utf-8"))}
    passages = tuple(Passage(**json.loads(line)) for line in (build / "passages.jsonl").open(encoding="utf-8"))
    vectors = faiss.read_index(str(build / "vectors.faiss"))
    if vectors.ntotal != len(passages):
        raise RagError(f"Index corrompu : {vectors.ntotal} vecteurs pour {len(passages)} passages.")
    return Index(manifest, articles, passages, vectors)


def read_manifest(index_dir: Path) -> dict:
    path = index_dir / MANIFEST
    if not path.exists():
        raise RagError(f"Aucun index dans {index_dir} : lancez `rag index`.")
    try:
        manifest = json.loads(path.read_text("utf-8"))
        manifest["build"], manifest["files"], manifest["sources"]  # noqa: B018 - shape check
    except (ValueError, KeyError, TypeError):
        raise RagError(f"Index corrompu : manifeste illisible ({path}). Lancez `rag index --rebuild`.") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise RagError("Index d'un format ancien : lancez `rag index --rebuild`.")
    return manifest


def staleness(settings: Settings, manifest: dict) -> str | None:
    """Why the index no longer matches the corpus and settings, or None if it does."""
    expected = _settings_part(settings)
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"{key} : index {manifest.get(key)!r}, réglages {value!r}"
    current = _source_hashes(settings.seeds_dir)
    if current != manifest["sources"]:
        changed = sorted(set(current.items()) ^ set(manifest["sources"].items()))
        return f"le corpus a changé ({', '.join(sorted({name for name, _ in changed}))})"
    return None


def _settings_part(settings: Settings) -> dict:
    return {
        "embedder": settings.embedder,
        "passage_chars": settings.passage_chars,
        "passage_overlap": settings.passage_overlap,
        "pipeline": PIPELINE_VERSION,
    }


def _source_hashes(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        raise RagError(f"Dossier du corpus introuvable : {folder}")
    return {a.path: a.sha256 for a in load_corpus(folder)}


def _manifest(settings: Settings, embedder: Embedder, articles: list[Article], n: int) -> dict:
    return {
        "format": FORMAT_VERSION,
        **_settings_part(settings),
        "dim": embedder.dim,
        "sources": {a.path: a.sha256 for a in articles},
        "articles": len(articles),
        "passages": n,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _reusable_vectors(settings: Settings, articles: list[Article]) -> dict[str, np.ndarray]:
    """Vectors of the previous build, by passage id, for articles whose file is unchanged."""
    try:
        old = load_index(settings, check_corpus=False)
    except RagError:
        return {}
    if any(old.manifest.get(k) != v for k, v in _settings_part(settings).items()):
        return {}
    unchanged = {a.doc_id for a in articles if old.manifest["sources"].get(a.path) == a.sha256}
    keep = [i for i, p in enumerate(old.passages) if p.doc_id in unchanged]
    return {old.passages[i].id: old.vectors.reconstruct(i) for i in keep}


def _vectors_for(passages: list[Passage], reuse: dict, embedder: Embedder, log: Callable) -> np.ndarray:
    todo = [i for i, p in enumerate(passages) if p.id not in reuse]
    log(f"{len(passages) - len(todo)} passages repris de l'index précédent, {len(todo)} à encoder "
        f"avec {embedder.name}.")
    out = np.zeros((len(passages), embedder.dim), dtype=np.float32)
    for i, p in enumerate(passages):
        if p.id in reuse:
            out[i] = reuse[p.id]
    if todo:
        out[todo] = embedder.embed_passages([passages[i].text for i in todo],
                                            titles=[passages[i].title for i in todo], progress=len(todo) > 32)
    return out


def _write(index_dir: Path, manifest: dict, articles, passages, vectors: np.ndarray) -> None:
    import faiss

    index_dir.mkdir(parents=True, exist_ok=True)
    build_name = f"build-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    build = index_dir / build_name
    build.mkdir()
    (build / "articles.json").write_text(json.dumps([asdict(a) for a in articles], ensure_ascii=False), "utf-8")
    with (build / "passages.jsonl").open("w", encoding="utf-8") as out:
        for p in passages:
            out.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    faiss.write_index(flat, str(build / "vectors.faiss"))
    files = {f.name: _sha256(f) for f in sorted(build.iterdir())}
    _atomic_json(index_dir / MANIFEST, {**manifest, "build": build_name, "files": files})
    _remove_old_builds(index_dir, keep=build_name)


def _atomic_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _remove_old_builds(index_dir: Path, keep: str) -> None:
    for old in index_dir.glob("build-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _verify_files(build: Path, files: dict[str, str]) -> None:
    for name, digest in files.items():
        path = build / name
        if not path.exists():
            raise RagError(f"Index corrompu : fichier manquant {path}. Lancez `rag index --rebuild`.")
        if _sha256(path) != digest:
            raise RagError(f"Index corrompu : {path} a été modifié ou tronqué. Lancez `rag index --rebuild`.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
