"""`rag add`: a user's files checked, copied into the corpus under their own names, the
index updated; a report of what was added, updated and skipped, and why."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest

from documents import ARTICLE_HTML, article_pdf_lines, make_pdf
from rag.add import ADDED, SKIPPED, UPDATED, add_documents, format_report
from rag.errors import RagError
from rag.index import build_index, index_lock, load_index, read_manifest
from rag.settings import Settings

NOTES = ("# Le tramway de Nantes\n\nLe **tramway** de Nantes roule [désormais](http://x) la nuit le samedi, "
         "a annoncé la métropole lundi.\n\nLa mesure sera évaluée après six mois de service.\n")


def quiet(*_):
    pass


def mixed_folder(root: Path) -> Path:
    """PDF, HTML, Markdown and broken files, some in a sub-folder."""
    folder = root / "mes-documents"
    (folder / "sous-dossier").mkdir(parents=True)
    make_pdf(folder / "fontaines.pdf", article_pdf_lines(), title="Trente fontaines à Grenoble",
             created=datetime(2025, 4, 2))
    (folder / "zorglub.html").write_text(ARTICLE_HTML, "utf-8")
    (folder / "sous-dossier" / "tramway.md").write_text(NOTES, "utf-8")
    make_pdf(folder / "scan.pdf", [[]])
    (folder / "casse.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog")
    (folder / "menu.html").write_text("<html><body><nav>Accueil</nav><script>x()</script></body></html>", "utf-8")
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    (folder / "vide.md").write_bytes(b"")
    (folder / "rapport.docx").write_bytes(b"PK\x03\x04")
    return folder


def outcomes(report) -> dict[str, tuple[str, str]]:
    return {o.name: (o.status, o.reason) for o in report.outcomes}


def test_a_mixed_folder_is_added_and_the_broken_files_reported(settings: Settings, tmp_path: Path):
    build_index(settings, log=quiet)
    messages = []
    report = add_documents(settings, [mixed_folder(tmp_path)], log=messages.append)
    got = outcomes(report)
    assert {n for n, (s, _) in got.items() if s == ADDED} == {"fontaines.pdf", "zorglub.html", "tramway.md"}
    assert got["scan.pdf"][1].startswith("PDF sans texte") and got["casse.pdf"][1].startswith("PDF illisible")
    assert got["menu.html"] == (SKIPPED, "vide après nettoyage") and got["vide.md"] == (SKIPPED, "fichier vide")
    assert "binaire" in got["image.txt"][1] and "type non pris en charge (.docx" in got["rapport.docx"][1]
    assert len(report.errors) == 6
    index = report.index
    assert {"fontaines.pdf", "zorglub.html", "tramway.md"} <= set(index.articles)
    assert index.article("fontaines.pdf").title == "Trente fontaines à Grenoble"
    assert "SCRIPT-FUITE" not in index.article("zorglub.html").text
    assert (settings.seeds_dir / "tramway.md").read_text("utf-8") == NOTES  # copied as is, name kept
    assert not (settings.seeds_dir / "scan.pdf").exists()
    new = sum(p.doc_id in {"fontaines.pdf", "zorglub.html", "tramway.md"} for p in index.passages)
    assert any(f" {new} à encoder" in m for m in messages), messages  # only the new articles are embedded
    assert load_index(settings).store.count() == len(index.passages)  # up to date, not stale
    text = format_report(report)
    assert "3 fichiers ajoutés :" in text and "6 fichiers ignorés :" in text
    assert "  - menu.html : vide après nettoyage" in text and "Index à jour : 8 articles" in text


def test_adding_again_changes_nothing(settings: Settings, tmp_path: Path):
    folder = mixed_folder(tmp_path)
    add_documents(settings, [folder], log=quiet)
    report = add_documents(settings, [folder / "fontaines.pdf", folder / "sous-dossier"], log=quiet)
    assert outcomes(report) == {"fontaines.pdf": (SKIPPED, "déjà dans le corpus, identique"),
                                "tramway.md": (SKIPPED, "déjà dans le corpus, identique")}
    assert report.index is None and not report.errors
    assert "Corpus inchangé" in format_report(report)


def test_same_name_other_content_is_an_update(settings: Settings, tmp_path: Path):
    first = tmp_path / "v1" / "tramway.md"
    first.parent.mkdir()
    first.write_text(NOTES, "utf-8")
    add_documents(settings, [first], log=quiet)
    second = tmp_path / "v2" / "tramway.md"
    second.parent.mkdir()
    second.write_text(NOTES.replace("six mois", "un an"), "utf-8")
    messages = []
    report = add_documents(settings, [second], log=messages.append)
    assert outcomes(report) == {"tramway.md": (UPDATED, "")}
    assert "un an" in report.index.article("tramway.md").text
    assert "1 fichier mis à jour :" in format_report(report)
    assert any("à encoder" in m and not m.startswith("0 passages repris") for m in messages)


def test_collisions_are_refused_with_their_reason(settings: Settings, tmp_path: Path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "note.txt").write_text(f"Le zorglub du dossier {folder} mange des pommes.", "utf-8")
    (tmp_path / "002_dbf84de5b56e379c.TXT").write_text("Une autre version, autre casse.", "utf-8")
    report = add_documents(settings, [tmp_path / "a", tmp_path / "b", tmp_path / "002_dbf84de5b56e379c.TXT"],
                           log=quiet)
    statuses = [(o.source, o.status, o.reason) for o in report.outcomes]
    assert statuses[0][1] == ADDED
    assert statuses[1][1] == SKIPPED and "même nom qu'un autre fichier de cet ajout" in statuses[1][2]
    assert "même identifiant « 002_dbf84de5b56e379c » que 002_dbf84de5b56e379c.txt" in statuses[2][2]
    assert "dossier a" in (settings.seeds_dir / "note.txt").read_text("utf-8")


def test_a_copy_under_another_name_is_a_duplicate(settings: Settings, tmp_path: Path):
    copy = tmp_path / "copie.txt"
    shutil.copy(next(settings.seeds_dir.glob("002_*.txt")), copy)
    report = add_documents(settings, [copy], log=quiet)
    assert outcomes(report) == {"copie.txt": (SKIPPED, "doublon de 002_dbf84de5b56e379c.txt (même texte)")}
    assert not report.errors


def test_a_rewritten_story_is_reported_as_one(settings: Settings, tmp_path: Path):
    seed = next(settings.seeds_dir.glob("001_*.txt")).read_text("utf-8")
    retold = tmp_path / "fuites.md"
    retold.write_text("# Fuites chez Meta\n\n" + seed.replace("Mark Zuckerberg", "Le patron de Meta"), "utf-8")
    report = add_documents(settings, [retold], log=quiet)
    group = next(g for g in read_manifest(settings.index_dir)["duplicates"] if "fuites.md" in g)
    assert "001_7964a669a5581a1c" in group
    assert f"(repris par {len(group)} articles)" in format_report(report)


def test_too_large_files_are_refused(settings: Settings, tmp_path: Path):
    big = tmp_path / "gros.txt"
    big.write_text("Le zorglub mange des pommes. " * 2000, "utf-8")
    small = settings.model_copy(update={"max_file_mb": 0.01})
    report = add_documents(small, [big], log=quiet)
    assert outcomes(report) == {"gros.txt": (SKIPPED, "trop volumineux (0,1 Mo, limite 0,0 Mo)")}


def test_nothing_to_add(settings: Settings, tmp_path: Path):
    (tmp_path / "vide").mkdir()
    with pytest.raises(RagError, match="Aucun fichier à ajouter"):
        add_documents(settings, [tmp_path / "vide"], log=quiet)


def test_add_waits_for_another_builder_then_stops(settings: Settings, tmp_path: Path):
    import threading

    holding, release = threading.Event(), threading.Event()

    def hold():
        with index_lock(settings):
            holding.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    note = tmp_path / "note.txt"
    note.write_text("Le zorglub mange des pommes chaque matin.", "utf-8")
    with pytest.raises(RagError, match="déjà en construction"):
        add_documents(settings.model_copy(update={"index_lock_wait": 0.2}), [note], log=quiet)
    assert not (settings.seeds_dir / "note.txt").exists()  # nothing copied while another builds
    release.set()
    thread.join()
    assert outcomes(add_documents(settings, [note], log=quiet)) == {"note.txt": (ADDED, "")}


def test_cli_add_prints_the_report_and_fails_on_refused_files(run, settings: Settings, tmp_path: Path):
    result = run("add", str(mixed_folder(tmp_path)))
    assert result.exit_code == 1, result.output
    assert "3 fichiers ajoutés :" in result.output and "  - scan.pdf : PDF sans texte" in result.output
    assert "Erreur : 6 fichier(s) refusé(s)" in result.output and "Traceback" not in result.output
    note = tmp_path / "note.md"
    note.write_text("# Note\n\nLe zorglub mange des pommes chaque matin.", "utf-8")
    result = run("add", str(note))
    assert result.exit_code == 0 and "1 fichier ajouté :\n  - note.md" in result.output
