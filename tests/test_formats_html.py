"""HTML read as a browser shows it: whitespace inside a paragraph is a space, <pre> keeps
its lines; the date is the one the markup states, not a number found in the text."""

from __future__ import annotations

from pathlib import Path

from rag.articles import load_article
from rag.formats import html_text

PAGE = """<html><head><title>Notes d'installation</title></head><body><main>
<h1>Notes d'installation</h1>
<p>Pour reconfigurer les paquets installés à moitié, lancez la commande
<code>dpkg
--configure</code> puis redémarrez le service concerné, comme
indiqué dans le fichier <code>changelog.Debian.gz</code> du paquet.</p>
<pre>make
  -I/usr/src/linux/include</pre>
<p>Ce paquet est sorti en version 2.2.1.2-1999.05.13 et il a été mis à jour plusieurs fois
depuis, sans que la documentation le dise.</p>
</main></body></html>"""


def test_a_line_break_inside_a_paragraph_is_a_space_and_pre_keeps_its_lines():
    text = html_text(PAGE).text
    assert ("Pour reconfigurer les paquets installés à moitié, lancez la commande dpkg --configure puis "
            "redémarrez le service concerné, comme indiqué dans le fichier") in text
    assert "make\n  -I/usr/src/linux/include" in text


def test_a_paragraph_with_line_breaks_is_one_paragraph_after_cleaning(tmp_path: Path):
    path = tmp_path / "notes.html"
    path.write_text(PAGE, "utf-8")
    paragraphs = load_article(path).text.split("\n\n")
    assert any(p.startswith("Pour reconfigurer") and p.endswith("du paquet.") for p in paragraphs)
    assert any(p.startswith("Ce paquet est sorti") and p.endswith("la documentation le dise.") for p in paragraphs)


def test_no_date_is_guessed_from_the_body_text():
    assert html_text(PAGE).date is None
    dated = PAGE.replace("<head>", '<head><meta property="article:published_time" content="2025-03-14T08:00:00+01:00">')
    assert html_text(dated).date == "2025-03-14"
