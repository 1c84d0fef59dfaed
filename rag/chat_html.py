"""The chat's HTML: answers with clickable [n] markers, and one card per cited passage.

Every string that comes from the corpus, the model or the user goes through
`html.escape` before any tag is added around it: an article holding `<script>` or
`<b>` shows those characters as text and injects nothing. Markers [n] become links
to the card of the same turn (id `rag-src-<turn>-<n>`); a card is a <details> whose
summary shows the title, the file and the supporting sentence, and whose body is the
whole passage with that sentence in <mark>. Styles and the click behaviour are in HEAD.
"""

from __future__ import annotations

import html
import re
from typing import Sequence

from rag.chat import Turn
from rag.citations import ONE_MARKER
from rag.index import Index
from rag.records import Citation

EMPTY_SOURCES = '<p class="rag-empty">Les sources de chaque réponse s\'afficheront ici.</p>'
NO_SOURCE = "Aucune source : le corpus ne contient pas de quoi répondre à cette question."
STOPPED = "réponse interrompue"
WAITING = "En attente : une autre réponse est en cours…"
SEARCHING = "Recherche dans le corpus…"

# Goes into the page <head> (through the sources panel): card styles, and a click on a
# marker opens its card and scrolls to it instead of only jumping to the anchor.
HEAD = """
<style>
.rag-cite { font-weight: 600; text-decoration: none; cursor: pointer; }
.rag-turn { margin-bottom: 1.2em; }
.rag-turn h4 { margin: 0 0 .3em; font-size: .95em; }
.rag-query { font-size: .85em; opacity: .8; margin: 0 0 .4em; }
.rag-card { border: 1px solid var(--border-color-primary, #ccc); border-radius: 8px;
            padding: .5em .7em; margin: .4em 0; background: var(--background-fill-secondary, #fafafa); }
.rag-card summary { cursor: pointer; }
.rag-card .rag-num { font-weight: 700; }
.rag-card .rag-title { font-weight: 600; }
.rag-card .rag-file { font-family: monospace; font-size: .85em; opacity: .8; }
.rag-card .rag-copies { font-size: .85em; opacity: .8; font-style: italic; }
.rag-card .rag-quote { display: block; margin-top: .3em; font-style: italic; }
.rag-card[open] .rag-quote { display: none; }  /* the open passage shows it marked */
.rag-card .rag-passage { white-space: pre-line; margin: .5em 0 0; font-size: .9em; }
.rag-card mark { background: #ffe58a; color: inherit; padding: 0 .1em; }
.rag-flash { animation: rag-flash 1.5s ease-out; }
@keyframes rag-flash { from { box-shadow: 0 0 0 4px #f5b800; } to { box-shadow: none; } }
.rag-error { color: #b3261e; }
.rag-empty, .rag-none { opacity: .75; }
</style>
<script>
document.documentElement.lang = "fr";
document.addEventListener("click", function (event) {
  var link = event.target.closest ? event.target.closest("a.rag-cite") : null;
  if (!link) return;
  var card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  event.preventDefault();
  event.stopPropagation();
  card.open = true;
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.remove("rag-flash");
  void card.offsetWidth;
  card.classList.add("rag-flash");
}, true);
</script>
"""


def answer_html(text: str, turn: int) -> str:
    """The answer, escaped, its [n] markers turned into links to the turn's cards."""
    escaped = html.escape(text).replace("\n", "<br>")
    return ONE_MARKER.sub(lambda m: _cite_link(turn, int(m.group(1))), escaped)


def _cite_link(turn: int, n: int) -> str:
    return f'<a class="rag-cite" href="#{card_id(turn, n)}" title="Voir la source {n}">[{n}]</a>'


def card_id(turn: int, n: int) -> str:
    return f"rag-src-{turn}-{n}"


def messages(turns: Sequence[Turn]) -> list[dict]:
    """The conversation for gr.Chatbot (messages format), every text escaped."""
    out = []
    for number, turn in enumerate(turns, 1):
        out.append({"role": "user", "content": html.escape(turn.question)})
        out.append({"role": "assistant", "content": _assistant(turn, number)})
    return out


