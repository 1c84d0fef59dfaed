"""The chat's upload box: the same `rag add`, the index reloaded for the next question,
in the generation queue so it never runs beside an answer of the in-process model."""

from __future__ import annotations

from pathlib import Path

from documents import ARTICLE_HTML
from rag import chat_html
from rag.app import build_app
from rag.index import build_index
from rag.pipeline import Pipeline

QUESTION = "Combien de croissants la boulangerie du zorglub vend-elle chaque matin ?"


def handler(app, name: str):
    return next(f for f in app.fns.values() if f.name == name)


def ask(app, question: str):
    _, _, turns = handler(app, "add_turn").fn(question, [])
    return list(handler(app, "respond").fn(turns, 3, 0.0, 256, "fake"))[-1]


def test_upload_adds_files_and_the_next_question_reads_them(settings, tmp_path: Path):
    app = build_app(settings, Pipeline(settings, index=build_index(settings, log=lambda *_: None)))
    page = tmp_path / "upload" / "zorglub.html"
    page.parent.mkdir()
    page.write_text(ARTICLE_HTML, "utf-8")
    broken = tmp_path / "upload" / "image.txt"
    broken.write_bytes(b"\x00\x01\x02" * 100)
    report, status, cleared = handler(app, "upload").fn([str(page), str(broken)], "fake")
    assert "1 fichier ajouté :\n  - zorglub.html" in report and "image.txt : fichier binaire" in report
    assert "6 articles" in status and cleared is None
    assert (settings.seeds_dir / "zorglub.html").exists()
    chat, sources, _, turns = ask(app, QUESTION)
    assert turns[-1].status == "done" and "zorglub.html" in sources  # no restart needed


def test_an_upload_never_replaces_a_corpus_article(settings, tmp_path: Path):
    app = build_app(settings, Pipeline(settings, index=build_index(settings, log=lambda *_: None)))
    seed = next(settings.seeds_dir.glob("002_*.txt"))
    before = seed.read_bytes()
    fake = tmp_path / seed.name
    fake.write_text("Meta ne dépensera rien en IA, selon un visiteur malveillant.", "utf-8")
    report = handler(app, "upload").fn([str(fake)], "fake")[0]
    assert "un autre fichier de ce nom est déjà dans le corpus" in report and seed.read_bytes() == before


def test_upload_shares_the_generation_queue(settings):
    app = build_app(settings, Pipeline(settings, index=build_index(settings, log=lambda *_: None)))
    upload, respond = handler(app, "upload"), handler(app, "respond")
    assert upload.concurrency_id == respond.concurrency_id and upload.concurrency_limit == 1
    assert upload.queue is not False


def test_an_empty_upload_and_a_failing_one_say_so(settings, tmp_path: Path):
    app = build_app(settings, Pipeline(settings, index=build_index(settings, log=lambda *_: None)))
    assert handler(app, "upload").fn([], "fake")[0] == "Aucun fichier reçu."
    (tmp_path / "vide").mkdir()
    report = handler(app, "upload").fn([str(tmp_path / "vide")], "fake")[0]
    assert report.startswith("Erreur : Aucun fichier à ajouter")


def test_cards_say_when_a_story_is_told_by_several_articles(settings):
    from types import SimpleNamespace

    index = build_index(settings, log=lambda *_: None)
    passage = next(p for p in index.passages if p.doc_id.startswith("000_"))
    citation = SimpleNamespace(number=1, passage=passage, quote=passage.text[:40],
                               quote_start=passage.start, quote_end=passage.start + 40)
    card = chat_html.card_html(citation, index, 1)
    assert "repris par 2 articles" in card and 'title="Même histoire : 001_7964a669a5581a1c.txt"' in card
    other = next(p for p in index.passages if p.doc_id.startswith("002_"))
    assert "repris par" not in chat_html.card_html(SimpleNamespace(**{**vars(citation), "passage": other}), index, 1)
