"""Reading articles from the corpus folder and cleaning scraped-page noise off them.

A scraped news page is an article body wrapped in site furniture: navigation labels
(« fermer », « Réseaux sociaux »), the title repeated, « Lire aussi » teasers to other
articles, and, after the body, ratings, share buttons, author bios, tags, comment
sections and « Leave a Reply » forms. Cleaning keeps the body whole and drops the rest:

1. normalise the characters (NFKC, typographic spaces and apostrophes, emoji, glued
   sentences such as « divulguée.Selon »);
2. take the date and title from the top of the page;
3. cut the page at a footer: a short marker line (rating, share, tags, author box,
   comments) in the last two thirds, followed only by furniture (names, links, other
   markers, comments, and at most one paragraph: an author's bio); a paragraph that
   merely begins with « Partagez », or a marker followed by more of the article, is body;
4. drop noise lines anywhere: labels, repeated lines, and teasers, which look like
   links: an unpunctuated one-sentence line of title length, or any unpunctuated line
   right after a « Lire aussi » label. A long paragraph that lost its final period is body.

Files are read by rag/formats.py (.txt, .md, .html, .pdf). A file that cannot be read or
cleans to nothing is skipped with a warning and the rest of the corpus loads. Doc ids
are unique: a `.txt` file's id is its stem (`002_dbf84de5b56e379c`), any other file's is
its whole name (`rapport.pdf`), so `a.txt` and `a.md` are two articles; two files that
would still share an id (`a.txt` and `a.TXT`) keep the first by name, the other is
skipped with the reason. The cleaned text is what passages and their offsets refer to.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import RagError
from rag.files import sha256_file
from rag.formats import SUFFIXES, read_raw
from rag.records import Article

log = logging.getLogger(__name__)

_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000\t]+")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\ufe0f]")
_APOSTROPHES = re.compile(r"[\u2019\u2018\u02bc\u2032]")
# « divulguée.Selon », « déclaré :Ainsi »: a sentence glued to the next one; a word that
# goes on with a dot and more letters is a file or host name (« changelog.Debian.gz »)
_GLUED = re.compile(r"(?:(?<=[a-zà-ÿ)»\"])[.!?:]|(?<= )[:;!?])(?=[A-ZÀ-Ý«])(?![A-ZÀ-Ý][\w-]*\.\w)")
_DATE_TOP = re.compile(r"^date\s+(\d{4}-\d{2}(?:-\d{2})?)\s*", re.IGNORECASE)
_DATE_LINE = re.compile(
    r"^(?:publié|mis à jour)\s+le\s+(\d{1,2}\s+\w+\s+\d{4}|\d{4}-\d{2}-\d{2})\b.*$", re.IGNORECASE
)

# Lines that are site furniture wherever they appear.
_LABELS = {"fermer", "réseaux sociaux", "commentaire", "commentaires", "en bref", "menu",
           "accueil", "partager", "publicité", "sommaire"}
_NOISE_LINE = re.compile(
    r"^(?:lire aussi|à lire aussi|à lire également|a lire également|voir aussi|sur le même sujet)\b"
    r"|^\d[\d.,]*/5\s*\(\d+\)$",
    re.IGNORECASE,
)
# Lines where the article is over: everything from here on is footer.
_FOOTER = re.compile(
    r"^(?:ça vous a plu\b|partagez\b|partager cet article|tags?\s*:|author avatar$|the author\b"
    r"|à propos de l'auteur|leave a reply$|laisser un commentaire|publiez votre avis$"
    r"|\d+ commentaires?$|plus de bloomberg opinion\b|cette colonne ne reflète pas"
    r"|d'autres histoires comme celle-ci|recent news$|articles? similaires?$)",
    re.IGNORECASE,
)
# Lines after which the rest of the page is reader comments, whatever their length.
_COMMENTS = re.compile(r"^(?:\d+ commentaires?$|leave a reply$|laisser un commentaire|publiez votre avis$)",
                       re.IGNORECASE)
_READ_ALSO = re.compile(r"^(?:lire aussi|à lire aussi|à lire également|a lire également|voir aussi)\W*$",
                        re.IGNORECASE)
FOOTER_MARKER_CHARS = 80  # a footer marker is a short line: « Partagez maintenant. », « Tags : … »
FOOTER_LONG_LINE = 150  # past a marker, a line this long is a paragraph; two paragraphs: the article goes on
TEASER_MIN_CHARS = 80  # an unpunctuated line shorter than this is a heading
TEASER_MAX_CHARS = 160  # a link-like teaser is about a title long; a longer line is a paragraph
TEASER_NEAR_MAX_CHARS = 300  # right after « Lire aussi », an unpunctuated line up to this long
_END_PUNCT = ".!?…:;»\")"


@dataclass(frozen=True)
class Skipped:
    """A corpus file that is not in the index, and why (French, for the user)."""

    name: str
    reason: str
    sha256: str | None = None


@dataclass(frozen=True)
class Corpus:
    articles: list[Article]
    skipped: list[Skipped] = field(default_factory=list)


def doc_id_for(path: Path) -> str:
    """A `.txt` file's stem (the ids of existing indexes and eval/reference.jsonl), any
    other file's whole name, so that `a.txt` and `a.md` are two articles."""
    return path.stem if path.suffix.lower() == ".txt" else path.name


