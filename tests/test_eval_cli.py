"""`rag eval` end to end with fake models on a few reference questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.settings import PROJECT_ROOT

IDS = ("q001", "q002", "q015", "q016")  # q002 has no answer in the corpus


@pytest.fixture
def reference(tmp_path) -> Path:
    lines = (PROJECT_ROOT / "eval" / "reference.jsonl").read_text("utf-8").splitlines()
    path = tmp_path / "small.jsonl"
    path.write_text("\n".join(l for l in lines if json.loads(l)["id"] in IDS) + "\n", "utf-8")
    return path


def test_eval_writes_json_markdown_and_chart(run, reference, tmp_path):
    result = run("eval", "--reference", str(reference))
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "eval"  # the default, under the current folder
    doc = json.loads((out / "eval.json").read_text("utf-8"))
    assert list(doc) == ["created", "reference", "answers", "models", "settings", "figures", "rows"]
    f = doc["figures"]
    assert (f["questions"], f["errors"], f["refusals"]["unanswerable"]) == (4, 0, 1)
    assert set(f) == {"questions", "errors", "retrieval", "answers", "citations", "refusals", "language", "speed"}
    assert f["retrieval"]["questions"] == 3 and 0 <= f["retrieval"]["mrr"] <= 1
    assert f["refusals"]["recall"] == 0.0  # the fake model answers everything
    assert [r["id"] for r in doc["rows"]] == list(IDS)
    assert doc["models"] == {"llm": "fake", "embedder": "fake"}
    report = (out / "report.md").read_text("utf-8")
    for heading in ("## Recherche", "## Réponses", "## Citations", "## Refus", "## Langue", "## Vitesse"):
        assert heading in report
    assert "| recall@1 | recall@3 | recall@5 | recall@10 | MRR |" in report
    assert "- q002 (a répondu au lieu de refuser)" in report
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "recall@3" in result.stdout and "eval.json" in result.stdout


def test_eval_scores_an_answers_file_without_the_language_model(run, reference, tmp_path, monkeypatch):
    assert run("eval", "--reference", str(reference), "--out", "a").exit_code == 0

    def no_model(settings):
        raise AssertionError("the language model was loaded")

    monkeypatch.setattr("rag.pipeline.get_llm", no_model)
    result = run("eval", "--reference", str(reference), "--answers", "a/answers.jsonl", "--out", "b")
    assert result.exit_code == 0, result.output
    a, b = (json.loads((tmp_path / d / "eval.json").read_text("utf-8")) for d in "ab")
    assert a["figures"] == b["figures"] and a["rows"] == b["rows"]

    result = run("eval", "--compare", "a/eval.json", "b/eval.json")
    assert result.exit_code == 0, result.output
    assert "answers.f1" in result.stdout and "+0.000" in result.stdout
    assert "Justes dans B seulement : aucune" in result.stdout


def test_eval_refuses_an_answers_file_that_misses_questions(run, reference, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("", "utf-8")
    result = run("eval", "--reference", str(reference), "--answers", str(answers))
    assert result.exit_code == 1
    assert "ne contient pas de réponse pour 4 questions" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_compare_refuses_what_is_not_an_eval(run, tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}', "utf-8")
    result = run("eval", "--compare", "x.json", "x.json")
    assert result.exit_code == 1 and "n'est pas un résultat de `rag eval`" in result.stderr
