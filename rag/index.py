"""The built index on disk: articles, passages, BM25, a vector store, and a manifest.

Layout under `settings.index_dir`:
    manifest.json   written last, atomically; names the build folder and holds the
                    embedder, chunking settings, source file hashes, the store's record
                    (kind and parameters) and the checksum of every file
    build-<id>/     passage and article tables (stores/tables.py), bm25/ (stores/bm25.py)
                    and, with FAISS, the vectors and their index (stores/faiss_store.py)
    milvus.db       with store = "milvus" and no milvus_uri: the Milvus Lite file

One builder at a time: `build_index` (and so `rag index`, `rag add`, `serve --rebuild`
and the chat's upload) holds an exclusive lock on `index_dir/build.lock` (fcntl), waits
for another builder at most `settings.index_lock_wait` seconds, then stops with a French
message naming it. Readers never take the lock: the manifest names a complete build, and
a reader that meets a build removed under it by a newer one reads the new manifest again.
A crash mid-build leaves a stray build folder but the old manifest, so an old FAISS
index still loads whole (the kernel drops a killed builder's lock). A Milvus collection changes in place: the manifest is first
marked « updating », so a crash there leaves an index that asks for `rag index --rebuild`.
Loading checks the checksums of what it reads (corrupt files), the manifest against the
corpus and settings (stale index) and the store against the manifest, and returns the
whole index or raises, never half of it. A rebuild re-embeds only the articles whose
cleaned text or title changed (a new cleaning rule re-embeds only the articles it
changes); the store keeps the others. The manifest also records the files skipped (with
their reason) and the groups of near-duplicate articles (rag/dedup.py). Retrieval lives
in retrieval.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from rag import dedup
from rag.articles import Skipped, corpus_files, describe, read_corpus
from rag.embedding import Embedder, get_embedder
from rag.errors import RagError
from rag.files import sha256_file, write_atomic
from rag.passages import split_passages
from rag.records import Article, Passage
from rag.settings import Settings
from rag.stores import VectorStore, get_store, mismatch
from rag.stores.bm25 import ANALYZER, Bm25Index, build_bm25
from rag.stores.tables import ArticleTable, PassageTable, write_tables

FORMAT_VERSION = 2  # 2: tables read on demand, bm25s, stores
# Bump when cleaning or splitting rules change: the index is then stale (only the articles
# whose text changed are re-embedded). 2: footers, teasers, doc ids with extensions, HTML
# by trafilatura, PDF, near-duplicate groups.
PIPELINE_VERSION = 2
MANIFEST = "manifest.json"
LOCK = "build.lock"
REBUILD = "Lancez `rag index --rebuild`."
_log = logging.getLogger(__name__)
_held = threading.local()  # index folders whose lock this thread holds (the lock is re-entrant)


@dataclass(frozen=True, eq=False)
class Index:
    manifest: dict
    articles: Mapping[str, Article]  # stores.tables.ArticleTable: parsed on demand
    passages: Sequence[Passage]  # stores.tables.PassageTable: row i, or by store key
    store: VectorStore
    bm25: Bm25Index | None  # None when the store does its own full text search (Milvus)

    def article(self, doc_id: str) -> Article:
        return self.articles[doc_id]

    def copies(self, doc_id: str) -> list[str]:
        """The other articles telling the same story as `doc_id` (rag/dedup.py)."""
        return dedup.copies(self.manifest.get("duplicates", ()), doc_id)


@contextlib.contextmanager
def index_lock(settings: Settings) -> Iterator[None]:
    """Hold the index folder's builder lock, waiting at most `settings.index_lock_wait` s."""
    folder = settings.index_dir.resolve()
    held = getattr(_held, "folders", set())
    if folder in held:  # this thread already builds here (`rag add` calls build_index)
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as handle:
        _acquire(handle, settings.index_lock_wait)
        _held.folders = held | {folder}
        try:
            yield
        finally:
            _held.folders = held
            fcntl.flock(handle, fcntl.LOCK_UN)


def _acquire(handle, wait: float) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                raise RagError(f"L'index est déjà en construction par un autre processus ({holder}) ; "
                               f"attendu {wait:g} s sans qu'il finisse. Réessayez quand il aura fini "
                               "(réglage index_lock_wait).") from None
            time.sleep(min(0.2, max(wait, 0.01)))
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()


