"""Reading articles from the corpus folder and cleaning scraped-page noise off them.

A scraped news page is an article body wrapped in site furniture: navigation labels
(« fermer », « Réseaux sociaux »), the title repeated, « Lire aussi » teasers to other
articles, and, after the body, ratings, share buttons, author bios, tags, comment
sections and « Leave a Reply » forms. Cleaning keeps the body whole and drops the rest:

1. normalise the characters (NFKC, typographic spaces and apostrophes, emoji, glued
   sentences such as « divulguée.Selon »);
2. take the date and title from the top of the page;
3. drop noise lines anywhere (teasers, labels, repeated lines);
4. cut the page at the first footer marker (rating, share, tags, author box, comments).

`.txt`, `.md` and `.html` files are read; the cleaned text is what passages and their
character offsets refer to.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

from rag.errors import RagError
from rag.records import Article

SUFFIXES = (".txt", ".md", ".html", ".htm")

_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000\t]+")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\ufe0f]")
_APOSTROPHES = re.compile(r"[\u2019\u2018\u02bc\u2032]")
# « divulguée.Selon », « déclaré :Ainsi »: a sentence glued to the next one
_GLUED = re.compile(r"(?:(?<=[a-zà-ÿ)»\"])[.!?:]|(?<= )[:;!?])(?=[A-ZÀ-Ý«])")
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
TEASER_MIN_CHARS = 80  # an unpunctuated line this long is a link to another article, not a heading
_END_PUNCT = ".!?…:;»\")"


def load_corpus(folder: Path) -> list[Article]:
    """Every readable article in `folder`, sorted by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RagError(f"Dossier des articles introuvable : {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not files:
        raise RagError(f"Aucun article (.txt, .md, .html) dans {folder}")
    return [load_article(p) for p in files]


def load_article(path: Path) -> Article:
    raw = path.read_bytes()
    text = _decode(raw, path)
    suffix = path.suffix.lower()
    markup_title = None
    if suffix in (".html", ".htm"):
        markup_title, text = _html_to_text(text)
    elif suffix == ".md":
        markup_title, text = _markdown_to_text(text)
    title, date, body = clean(text)
    return Article(
        doc_id=path.stem,
        path=path.name,
        title=markup_title or title,
        date=date,
        text=body,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def clean(raw: str) -> tuple[str, str | None, str]:
    """(title, date, body) of a scraped page; body paragraphs are separated by blank lines."""
    lines = [normalise(line) for line in raw.splitlines()]
    lines = [line for line in lines if line]
    date = None
    if lines and (m := _DATE_TOP.match(lines[0])):
        date, lines[0] = m.group(1), lines[0][m.end():].strip()
    kept: list[str] = []
    seen: set[str] = set()
    for position, line in enumerate(lines):
        low = line.lower()
        if position > len(lines) // 3 and _FOOTER.match(low):
            break
        if m := _DATE_LINE.match(line):
            date = date or m.group(1)
            continue
        if low.rstrip(" .:") in _LABELS or _NOISE_LINE.match(low) or line in seen:
            continue
        if kept and _is_teaser(line):
            continue
        seen.add(line)
        kept.append(line)
    if not kept:
        raise RagError("Article vide après nettoyage.")
    prose = [line for line in kept if not line.startswith("•")] or kept
    title = prose[0] if _is_heading(prose[0]) else _short(prose[0])
    return title, date, "\n\n".join(kept)


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
    line = re.sub(r"^[•·▪●◦*-]\s*", "• ", line)  # one bullet style
    return "" if line == "•" else line


def _is_emoji(c: str) -> bool:
    code = ord(c)
    return code >= 0x1F000 or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF


def _is_heading(line: str) -> bool:
    return len(line) <= 200


def _is_teaser(line: str) -> bool:
    """A long line with no final punctuation, alone: a link to another article."""
    return len(line) >= TEASER_MIN_CHARS and not line.endswith(tuple(_END_PUNCT)) \
        and not line.startswith("•")


def _short(text: str, limit: int = 90) -> str:
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1].rsplit(" ", 1)[0] + "…"


def _decode(raw: bytes, path: Path) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RagError(f"Fichier illisible (encodage inconnu) : {path}")


def _markdown_to_text(text: str) -> tuple[str | None, str]:
    title = None
    out = []
    for line in text.splitlines():
        if m := re.match(r"^#{1,6}\s+(.*)", line):
            line = m.group(1)
            title = title or line.strip()
        line = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", line)  # images
        line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # links keep their text
        line = re.sub(r"(\*\*|__|\*|_|`)(\S.*?\S|\S)\1", r"\2", line)
        out.append(line)
    return title, "\n".join(out)


class _HTMLText(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section",
              "article", "header", "footer", "blockquote", "ul", "ol", "title"}
    SKIP = {"script", "style", "noscript", "nav", "aside", "form", "iframe", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        self._in_title = tag in ("title", "h1") and self.title is None

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")
        self._in_title = False

    def handle_data(self, data):
        if self.skipping:
            return
        if self._in_title and data.strip():
            self.title = " ".join(data.split())
            return  # the title goes in Article.title, not twice in the body
        self.parts.append(data)


def _html_to_text(text: str) -> tuple[str | None, str]:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    return parser.title, html.unescape("".join(parser.parts))