def corpus_files(folder: Path) -> list[Path]:
    """The files of the corpus folder with a supported suffix, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RagError(f"Dossier des articles introuvable : {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def read_corpus(folder: Path, max_bytes: int | None = None) -> Corpus:
    """Every readable article of `folder`, and the files skipped with their reason."""
    files = corpus_files(folder)
    if not files:
        raise RagError(f"Aucun article ({', '.join(SUFFIXES)}) dans {folder}")
    articles, skipped, owners = [], [], {}
    for path in files:
        try:
            article = load_article(path, max_bytes)
        except RagError as exc:
            skipped.append(Skipped(path.name, str(exc), _file_sha256(path)))
            continue
        if article.doc_id in owners:
            reason = f"même identifiant « {article.doc_id} » que {owners[article.doc_id]}"
            skipped.append(Skipped(path.name, reason, article.sha256))
            continue
        owners[article.doc_id] = path.name
        articles.append(article)
    return Corpus(articles, skipped)


def load_corpus(folder: Path, max_bytes: int | None = None) -> list[Article]:
    """The readable articles of `folder`; each skipped file is logged as a warning."""
    corpus = read_corpus(folder, max_bytes)
    for skip in corpus.skipped:
        log.warning("Fichier ignoré : %s (%s)", skip.name, skip.reason)
    if not corpus.articles:
        raise RagError(f"Aucun article lisible dans {folder} : {describe(corpus.skipped)}")
    return corpus.articles


def describe(skipped: list[Skipped]) -> str:
    return "; ".join(f"{s.name} ({s.reason})" for s in skipped)


def load_article(path: Path, max_bytes: int | None = None) -> Article:
    """One file read and cleaned; a RagError in French says why it cannot be."""
    raw = _read_bytes(path, max_bytes)
    found = read_raw(raw, path.suffix)
    title, date, body = clean(found.text)
    return Article(
        doc_id=doc_id_for(path),
        path=path.name,
        title=found.title or title,
        date=found.date or date,
        text=body,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _read_bytes(path: Path, max_bytes: int | None) -> bytes:
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise RagError(f"trop volumineux ({megabytes(size)}, limite {megabytes(max_bytes)})")
        if size == 0:
            raise RagError("fichier vide")
        return path.read_bytes()
    except OSError as exc:
        raise RagError(f"illisible ({exc.strerror or type(exc).__name__})") from None


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} Mo".replace(".", ",")


def _file_sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None

def clean(raw: str) -> tuple[str, str | None, str]:
    """(title, date, body) of a scraped page; body paragraphs are separated by blank lines."""
    lines = [normalise(line) for line in raw.splitlines()]
    lines = [line for line in lines if line]
    date = None
    if lines and (m := _DATE_TOP.match(lines[0])):
        date, lines[0] = m.group(1), lines[0][m.end():].strip()
    lines = [line for line in lines[:_footer_start(lines)] if line]
    kept: list[str] = []
    seen: set[str] = set()
    for position, line in enumerate(lines):
        if m := _DATE_LINE.match(line):
            date = date or m.group(1)
            continue
        if line.lower().rstrip(" .:") in _LABELS or _NOISE_LINE.match(line) or line in seen:
            continue
        if kept and _is_teaser(lines, position):
            continue
        seen.add(line)
        kept.append(line)
    if not kept:
        raise RagError("vide après nettoyage")
    prose = [line for line in kept if not line.startswith("•")] or kept
    title = prose[0] if _is_heading(prose[0]) else _short(prose[0])
    return title, date, "\n\n".join(kept)


def _footer_start(lines: list[str]) -> int:
    """Where the footer begins: the first short marker line past the first third of the
    page that only furniture follows; len(lines) when the page has none."""
    for position in range(len(lines) // 3 + 1, len(lines)):
        line = lines[position]
        if len(line) <= FOOTER_MARKER_CHARS and _FOOTER.match(line) and _only_furniture(lines[position + 1:]):
            return position
    return len(lines)


def _only_furniture(tail: list[str]) -> bool:
    """Short lines, other footer markers, comments, and at most one paragraph (a bio)."""
    paragraphs = 0
    for line in tail:
        if _COMMENTS.match(line):
            break
        paragraphs += not _FOOTER.match(line) and _is_prose(line)
    return paragraphs <= 1


def _is_prose(line: str) -> bool:
    """A paragraph rather than a label, a name or a link: long, or a sentence of some words."""
    return len(line) >= FOOTER_LONG_LINE or (line.endswith((".", "!", "?", "…")) and len(line.split()) >= 8)


def normalise(line: str) -> str:
    """One line with Unicode noise flattened: spaces, apostrophes, emoji, glued sentences."""
    line = unicodedata.normalize("NFKC", line)
    line = _INVISIBLE.sub("", line)
    line = _APOSTROPHES.sub("'", line)
    line = "".join(c for c in line if not _is_emoji(c))
    line = _SPACES.sub(" ", line)
    line = _GLUED.sub(lambda m: m.group(0) + " ", line)
    line = re.sub(r" {2,}", " ", line).strip()
    line = re.sub(r"(?<=\w) +(?=[.,](?:\s|$))", "", line)  # « Capitole . » -> « Capitole. »
    # one bullet style; « -I/usr », « --purge » are options, not bullets
    line = re.sub(r"^(?:[•·▪●◦]\s*|[*-](?:\s+|$))", "• ", line)
    return "" if line == "•" else line


def _is_emoji(c: str) -> bool:
    code = ord(c)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF


def _is_heading(line: str) -> bool:
    return len(line) <= 200


def _is_teaser(lines: list[str], position: int) -> bool:
    """An unpunctuated line that looks like a link to another article: one sentence of
    title length, or right after a « Lire aussi » label. Longer unpunctuated lines are
    paragraphs that lost their final period, and stay."""
    line = lines[position]
    if len(line) < TEASER_MIN_CHARS or line.endswith(tuple(_END_PUNCT)) or line.startswith("•"):
        return False
    if position and _READ_ALSO.match(lines[position - 1]):
        return len(line) <= TEASER_NEAR_MAX_CHARS
    return len(line) <= TEASER_MAX_CHARS and not re.search(r"[.!?…]\s+[«\"A-ZÀ-Ý]", line)


def _short(text: str, limit: int = 90) -> str:
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "…"