def ensure_index(settings: Settings, rebuild: bool = False, log: Callable = _log.info) -> Index:
    """Load the index; build it when missing; when stale or damaged, rebuild it only if asked."""
    if not (settings.index_dir / MANIFEST).exists():
        log(f"Aucun index dans {settings.index_dir} : construction à partir de {settings.seeds_dir}…")
        return build_index(settings, log=log)
    try:
        problem = staleness(settings, read_manifest(settings.index_dir))
        if not problem:
            return load_index(settings)
    except RagError as exc:  # old format, interrupted update, corrupt files: rebuilding is the cure
        if not rebuild:
            raise
        problem = str(exc)
    if not rebuild:
        raise RagError(f"Index périmé ({problem}) : relancez avec --rebuild ou lancez `rag index`.")
    log(f"Index à refaire ({problem}) : mise à jour…")
    return build_index(settings, log=log)


def build_index(settings: Settings, log: Callable = _log.info) -> Index:
    """Clean, split and embed the corpus; the store keeps the vectors of unchanged articles.
    One builder at a time (`index_lock`)."""
    with index_lock(settings):
        started = time.perf_counter()
        articles, skipped = _corpus(settings, log)
        passages = [p for a in articles for p in split_passages(a, settings.passage_chars, settings.passage_overlap)]
        embedder = get_embedder(settings)
        store, unchanged, gone = _open_for_update(settings, articles, embedder.dim, log)
        try:
            reuse = {p.id for p in passages if p.doc_id in unchanged}
            added, vectors = _vectors_for(passages, reuse, embedder, log)
            manifest = _manifest(settings, embedder, articles, len(passages), skipped, _duplicates(articles, log))
            write_index(settings, manifest, articles, passages, store, gone, added, vectors)
        finally:
            store.close()
        log(f"Index construit : {len(articles)} articles, {len(passages)} passages "
            f"en {time.perf_counter() - started:.1f} s.")
        return load_index(settings, check_corpus=False)


def _corpus(settings: Settings, log: Callable) -> tuple[list[Article], list[Skipped]]:
    """The corpus's readable articles; each skipped file said, none readable an error."""
    corpus = read_corpus(settings.seeds_dir, max_bytes(settings))
    for skip in corpus.skipped:
        log(f"Fichier ignoré : {skip.name} ({skip.reason}).")
    if not corpus.articles:
        raise RagError(f"Aucun article lisible dans {settings.seeds_dir} : {describe(corpus.skipped)}")
    return corpus.articles, corpus.skipped


def max_bytes(settings: Settings) -> int:
    return int(settings.max_file_mb * 1_000_000)


def _duplicates(articles: Sequence[Article], log: Callable) -> list[list[str]]:
    groups = dedup.duplicate_groups(articles)
    for group in groups:
        log(f"Même histoire ({len(group)} articles) : {', '.join(group)}.")
    return groups


def load_index(settings: Settings, check_corpus: bool = True) -> Index:
    """Read a built index, refusing a corrupt, stale or mismatched one. A build replaced
    while it was being read (another process finished a build) is read again, once."""
    for attempt in (1, 2):
        tried = _build_name(settings.index_dir)
        try:
            return _load(settings, check_corpus)
        except RagError:
            if attempt == 2 or tried is None or _build_name(settings.index_dir) == tried:
                raise
    raise AssertionError("unreachable")


def _build_name(index_dir: Path) -> str | None:
    try:
        return json.loads((index_dir / MANIFEST).read_text("utf-8")).get("build")
    except (OSError, ValueError, AttributeError):
        return None


def _load(settings: Settings, check_corpus: bool) -> Index:
    manifest = read_manifest(settings.index_dir)
    problem = mismatch(settings, manifest["store"]) or (check_corpus and staleness(settings, manifest))
    if problem:
        raise RagError(f"Index périmé ({problem}) : relancez avec --rebuild ou lancez `rag index`.")
    build = settings.index_dir / manifest["build"]
    _verify_files(build, manifest["files"], skip=manifest["store"].get("unread_at_start", ()))
    try:
        articles, passages = ArticleTable(build), PassageTable(build)
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(f"Index corrompu : tables de {build} illisibles ({exc}). {REBUILD}") from None
    store = get_store(settings, manifest["dim"], manifest["store"], build)
    try:
        bm25 = None if hasattr(store, "search_text") else _load_bm25(build, manifest)
        sizes = {store.count(), len(passages)} | ({len(bm25)} if bm25 else set())
        if len(sizes) != 1:
            raise RagError(f"Index corrompu : {sorted(sizes)} passages selon les fichiers de {build}. {REBUILD}")
    except BaseException:
        store.close()
        raise
    return Index(manifest, articles, passages, store, bm25)


