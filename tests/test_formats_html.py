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



# DocBook's HTML (the Debian FAQ): no <main> or <article>, every heading opens with an empty
# anchor for the table of contents' links, answers under questions, definition-list terms.
# Long enough (over 2,500 characters) that trafilatura keeps its own reading of the page.
SECTION = """<div class="section"><div class="titlepage"><div><div><h2 class="title"><a id="q{n}"></a>3.{n}. {question}</h2></div></div></div>
<p>{answer}</p>{more}</div>"""
FILLER = ("Le projet publie une nouvelle version environ tous les deux ans, après une période de gel "
          "pendant laquelle seules les corrections de bogues graves entrent dans l'archive de test. ")
NOTES = ("Les notes de publication décrivent les changements de chaque version et la façon de mettre "
         "à jour un système installé, architecture par architecture, avec les problèmes connus. ")
SUPPORT = ("L'équipe de sécurité suit chaque version pendant environ trois ans, puis l'équipe du suivi "
           "à long terme prend le relais pour deux années de plus sur quelques architectures. ")
TERMS = """<div class="variablelist"><dl class="variablelist"><dt><span class="term">stable</span></dt>
<dd><p>La version publiée, testée pendant des mois avant sa sortie, recommandée en production.</p></dd>
<dt><span class="term">testing</span></dt>
<dd><p>La prochaine version stable, qui reçoit les paquets venus d'unstable après quelques jours.</p></dd></dl></div>"""
QUESTIONS = [("Quelle version de Debian choisir pour un serveur ?", "La version stable. " + FILLER * 4, TERMS),
             ("Peut-on mélanger les versions de Debian ?", "Oui.",
              "<p>Mais un système mélangé reçoit moins de tests que chacune des versions qu'il assemble.</p>"),
             ("Combien de temps une version est-elle suivie ?", SUPPORT * 4, ""),
             ("Où trouver les notes de publication ?", NOTES * 4, "")]
DOCBOOK = ("""<html><head><title>Chapitre 3. Choisir une distribution</title></head><body>
<div class="navheader"><table summary="Navigation header"><tr><th>Chapitre 3. Choisir une distribution</th></tr>
<tr><td><a accesskey="p" href="a.html">Précédent</a></td><td><a accesskey="n" href="b.html">Suivant</a></td></tr></table></div>
<div class="chapter"><div class="titlepage"><div><div><h1 class="title"><a id="choosing"></a>Chapitre 3. Choisir une distribution</h1></div></div></div>
<div class="toc"><p><strong>Table des matières</strong></p><dl class="toc">"""
           + "".join(f'<dt><span class="section"><a href="#q{n}">3.{n}. {q}</a></span></dt>'
                     for n, (q, _, _) in enumerate(QUESTIONS, 1))
           + """</dl></div><p>Ce chapitre aide à choisir entre les versions de Debian que le projet maintient.</p>"""
           + "".join(SECTION.format(n=n, question=q, answer=a, more=m) for n, (q, a, m) in enumerate(QUESTIONS, 1))
           + """</div><div class="navfooter"><table summary="Navigation footer"><tr><td><a accesskey="p" href="a.html">Précédent</a></td>
<td><a accesskey="h" href="index.html">Début</a></td><td><a accesskey="n" href="b.html">Suivant</a></td></tr></table></div>
</body></html>""")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_a_heading_opening_with_an_empty_anchor_keeps_its_text():
    page = DOCBOOK.replace("<body>", "<body><main>").replace("</body>", "</main></body>")
    lines = _lines(html_text(page).text)
    assert "3.2. Peut-on mélanger les versions de Debian ?" in lines
    assert "3.4. Où trouver les notes de publication ?" in lines


def test_a_page_without_main_or_article_keeps_its_headings_and_terms():
    text = html_text(DOCBOOK).text
    assert len(text) > 2500
    lines = _lines(text)
    question = "3.2. Peut-on mélanger les versions de Debian ?"
    assert question in lines and lines[lines.index(question) + 1] == "Oui."  # the answer keeps its question
    assert all(f"3.{n}. {q}" in lines for n, (q, _, _) in enumerate(QUESTIONS, 1))
    assert {"stable", "testing"} <= {line.lstrip("-• ") for line in lines}  # the definition list's terms
    assert text.count(question) == 1  # the table of contents stays out
    assert "Table des matières" not in text and "Précédent" not in text  # nor the navigation


def test_markup_inside_code_stays_in_place():
    paragraph = ("<p>Les sources du noyau viennent d'un paquet <code>linux-source-<em><code>version</code></em></code> "
                 "(où <em><code>version</code></em> indique la version du noyau).</p>")  # DocBook's placeholder
    page = DOCBOOK.replace("<body>", "<body><main>").replace("</body>", "</main></body>")
    text = html_text(page.replace('</div><div class="navfooter">', paragraph + '</div><div class="navfooter">')).text
    assert "un paquet linux-source-version (où version indique la version du noyau)." in text
