"""Turning a file of each supported format into plain text, with the title and date the
file itself states.

- `.txt`: the text as written (UTF-8, UTF-16 with its mark, else Windows-1252);
- `.md`: headings, links and emphasis reduced to their words, the first heading as title;
- `.html` / `.htm`: the main text found by trafilatura (menus, scripts, styles, comments
  and sidebars left out), title and date from the page's metadata; a page too small for
  trafilatura is read by a plain tag stripper that skips scripts, styles and navigation;
- `.pdf`: pypdf's text of each page, lines re-joined into paragraphs (a PDF breaks lines
  where the page does, not where sentences end), title and creation date from the
  document's metadata when present.

A file that is not what its name says (binary bytes in a `.txt`, a damaged PDF) raises
a RagError naming the problem in French. Cleaning the text (page furniture, teasers,
footers) is rag/articles.py's job; scanned PDFs (pictures of text, no OCR) and other
formats (.docx, .odt, .epub) are left out.
"""

from __future__ import annotations

import html
import io
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser

from rag.errors import RagError

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# left out of an HTML page before trafilatura looks for its main text (it keeps them on small pages);
# a table of contents (class or id « toc », DocBook's and MediaWiki's name) repeats the headings
PRUNE = ["//nav", "//aside", "//form", "//noscript", "//iframe", "//template",
         "//*[@id='toc' or contains(concat(' ', normalize-space(@class), ' '), ' toc ')]"]
BINARY_SHARE = 0.01  # control characters beyond this share: bytes, not text
_SENTENCE_END = tuple(".!?…:;»\")")
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")  # HTML's whitespace; a no-break space is text
_PREFORMATTED = {"pre", "textarea", "listing", "plaintext", "xmp"}


@dataclass(frozen=True)
class Raw:
    """A file's text before cleaning, and what its format says about it."""

    text: str
    title: str | None = None
    date: str | None = None  # "YYYY-MM-DD" or "YYYY-MM"


def read_raw(data: bytes, suffix: str) -> Raw:
    """The text of a file's bytes, read as its suffix says."""
    suffix = suffix.lower()
    if suffix == ".pdf":
        return pdf_text(data)
    text = decode(data)
    if suffix in (".html", ".htm"):
        return html_text(text)
    if suffix == ".md":
        return markdown_text(text)
    return Raw(text)