def _assistant(turn: Turn, number: int) -> str:
    if turn.status == "error":
        return f'<span class="rag-error">⚠ {html.escape(turn.text)}</span>'
    if turn.status == "queued":
        return f"<em>{WAITING}</em>"
    if turn.status == "pending" and not turn.text:
        return f"<em>{SEARCHING}</em>"
    body = answer_html(turn.text.strip(), number)
    if turn.status == "stopped":
        body = f"{body} <em>({STOPPED})</em>".strip()
    return body


def sources_html(turns: Sequence[Turn], index: Index) -> str:
    """The cards of every answered turn, newest first."""
    parts = [_turn_cards(turn, n, index) for n, turn in enumerate(turns, 1)]
    parts = [p for p in reversed(parts) if p]
    return "\n".join(parts) if parts else EMPTY_SOURCES


def _turn_cards(turn: Turn, number: int, index: Index) -> str:
    if turn.answer is None:
        return ""
    head = f"<h4>Question {number} : {html.escape(turn.question)}</h4>"
    if turn.standalone and turn.standalone != turn.question:
        head += f'<p class="rag-query">Recherche : « {html.escape(turn.standalone)} »</p>'
    cards = [card_html(c, index, number) for c in turn.answer.citations]
    body = "\n".join(cards) if cards else f'<p class="rag-none">{NO_SOURCE}</p>'
    return f'<section class="rag-turn">{head}\n{body}</section>'


def card_html(citation: Citation, index: Index, turn: int) -> str:
    """One cited passage: title, file and supporting sentence; opens on the whole passage."""
    article = index.article(citation.passage.doc_id)
    e = html.escape
    return (
        f'<details class="rag-card" id="{card_id(turn, citation.number)}">'
        f'<summary><span class="rag-num">[{citation.number}]</span> '
        f'<span class="rag-title">{e(article.title)}</span> — <span class="rag-file">{e(article.path)}</span>'
        f'{copies_html(index, article.doc_id)}'
        f'<span class="rag-quote">« <mark>{e(citation.quote.strip())}</mark> »</span></summary>'
        f'<p class="rag-passage">{passage_html(citation)}</p></details>'
    )


def copies_html(index: Index, doc_id: str) -> str:
    """« repris par N articles » when other articles tell the same story (rag/dedup.py)."""
    others = index.copies(doc_id)
    if not others:
        return ""
    names = ", ".join(index.article(d).path for d in others if d in index.articles)
    return (f' <span class="rag-copies" title="Même histoire : {html.escape(names)}">'
            f"· repris par {len(others) + 1} articles</span>")


def passage_html(citation: Citation) -> str:
    """The passage, escaped, with the supporting sentence in <mark>."""
    text = citation.passage.text
    start = citation.quote_start - citation.passage.start
    end = citation.quote_end - citation.passage.start
    if not (0 <= start < end <= len(text) and text[start:end] == citation.quote):
        start = text.find(citation.quote) if citation.quote else -1
        end = start + len(citation.quote)
    if start < 0:
        return _text(text)
    return f"{_text(text[:start])}<mark>{_text(text[start:end])}</mark>{_text(text[end:])}"


def _text(text: str) -> str:
    """Escaped, paragraphs one line apart (the card shows newlines: white-space pre-line)."""
    return re.sub(r"\n{2,}", "\n", html.escape(text))


def index_status(index: Index, llm: str) -> str:
    """One line of Markdown on the loaded index and models."""
    m = index.manifest
    return (f"**Index** : {m['articles']} articles, {m['passages']} passages · "
            f"**embeddings** : `{m['embedder']}` ({m['dim']} dimensions) · **modèle de langue** : `{llm}` · "
            f"**construit le** {_french_date(m.get('built_at', ''))}")


def _french_date(stamp: str) -> str:
    """« 2025-11-23T13:39:02+0000 » -> « 23/11/2025 à 13:39 »."""
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})", stamp)
    return f"{m[3]}/{m[2]}/{m[1]} à {m[4]}:{m[5]}" if m else (stamp or "?")