def _load_bm25(build: Path, manifest: dict) -> Bm25Index:
    try:
        return Bm25Index.load(build, manifest["analyzer"])
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(f"Index corrompu : BM25 illisible dans {build} ({exc}). {REBUILD}") from None


def read_manifest(index_dir: Path) -> dict:
    path = index_dir / MANIFEST
    if not path.exists():
        raise RagError(f"Aucun index dans {index_dir} : lancez `rag index`.")
    try:
        manifest = json.loads(path.read_text("utf-8"))
        if manifest.get("format") == FORMAT_VERSION:
            manifest["build"], manifest["files"], manifest["sources"], manifest["store"]["kind"]  # noqa: B018
    except (ValueError, KeyError, TypeError, AttributeError):
        raise RagError(f"Index corrompu : manifeste illisible ({path}). {REBUILD}") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise RagError("Index d'un format ancien : lancez `rag index --rebuild`.")
    if manifest.get("updating"):
        raise RagError(f"Index périmé : la mise à jour de la collection {manifest['store'].get('collection')} "
                       f"a été interrompue. {REBUILD}")
    return manifest


def staleness(settings: Settings, manifest: dict) -> str | None:
    """Why the index no longer matches the corpus and settings, or None if it does."""
    expected = _settings_part(settings)
    for key, value in expected.items():
        if manifest.get(key) != value:
            return f"{key} : index {manifest.get(key)!r}, réglages {value!r}"
    if problem := mismatch(settings, manifest["store"]):
        return problem
    current = _source_hashes(settings.seeds_dir)
    known = manifest["sources"] | {name: s["sha256"] for name, s in manifest.get("skipped", {}).items()}
    if current != known:
        changed = sorted(set(current.items()) ^ set(known.items()))
        return f"le corpus a changé ({', '.join(sorted({name for name, _ in changed}))})"
    return None


def store_summary(manifest: dict) -> str:
    """The store in a few words, for `rag index` and the chat's status line."""
    s = manifest["store"]
    if s["kind"] == "milvus":
        return f"Milvus {s['uri']} (collection {s['collection']})"
    if s.get("type") == "ivf":
        return f"FAISS IVF ({s['lists']} listes, nprobe {s['nprobe']}, rappel@10 {s['recall@10']:.2f})"
    return "FAISS exact"


def _settings_part(settings: Settings) -> dict:
    return {
        "embedder": settings.embedder,
        "passage_chars": settings.passage_chars,
        "passage_overlap": settings.passage_overlap,
        "pipeline": PIPELINE_VERSION,
        "analyzer": ANALYZER,
    }


