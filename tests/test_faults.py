"""Faults and bad input, bounded and under tmp_path with fake models: `kill -9` during
`rag index` and `rag batch`, fuzzed corpora and fuzzed question files. Each test stops by
itself; a subprocess that outlives its deadline is killed and the test fails."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from documents import ARTICLE_HTML, article_pdf_lines, make_pdf
from rag.add import ADDED, SKIPPED, add_documents
from rag.batch import read_questions, read_records
from rag.errors import RagError
from rag.index import build_index, load_index, read_manifest
from rag.settings import Settings

TESTS = Path(__file__).parent
DEADLINE = 60.0  # seconds a subprocess may take to reach the point where it is killed


def quiet(*_):
    pass


def rag_env(settings: Settings, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_SEEDS_DIR=str(settings.seeds_dir), RAG_INDEX_DIR=str(settings.index_dir),
               RAG_MODELS_DIR=str(settings.models_dir), RAG_EMBEDDER="fake", RAG_LLM="fake",
               RAG_EMBEDDER_BACKEND="fakes:fake_embedder",
               RAG_LLM_BACKEND="faulty:SlowFake", PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
               **extra)
    return env


def start(args: list[str], settings: Settings, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], env=rag_env(settings), cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(process: subprocess.Popen, ready, what: str) -> None:
    """SIGKILL the process as soon as `ready()` is true; fail if it never is."""
    deadline = time.monotonic() + DEADLINE
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{what} : le processus s'est arrêté avant d'être tué ({process.stderr.read()[-2000:]})")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} : jamais atteint en {DEADLINE} s")
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(10) == -signal.SIGKILL


# ------------------------------------------------------------------ kill -9 during `rag index`


@pytest.mark.parametrize("stage, new_index_after_kill", [
    ("embedding", False), ("manifest", False), ("cleanup", True)])
def test_kill_during_rag_index_keeps_a_loadable_index_and_the_next_build_succeeds(
        settings: Settings, tmp_path: Path, stage: str, new_index_after_kill: bool):
    old = build_index(settings, log=quiet)
    old_passages = list(old.passages)
    (settings.seeds_dir / "005_nouveau.txt").write_text(
        "Un article de plus sur Meta.\n\nIl dit que Meta embauche des chercheurs en IA à Paris.", "utf-8")
    marker = tmp_path / f"{stage}.marker"
    process = start([str(TESTS / "faulty.py"), str(marker), stage, "index"], settings, tmp_path)
    kill_when(process, marker.exists, f"rag index ({stage})")
    survived = load_index(settings, check_corpus=False)  # whole, never half
    if new_index_after_kill:
        assert "005_nouveau" in survived.articles
    else:
        assert list(survived.passages) == old_passages and "005_nouveau" not in survived.articles
    assert survived.store.count() == len(survived.passages) == len(survived.bm25)
    now = settings.model_copy(update={"index_lock_wait": 0})  # the killed builder's lock is gone
    rebuilt = build_index(now, log=quiet)
    assert "005_nouveau" in rebuilt.articles and load_index(settings).store.count() == len(rebuilt.passages)
    assert [p.name for p in settings.index_dir.glob("build-*")] == [read_manifest(settings.index_dir)["build"]]


# ------------------------------------------------------------------ kill -9 during `rag batch`


def test_kill_during_rag_batch_then_resume_answers_every_id_exactly_once(settings: Settings, tmp_path: Path):
    build_index(settings, log=quiet)
    questions = tmp_path / "questions.jsonl"
    subjects = ["Meta", "TikTok", "Twitter", "Zuckerberg", "l'IA", "Musk", "Llama", "le RGPD", "Klarna", "Trump"]
    ids = [f"q{n:02d}" for n in range(1, 2 * len(subjects) + 1)]
    lines = [json.dumps({"id": i, "question": f"Que dit le corpus sur {subjects[n % len(subjects)]} ({n}) ?"},
                        ensure_ascii=False) for n, i in enumerate(ids)]
    questions.write_text("\n".join(lines) + "\n", "utf-8")
    output = tmp_path / "answers.jsonl"
    args = ["-m", "rag", "batch", str(questions), "-o", str(output), "--quiet"]
    kills = 0
    for at in (2, 7, 13):  # kill -9 once this many records are on disk
        process = start(args, settings, tmp_path)
        kill_when(process, lambda: output.exists() and output.read_bytes().count(b"\n") >= at, f"batch ({at})")
        kills += 1
    final = start(args, settings, tmp_path)
    assert final.wait(DEADLINE * 2) == 0, final.stderr.read()[-2000:]
    records = read_records(output)
    assert sorted(r["id"] for r in records) == ids  # every id, exactly once
    assert all(r["error"] is None and r["answer"] for r in records)
    assert kills == 3


# ------------------------------------------------------------------ a fuzzed corpus

GOOD = {"fontaines.pdf", "zorglub.html", "tramway.md", "latin1.txt", "page-avec-scripts.html"}


def fuzzed_corpus(folder: Path, seed: int = 12) -> int:
    """Good articles among bad files of every kind; returns how many files it wrote."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    make_pdf(folder / "fontaines.pdf", article_pdf_lines(), title="Trente fontaines à Grenoble")
    (folder / "zorglub.html").write_text(ARTICLE_HTML, "utf-8")
    (folder / "tramway.md").write_text("# Tramway\n\nLe tramway de Nantes roule la nuit le samedi.\n", "utf-8")
    (folder / "latin1.txt").write_bytes("Le café de la gare rouvre à Noël, a annoncé la mairie.".encode("latin-1"))
    (folder / "page-avec-scripts.html").write_text(
        "<html><head><style>p{}</style><script>alert('x')</script></head><body><p>Le marché couvert de "
        "Rennes ferme ses portes pour travaux pendant tout le mois d'août.</p><script>y()</script></body></html>",
        "utf-8")
    bad = {
        "vide.txt": b"", "vide.md": b"", "vide.html": b"", "vide.pdf": b"",
        "image.txt": b"\x89PNG\r\n\x1a\n" + rng.randbytes(2000),
        "utf16-sans-bom.txt": "Un texte en UTF-16 sans marque.".encode("utf-16-le"),
        "melange.txt": "début valide ".encode() + b"\x81\x8d\xff\xfe" + rng.randbytes(300),
        "scripts-seulement.html": b"<html><script>var a = 1;</script><style>b{}</style></html>",
        "menu.html": b"<nav><a href='/'>Accueil</a></nav>",
        "tronque.pdf": (folder / "fontaines.pdf").read_bytes()[:300],
        "pas-un-pdf.pdf": b"%PDF-1.7\n" + rng.randbytes(500),
        "bruit.md": b"fermer\n\nPartager\n\nMenu\n",
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    make_pdf(folder / "scan.pdf", [[], []])
    with open(folder / "enorme.txt", "wb") as f:
        f.truncate(50_000_000)  # 50 MB, sparse
    for n in range(24):  # random bytes under every name, and mutated good files
        suffix = [".txt", ".md", ".html", ".pdf"][n % 4]
        source = (folder / ("fontaines.pdf" if suffix == ".pdf" else "zorglub.html")).read_bytes()
        data = rng.randbytes(rng.randrange(1, 4000)) if n < 12 else _mutate(source, rng)
        (folder / f"fuzz-{n:02d}{suffix}").write_bytes(data)
    return len(list(folder.iterdir()))


def _mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data[: rng.randrange(len(data) // 2, len(data))])
    for _ in range(rng.randrange(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_a_fuzzed_folder_added_gives_clear_reasons_and_indexes_the_good_files(settings: Settings, tmp_path: Path):
    tried = fuzzed_corpus(tmp_path / "fuzz")
    report = add_documents(settings, [tmp_path / "fuzz"], log=quiet)
    got = {o.name: o for o in report.outcomes}
    assert len(got) == tried
    assert GOOD <= {n for n, o in got.items() if o.status == ADDED}
    for name in ("vide.txt", "image.txt", "utf16-sans-bom.txt", "melange.txt", "scripts-seulement.html", "menu.html",
                 "tronque.pdf", "pas-un-pdf.pdf", "bruit.md", "scan.pdf", "enorme.txt"):
        assert got[name].status == SKIPPED and got[name].error, name
    for o in report.outcomes:
        assert o.status == ADDED or (o.reason and "\n" not in o.reason and "Traceback" not in o.reason), o
    assert "trop volumineux (50,0 Mo" in got["enorme.txt"].reason
    index = load_index(settings)
    assert GOOD <= {index.article(d).path for d in index.articles}
    assert "alert" not in index.article("page-avec-scripts.html").text


def test_a_fuzzed_corpus_folder_is_indexed_without_crashing(settings: Settings, tmp_path: Path):
    tried = fuzzed_corpus(tmp_path / "f2", seed=99)
    for path in (tmp_path / "f2").iterdir():
        path.rename(settings.seeds_dir / path.name)
    messages = []
    index = build_index(settings, log=messages.append)
    m = read_manifest(settings.index_dir)
    indexed = {index.article(d).path for d in index.articles}
    assert GOOD <= indexed and len(indexed) + len(m["skipped"]) == tried + 5  # + the five seeds
    assert all(any(f"Fichier ignoré : {name} (" in line for line in messages) for name in m["skipped"])
    assert load_index(settings).store.count() == len(index.passages)  # skipped files do not make it stale


# ------------------------------------------------------------------ fuzzed question files


def fuzzed_question_files(folder: Path, seed: int = 5) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir()
    fixed = {
        "vide.txt": b"", "blancs.txt": b"\n \n\t\n", "nul.txt": b"Qui ?\x00\n", "bom.txt": "\ufeffQui a fondé Meta ?\n".encode(),
        "latin1.txt": "Qu'a dit Zuckerberg à l'été ?".encode("latin-1"), "crlf.txt": b"Qui ?\r\nQuoi ?\r\n",
        "long.txt": ("mot " * 50_000).encode(),
        "liste.jsonl": b'[1, 2]\n', "tronque.jsonl": b'{"id": "1", "question": "Qui', "sans-id.jsonl": b'{"question": "Qui ?"}\n',
        "id-objet.jsonl": b'{"id": {"a": 1}, "question": "Qui ?"}\n', "question-nombre.jsonl": b'{"id": 1, "question": 3}\n',
        "doublon.jsonl": b'{"id": 1, "question": "A ?"}\n{"id": "1", "question": "B ?"}\n',
        "sans-colonne.csv": b"id,texte\n1,Qui ?\n", "champs.csv": b"id,question\n1,Qui ?,en trop\n",
        "guillemet.csv": b'id,question\n1,"Qui ?\n', "entete-seul.csv": b"id,question\n",
        "bonne.csv": "id,question\na,Qui dirige Meta ?\nb,Combien Meta dépense-t-elle ?\n".encode(),
        "bonne.jsonl": '{"id": "x", "question": "Qui est Guy Rosen ?"}\n'.encode(),
        "question.pdf": b"%PDF-1.4",
    }
    for name, data in fixed.items():
        (folder / name).write_bytes(data)
    for n in range(30):
        suffix = [".txt", ".jsonl", ".csv"][n % 3]
        data = rng.randbytes(rng.randrange(0, 2000)) if n < 15 else _mutate(fixed["bonne" + (suffix if suffix != ".txt" else ".csv")], rng)
        (folder / f"fuzz-{n:02d}{suffix}").write_bytes(data)
    return sorted(folder.iterdir())


def test_fuzzed_question_files_are_read_or_refused_in_one_french_line(tmp_path: Path):
    files = fuzzed_question_files(tmp_path / "q")
    refused = 0
    for path in files:
        try:
            questions = read_questions(path)
        except RagError as exc:
            refused += 1
            assert "\n" not in str(exc) and path.name in str(exc), (path.name, str(exc))
            continue
        assert questions and len({q.id for q in questions}) == len(questions)
    assert len(files) == 50 and 20 <= refused < 50


def test_rag_batch_on_fuzzed_files_never_shows_a_traceback(run, settings: Settings, tmp_path: Path):
    build_index(settings, log=quiet)
    files = fuzzed_question_files(tmp_path / "q")
    for path in files[::5] + [tmp_path / "q" / "bonne.csv", tmp_path / "q" / "long.txt"]:
        result = run("batch", str(path), "-o", str(tmp_path / f"out-{path.stem}.jsonl"), "--quiet")
        assert result.exit_code in (0, 1), (path.name, result.output)
        assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, KeyError, IndexError))
        if result.exit_code == 1:
            assert "Erreur :" in result.output, (path.name, result.output)
