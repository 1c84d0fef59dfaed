"""Adding a user's documents to the corpus: `rag add PATH…` and the chat's upload box.

Each file (folders are walked recursively, in name order) is checked before anything is
copied: a supported type (rag/formats.py), at most `settings.max_file_mb`, readable, not
empty once cleaned, and not already in the corpus. A file that passes is copied into
`settings.seeds_dir` under its own name, atomically, so citations show the name the user
knows. Name collisions are decided, never silent:
- the same name as a corpus file: the same bytes are skipped (« déjà dans le corpus »),
  other bytes replace the old version (« mis à jour »: same name, same document), unless
  `replace` is off (the chat's upload: a visitor does not overwrite the corpus's articles);
- the same name as another file of the same call (two folders): the first is added,
  the others refused (one name, one document: rename them);
- the same doc id as a corpus file of another name (`a.TXT` beside `a.txt`): refused;
- the same cleaned text as a corpus article of another name: skipped as its duplicate.
The index is then updated under the builder lock (rag/index.py), the copy included, so
two additions never interleave; only the articles that changed are embedded. The report
says what became of each file and which articles tell the same story as another.
Left out: deleting documents (remove the file, then `rag index`), and keeping folders
inside the corpus (files land flat, so two `notes.txt` of two folders collide).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rag.articles import load_article, read_corpus
from rag.errors import RagError
from rag.files import write_atomic
from rag.formats import SUFFIXES
from rag.index import Index, build_index, index_lock, max_bytes
from rag.records import Article
from rag.settings import Settings

_log = logging.getLogger(__name__)

ADDED, UPDATED, SKIPPED = "ajouté", "mis à jour", "ignoré"


@dataclass(frozen=True)
class Outcome:
    """What became of one file: its status and, when skipped, why (French)."""

    source: str  # the path as given
    name: str  # its name in the corpus folder
    status: str  # ADDED, UPDATED or SKIPPED
    reason: str = ""
    error: bool = False  # skipped because something is wrong with it, not because it is there already


@dataclass(frozen=True)
class AddReport:
    outcomes: list[Outcome]
    index: Index | None  # the updated index; None when nothing changed and none was built

    @property
    def changed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != SKIPPED]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]


def add_documents(settings: Settings, paths: Sequence[Path], log: Callable = _log.info,
                  replace: bool = True) -> AddReport:
    """Copy the usable files of `paths` into the corpus and update the index; `replace`:
    a file may replace the corpus file of the same name."""
    files = list(expand(paths))
    if not files:
        raise RagError("Aucun fichier à ajouter : " + ", ".join(str(p) for p in paths))
    settings.seeds_dir.mkdir(parents=True, exist_ok=True)
    with index_lock(settings):
        corpus = Existing.of(settings, replace)
        outcomes = [_place(settings, path, corpus) for path in files]
        changed = any(o.status != SKIPPED for o in outcomes)
        index = build_index(settings, log=log) if changed else None
    return AddReport(outcomes, index)


def expand(paths: Iterable[Path]) -> Iterable[Path]:
    """The files named, and the files inside the folders named (recursively, sorted)."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


class Existing:
    """The corpus as it is, plus what this call has added so far: names, ids, texts."""

    def __init__(self, folder: Path, articles: Sequence[Article], names: Iterable[str], replace: bool = True):
        self.folder, self.replace = folder, replace
        self.by_id = {a.doc_id: a.path for a in articles}
        self.by_text = {_text_key(a): a.path for a in articles}
        self.names = set(names)
        self.placed: dict[str, str] = {}  # corpus name -> source, for this call

    @classmethod
    def of(cls, settings: Settings, replace: bool = True) -> "Existing":
        folder = settings.seeds_dir
        names = [p.name for p in folder.iterdir() if p.is_file()]
        try:
            articles = read_corpus(folder, max_bytes(settings)).articles
        except RagError:  # an empty corpus folder: the first documents are being added
            articles = []
        return cls(folder, articles, names, replace)

    def remember(self, article: Article, source: str) -> None:
        self.by_id[article.doc_id] = article.path
        self.by_text[_text_key(article)] = article.path
        self.names.add(article.path)
        self.placed[article.path] = source