def _source_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every corpus file, read or skipped (hashing is cheaper than cleaning)."""
    if not folder.is_dir():
        raise RagError(f"Dossier du corpus introuvable : {folder}")
    return {path.name: sha256_file(path) for path in corpus_files(folder)}


def _manifest(settings: Settings, embedder: Embedder, articles: Sequence[Article], n: int,
              skipped: Sequence[Skipped] = (), duplicates: Sequence[Sequence[str]] = ()) -> dict:
    return {
        "format": FORMAT_VERSION,
        **_settings_part(settings),
        "dim": embedder.dim,
        "sources": {a.path: a.sha256 for a in articles},
        "skipped": {s.name: {"sha256": s.sha256, "reason": s.reason} for s in skipped},
        "duplicates": [list(group) for group in duplicates],
        "articles": len(articles),
        "passages": n,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _open_for_update(settings: Settings, articles: Sequence[Article], dim: int,
                     log: Callable) -> tuple[VectorStore, set[str], set[str]]:
    """The previous build's store, the articles it holds as they still are (same cleaned
    text and title), and the doc ids it holds that changed or left; or an empty store
    when nothing can be reused."""
    old = _previous(settings, dim)
    if old is not None:
        build = settings.index_dir / old["build"]
        try:
            _verify_files(build, old["files"])
            before = ArticleTable(build)
            store = get_store(settings, dim, old["store"], build)
        except (RagError, OSError, ValueError, KeyError) as exc:
            log(f"Index précédent inutilisable ({exc}) : tous les passages seront encodés.")
        else:
            unchanged = {a.doc_id for a in articles if _same_article(before, a)}
            return store, unchanged, set(before) - unchanged
    return get_store(settings, dim), set(), set()


def _same_article(before: ArticleTable, article: Article) -> bool:
    if article.doc_id not in before:
        return False
    old = before[article.doc_id]
    return (old.text, old.title) == (article.text, article.title)


def _previous(settings: Settings, dim: int) -> dict | None:
    """The previous manifest when its store can be updated for these settings (the
    cleaning rules may differ: articles are compared on their cleaned text)."""
    try:
        old = read_manifest(settings.index_dir)
    except RagError:
        return None
    same = all(old.get(k) == v for k, v in _settings_part(settings).items() if k != "pipeline")
    return old if same and old["dim"] == dim and not mismatch(settings, old["store"]) else None


def _vectors_for(passages: list[Passage], reuse: set[str], embedder: Embedder,
                 log: Callable) -> tuple[list[Passage], np.ndarray]:
    """The passages whose id is not in `reuse` (the store has them) and their new vectors."""
    todo = [i for i, p in enumerate(passages) if p.id not in reuse]
    log(f"{len(passages) - len(todo)} passages repris de l'index précédent, {len(todo)} à encoder "
        f"avec {embedder.name}.")
    out = np.zeros((len(passages), embedder.dim), dtype=np.float32)
    if todo:
        out[todo] = embedder.embed_passages([passages[i].text for i in todo],
                                            titles=[passages[i].title for i in todo], progress=len(todo) > 32)
    return [passages[i] for i in todo], out[todo]


def write_index(settings: Settings, manifest: dict, articles: Sequence[Article], passages: Sequence[Passage],
                store: VectorStore, gone: set[str], added: Sequence[Passage], vectors: np.ndarray,
                faiss_type: str | None = None) -> None:
    """Write a build: tables, BM25 (unless the store searches text), the store's changes
    (drop the `gone` articles, add `added`), then the manifest. `faiss_type` forces
    "flat" or "ivf" (benchmarks); by default the size chooses."""
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    build = index_dir / f"build-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:6]}"
    build.mkdir()
    write_tables(build, articles, passages)
    if not hasattr(store, "search_text"):
        build_bm25((p.text for p in passages), build)
    if store.kind == "milvus" and (index_dir / MANIFEST).exists():
        _mark_updating(index_dir)
    store.delete(gone)
    store.add(added, vectors, {a.doc_id: a.date for a in articles})
    record = store.commit(build, faiss_type) if faiss_type else store.commit(build)
    files = {str(f.relative_to(build)): sha256_file(f) for f in sorted(build.rglob("*")) if f.is_file()}
    _atomic_json(index_dir / MANIFEST, {**manifest, "build": build.name, "store": record, "files": files})
    _remove_old_builds(index_dir, keep=build.name)


def _mark_updating(index_dir: Path) -> None:
    """Flag the current manifest before a store changes in place (see module docstring)."""
    try:
        current = json.loads((index_dir / MANIFEST).read_text("utf-8"))
    except ValueError:
        return
    _atomic_json(index_dir / MANIFEST, {**current, "updating": True})


def _atomic_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))


def _remove_old_builds(index_dir: Path, keep: str) -> None:
    for old in index_dir.glob("build-*"):
        if old.name != keep and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def _verify_files(build: Path, files: dict[str, str], skip: Sequence[str] = ()) -> None:
    """Every file's checksum, hashed two at a time (hashlib releases the GIL)."""
    names = [name for name in files if name not in skip]
    for name in names:
        if not (build / name).exists():
            raise RagError(f"Index corrompu : fichier manquant {build / name}. {REBUILD}")
    with ThreadPoolExecutor(2) as pool:
        digests = list(pool.map(lambda name: sha256_file(build / name), names))
    for name, digest in zip(names, digests):
        if digest != files[name]:
            raise RagError(f"Index corrompu : {build / name} a été modifié ou tronqué. {REBUILD}")