def decode(data: bytes) -> str:
    """Bytes to text: a UTF-16 byte-order mark, else UTF-8, else Windows-1252; refuses binary."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        candidates = ("utf-16",)
    elif b"\x00" in data[:65536]:  # text never holds NUL bytes; images, archives, executables do
        raise RagError("fichier binaire, pas du texte")
    else:
        candidates = ("utf-8-sig", "cp1252")
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if len(_CONTROL.findall(text)) > BINARY_SHARE * max(len(text), 1):
            raise RagError("fichier binaire, pas du texte")
        return text
    raise RagError("encodage inconnu (ni UTF-8, ni UTF-16, ni Windows-1252)")


def markdown_text(text: str) -> Raw:
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
    return Raw("\n".join(out), title)


def html_text(text: str) -> Raw:
    """The page's main text by trafilatura, or by the plain stripper when it finds none.

    Whitespace is read as a browser does: a line break inside a paragraph is a space, only
    <pre> keeps its lines. trafilatura favours recall (when unsure, more text: the page's
    furniture is rag/articles.py's to clean). Its date search stays in the markup (meta
    tags, <time>, structured data) and leaves out the free text, where a version number
    or a date in an example passed for the page's date (htmldate still accepts a full
    timestamp, « 2005-12-30 18:10:33 », found in the text)."""
    import trafilatura

    try:
        tree = trafilatura.load_html(text)
        if tree is not None:
            _collapse_whitespace(tree)
            _drop_empty_anchors(tree)
            _flatten_code(tree)
            _frame_the_body(tree)
        doc = trafilatura.bare_extraction(
            tree if tree is not None else text, with_metadata=True, include_comments=False,
            include_tables=True, include_images=False, favor_recall=True, prune_xpath=PRUNE,
            date_extraction_params={"original_date": True, "extensive_search": False,
                                    "max_date": datetime.now().strftime("%Y-%m-%d")})
    except Exception as exc:  # a parser failure on odd markup: the plain stripper still reads it
        log.warning("trafilatura n'a pas pu lire la page (%s) : lecture simple", exc)
        doc = None
    title, body = _strip_tags(text)
    if doc is None or not (doc.text or "").strip():
        return Raw(body, title)
    return Raw(doc.text, doc.title or title, _day(doc.date))


def _collapse_whitespace(tree) -> None:
    """Each run of HTML whitespace (space, tab, line break) in the tree's text as one space,
    outside <pre> and <textarea>, whose text is shown as written."""
    for element in tree.iter():
        inside = any(_preformatted(a) for a in element.iterancestors())
        if element.text and not inside and not _preformatted(element):
            element.text = _HTML_SPACE.sub(" ", element.text)
        if element.tail and not inside:
            element.tail = _HTML_SPACE.sub(" ", element.tail)


def _drop_empty_anchors(tree) -> None:
    """Anchors with nothing inside (`<a id="q1"></a>`, a target for links) left out, the text
    after them kept. trafilatura drops a heading's text that follows such a child
    (main_extractor.handle_titles strips the consumed child with its tail): DocBook opens
    every heading with one, so every question of a FAQ went."""
    for anchor in list(tree.iter("a")):
        if len(anchor) == 0 and not (anchor.text or "").strip() and anchor.getparent() is not None:
            anchor.drop_tag()  # lxml.html: the text and tail stay where they were


def _flatten_code(tree) -> None:
    """The markup inside <code> (an <em> around a placeholder, a mail link) reduced to its text:
    trafilatura moves a nested element's text out of its place (« linux-source-<em>version</em> »
    came out as « linux-source- … versionversion »). Line breaks (<br>) stay."""
    from lxml import etree

    for code in list(tree.iter("code")):
        inner = {child.tag for child in code.iterdescendants() if isinstance(child.tag, str) and child.tag != "br"}
        if inner:
            etree.strip_tags(code, *inner)


def _frame_the_body(tree) -> None:
    """A page that names no main part (no <main>, no <article>) gets its whole body as one:
    trafilatura then reads it block by block, headings and definition terms included, and
    still leaves out navigation, footers and link lists. Without a frame it only gathers
    loose paragraphs (its recovery pass), leaving out every heading and <dt>."""
    body = tree.find(".//body")
    if body is None or tree.find(".//main") is not None or tree.find(".//article") is not None:
        return
    main = body.makeelement("main", {})
    main.text, body.text = body.text, None
    for child in list(body):
        main.append(child)
    body.append(main)


def _preformatted(element) -> bool:
    return isinstance(element.tag, str) and element.tag.lower() in _PREFORMATTED


def _day(date: str | None) -> str | None:
    found = re.match(r"\d{4}-\d{2}(?:-\d{2})?", date or "")
    return found.group(0) if found else None


class _HTMLText(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section",
              "article", "header", "footer", "blockquote", "ul", "ol", "title"}
    SKIP = {"script", "style", "noscript", "nav", "aside", "form", "iframe", "svg", "template"}

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


def _strip_tags(text: str) -> tuple[str | None, str]:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    return parser.title, html.unescape("".join(parser.parts))


def pdf_text(data: bytes) -> Raw:
    """Each page's text, re-joined into paragraphs; title and date from the metadata."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise RagError("PDF protégé par un mot de passe")
        pages = [reflow(page.extract_text() or "") for page in reader.pages]
        meta = reader.metadata
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise RagError(f"PDF illisible ({type(exc).__name__})") from None
    if not any(pages):
        raise RagError("PDF sans texte (pages scannées ? la reconnaissance de caractères n'est pas faite)")
    return Raw("\n\n".join(p for p in pages if p), _meta_title(meta), _meta_date(meta))


def _meta_title(meta) -> str | None:
    title = str(meta.title).strip() if meta is not None and meta.title else ""
    return title or None


def _meta_date(meta) -> str | None:
    try:
        created = meta.creation_date if meta is not None else None
    except (ValueError, TypeError):  # a malformed /CreationDate string
        return None
    return created.strftime("%Y-%m-%d") if created else None


def reflow(page: str) -> str:
    """A PDF page's lines joined into paragraphs: a line ending a sentence ends its
    paragraph when the next one starts like a new one; a word cut by a hyphen is rejoined."""
    paragraphs: list[str] = []
    current = ""
    for line in (raw.strip() for raw in page.splitlines()):
        if not line:
            current = _flush(paragraphs, current)
        elif not current:
            current = line
        elif current.endswith(_SENTENCE_END) and re.match(r"[«\"(•·\-–—\dA-ZÀ-Ý]", line):
            paragraphs.append(current)
            current = line
        elif re.search(r"\w-$", current) and line[:1].islower():
            current = current[:-1] + line
        else:
            current = f"{current} {line}"
    _flush(paragraphs, current)
    return "\n".join(paragraphs)


def _flush(paragraphs: list[str], current: str) -> str:
    if current:
        paragraphs.append(current)
    return ""
