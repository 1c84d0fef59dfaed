"""Test documents made on the spot: PDFs with real text (pypdf objects, Helvetica in
WinAnsi, so accents survive), HTML pages with scripts and menus, broken files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

ARTICLE_HTML = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<title>Le zorglub ouvre une boulangerie à Lyon</title>
<meta property="article:published_time" content="2025-03-14T08:00:00+01:00">
<style>body { color: red } .x::after { content: "STYLE-FUITE" }</style>
<script>var fuite = "SCRIPT-FUITE"; document.write("SCRIPT-FUITE");</script>
</head><body>
<nav><a href="/">Accueil</a> <a href="/tech">Tech</a> <a href="/sport">Sport</a> MENU-FUITE</nav>
<article><h1>Le zorglub ouvre une boulangerie à Lyon</h1>
<p>Le zorglub, célèbre créature des bandes dessinées, a ouvert mardi une boulangerie dans le
quartier de la Croix-Rousse à Lyon, selon la mairie du quatrième arrondissement.</p>
<p>La boutique vend chaque matin trois cents croissants et une baguette au sarrasin que le
zorglub pétrit lui-même avant l'aube, a précisé son associée, Mme Lefèvre.</p>
<p>Les riverains saluent l'arrivée d'un commerce de proximité dans une rue qui avait perdu
sa dernière boulangerie en 2019.</p>
</article>
<aside>Les plus lus : ASIDE-FUITE</aside>
<footer>© Journal du zorglub — mentions légales</footer>
<script>console.log("SCRIPT-FUITE")</script>
</body></html>
"""


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None,
             created: datetime | None = None) -> Path:
    """A PDF whose pages hold these lines of text (an empty page list item: a blank page)."""
    from pypdf import PdfWriter
    from pypdf.generic import (ArrayObject, DecodedStreamObject, DictionaryObject, NameObject,
                               NumberObject)

    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"), NameObject("/Encoding"): NameObject("/WinAnsiEncoding")}))
    for lines in pages:
        page = writer.add_blank_page(width=595, height=842)
        stream = DecodedStreamObject()
        stream.set_data(_content(lines))
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
            {NameObject("/F1"): font})})
        page[NameObject("/MediaBox")] = ArrayObject([NumberObject(n) for n in (0, 0, 595, 842)])
    meta = {}
    if title:
        meta["/Title"] = title
    if created:
        meta["/CreationDate"] = created.strftime("D:%Y%m%d%H%M%S")
    if meta:
        writer.add_metadata(meta)
    with open(path, "wb") as out:
        writer.write(out)
    return path


def _content(lines: list[str]) -> bytes:
    ops = ["BT", "/F1 11 Tf", "14 TL", "50 800 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("cp1252")


def article_pdf_lines() -> list[list[str]]:
    """Two pages of a French article, lines wrapped as a PDF wraps them, a word hyphenated."""
    return [[
        "Le conseil municipal de Grenoble a voté jeudi la création d'un réseau de",
        "trente fontaines publiques alimentées par l'eau des montagnes voisines.",
        "Le projet coûtera quatre millions d'euros sur trois ans, selon l'adjointe",
        "chargée de l'eau, qui a présenté le plan devant une salle comble.",
    ], [
        "Les premières fontaines seront installées au printemps dans les parcs du",
        "centre-ville, puis dans les quartiers sud où les associations réclament",
        "depuis longtemps des points d'eau gratuits pendant les épisodes de cani-",
        "cule, de plus en plus fréquents dans la cuvette grenobloise.",
    ]]