def _place(settings: Settings, path: Path, corpus: Existing) -> Outcome:
    """Check one file and copy it into the corpus; what became of it."""
    source, name = str(path), path.name
    try:
        article, data = _read(path, settings)
        status = _status(article, data, corpus)
    except RagError as exc:
        return Outcome(source, name, SKIPPED, str(exc), error=True)
    except _Skip as skip:
        return Outcome(source, name, SKIPPED, str(skip))
    _copy(data, corpus.folder / name)
    corpus.remember(article, source)
    return Outcome(source, name, status)


class _Skip(Exception):
    """A file left out because the corpus already has it (not an error)."""


def _read(path: Path, settings: Settings) -> tuple[Article, bytes]:
    if path.suffix.lower() not in SUFFIXES:
        kind = path.suffix or "sans extension"
        raise RagError(f"type non pris en charge ({kind} ; acceptés : {', '.join(SUFFIXES)})")
    article = load_article(path, max_bytes(settings))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RagError(f"illisible ({exc.strerror})") from None
    if hashlib.sha256(data).hexdigest() != article.sha256:
        raise RagError("modifié pendant la lecture : réessayez")
    return article, data


def _status(article: Article, data: bytes, corpus: Existing) -> str:
    """ADDED or UPDATED, or raises why the file cannot or need not be placed."""
    name = article.path
    if name in corpus.placed:
        raise RagError(f"même nom qu'un autre fichier de cet ajout ({corpus.placed[name]}) : renommez l'un des deux")
    owner = corpus.by_id.get(article.doc_id)
    if owner is not None and owner != name:
        raise RagError(f"même identifiant « {article.doc_id} » que {owner} : renommez le fichier")
    target = corpus.folder / name
    if name in corpus.names and _same_bytes(target, data):
        raise _Skip("déjà dans le corpus, identique")
    if name in corpus.names and not corpus.replace:
        raise RagError("un autre fichier de ce nom est déjà dans le corpus : renommez celui-ci")
    twin = corpus.by_text.get(_text_key(article))
    if twin is not None and twin != name:
        raise _Skip(f"doublon de {twin} (même texte)")
    return UPDATED if name in corpus.names else ADDED


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def _text_key(article: Article) -> str:
    return hashlib.sha256(article.text.encode("utf-8")).hexdigest()


def _copy(data: bytes, target: Path) -> None:
    """Write the file whole or not at all (a temporary name no corpus reader takes)."""
    try:
        write_atomic(target, data)
    except OSError as exc:
        raise RagError(f"Impossible d'écrire {target.name} dans le corpus ({exc.strerror}).") from None


def format_report(report: AddReport) -> str:
    """The French report of `rag add` and the upload box: one line per file, then the index."""
    lines = []
    for status in (ADDED, UPDATED, SKIPPED):
        done = [o for o in report.outcomes if o.status == status]
        if done:
            lines.append(f"{_plural(len(done), 'fichier')} {_agree(status, len(done))} :")
            lines += [f"  - {o.name}" + (f" : {o.reason}" if o.reason else "") for o in done]
    lines.append(_index_line(report))
    return "\n".join(lines)


def _index_line(report: AddReport) -> str:
    if report.index is None:
        return "Corpus inchangé : l'index n'a pas été refait."
    m = report.index.manifest
    line = f"Index à jour : {m['articles']} articles, {m['passages']} passages."
    names = {o.name for o in report.changed}
    for group in m.get("duplicates", []):
        mine = [doc for doc in group if report.index.article(doc).path in names]
        if mine:
            line += f"\nMême histoire que d'autres articles : {', '.join(group)} (repris par {len(group)} articles)."
    for name, skip in m.get("skipped", {}).items():
        line += f"\nDans le corpus mais pas dans l'index : {name} ({skip['reason']})."
    return line


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n > 1 else ''}"


def _agree(status: str, n: int) -> str:
    """« ajouté » -> « ajoutés »; « mis à jour » stays."""
    return status + "s" if n > 1 and status != UPDATED else status

