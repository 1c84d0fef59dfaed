"""The CLI with fake models: output shape, and one clear line + exit 1 on bad input."""

import json
import re
from pathlib import Path

import pytest

from rag.settings import Settings


def test_ask_builds_the_index_and_prints_sources(run):
    result = run("ask", "Combien Meta prévoit-elle de dépenser en IA en 2025 ?")
    assert result.exit_code == 0, result.output
    assert "Sources :" in result.output and re.search(r"\[\d\]", result.output) and ".txt" in result.output


def test_ask_json(run):
    result = run("ask", "--json", "Qui est Guy Rosen ?")
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "refused", "citations", "timings", "models"}
    assert data["models"]["llm"] == "fake"


def test_index_command_reports_counts(run):
    result = run("index")
    assert result.exit_code == 0 and "5 articles" in result.output


@pytest.mark.parametrize("args, message", [
    (["ask", ""], "La question est vide"),
    (["--llm", "inexistant", "ask", "Qui dirige Meta ?"], "Modèle inconnu"),
    (["--k", "0", "ask", "Qui dirige Meta ?"], "positif"),
])
def test_bad_input_is_one_french_line_and_exit_1(run, args, message):
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_missing_corpus_is_an_error(run, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("RAG_SEEDS_DIR", str(tmp_path / "absent"))
    result = run("index")
    assert result.exit_code == 1 and "introuvable" in result.stderr


def test_corrupt_index_is_an_error(run, settings: Settings):
    assert run("index").exit_code == 0
    manifest = json.loads((settings.index_dir / "manifest.json").read_text("utf-8"))
    (settings.index_dir / manifest["build"] / "passages.jsonl").write_text("abîmé", "utf-8")
    result = run("ask", "Qui dirige Meta ?")
    assert result.exit_code == 1 and "corrompu" in result.stderr


def test_library_warnings_reach_stderr_once(run, monkeypatch):
    import logging

    def list_models(settings):
        logging.getLogger("rag.models").warning("Registre illisible : %s", "models.txt")
        return []

    monkeypatch.setattr("rag.models.list_models", list_models)
    for _ in range(2):  # the handler is installed once, whatever the number of commands
        result = run("models")
        assert result.exit_code == 0 and result.stderr == "Registre illisible : models.txt\n"


def test_library_modules_never_print():
    """Progress goes through `log` callbacks (a module logger by default), warnings through logging."""
    import ast

    import rag

    for path in Path(rag.__file__).parent.rglob("*.py"):
        if path.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            assert not (isinstance(node, ast.Name) and node.id == "print"), f"{path.name}:{node.lineno}"
