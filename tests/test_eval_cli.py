"""`rag eval` end to end with fake models on a few reference questions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from rag.batch import read_records
from rag.errors import RagError
from rag.report import run_folder
from rag.settings import PROJECT_ROOT, Settings

IDS = ("q001", "q002", "q015", "q016")  # q002 has no answer in the corpus
SPLITS = {"q001": "dev", "q002": "test", "q015": "dev"}  # q016 has none: only in « all »


@pytest.fixture
def reference(tmp_path) -> Path:
    """Four questions of the project's set, without their « split » (the tests set their own)."""
    lines = (PROJECT_ROOT / "eval" / "reference.jsonl").read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines if json.loads(line)["id"] in IDS]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "split"}, ensure_ascii=False) + "\n"
                            for r in records), "utf-8")
    return path


@pytest.fixture
def split_reference(reference) -> Path:
    """The same questions, with a « split » on three of them."""
    records = [json.loads(line) for line in reference.read_text("utf-8").splitlines()]
    lines = [json.dumps(r | ({"split": SPLITS[r["id"]]} if r["id"] in SPLITS else {}), ensure_ascii=False)
             for r in records]
    path = reference.with_name("split.jsonl")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _runs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "out" / "eval").iterdir())


def _doc(folder: Path) -> dict:
    return json.loads((folder / "eval.json").read_text("utf-8"))


def test_eval_writes_json_markdown_and_chart(run, reference, tmp_path):
    result = run("eval", "--reference", str(reference))
    assert result.exit_code == 0, result.output
    [out] = _runs(tmp_path)  # a new folder under out/eval, in the current folder
    assert datetime.strptime(out.name, "%Y%m%d-%H%M%S")
    doc = _doc(out)
    assert list(doc) == ["created", "reference", "split", "answers", "models", "settings", "settings_variants",
                         "figures", "baselines", "rows"]
    f = doc["figures"]
    assert (f["questions"], f["errors"], f["refusals"]["unanswerable"]) == (4, 0, 1)
    assert set(f) == {"questions", "errors", "retrieval", "answers", "citations", "refusals", "language",
                      "by_tag", "speed"}
    assert f["retrieval"]["questions"] == 3 and 0 <= f["retrieval"]["mrr"] <= 1
    assert f["refusals"]["recall"] == 0.0  # the fake model answers everything
    assert f["citations"]["questions"] == 3 and {"key_facts", "key_facts_lenient"} <= set(f["answers"])
    assert set(f["by_tag"]) == {"simple", "paraphrase", "unanswerable"}
    assert [r["id"] for r in doc["rows"]] == list(IDS)
    assert doc["models"] == {"llm": "fake", "embedder": "fake"} and doc["split"] == "all"
    assert doc["settings"]["k"] == Settings().k and doc["settings_variants"] == [{"settings": doc["settings"], "ids": list(IDS)}]
    assert list(doc["baselines"]) == ["bm25-passage", "bm25-sentence", "refuse-all"]
    for baseline in doc["baselines"].values():
        assert {"answers", "citations", "refusals", "language", "by_tag"} <= set(baseline["figures"])
        assert [r["id"] for r in baseline["rows"]] == list(IDS)
    assert doc["baselines"]["refuse-all"]["figures"]["refusals"]["recall"] == 1.0
    report = (out / "report.md").read_text("utf-8")
    for heading in ("## Réponses, face à des références triviales", "## Par type de question", "## Recherche",
                    "## Vitesse", "## Questions manquées"):
        assert heading in report
    assert "|  | app | bm25-passage | bm25-sentence | refuse-all |" in report
    assert "| refus hors corpus (rappel) | 0.000 | 0.000 | 0.000 | 1.000 |" in report
    assert "| type | questions | faits clés (strict) | faits clés (souple) | refusées |" in report
    assert "| recall@1 | recall@3 | recall@5 | recall@10 | MRR |" in report
    assert "partie « all »" in report and "Réglages des réponses : llm = fake" in report
    assert "- q002 (a répondu au lieu de refuser)" in report
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "recall@3" in result.stdout and "bm25-sentence" in result.stdout and "refuse-all" in result.stdout
    assert f"{out.relative_to(tmp_path)}/" in result.stdout and "eval.json" in result.stdout


def test_a_new_run_never_touches_an_earlier_one(run, reference, tmp_path):
    assert run("eval", "--reference", str(reference)).exit_code == 0
    [first] = _runs(tmp_path)
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert run("eval", "--reference", str(reference)).exit_code == 0
    assert len(_runs(tmp_path)) == 2
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before


def test_out_refuses_a_folder_holding_a_run_unless_resuming(run, reference, tmp_path):
    assert run("eval", "--reference", str(reference), "--out", "mine").exit_code == 0
    result = run("eval", "--reference", str(reference), "--out", "mine")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Erreur : mine contient déjà une évaluation (eval.json, answers.jsonl) : "
                                     "choisissez un autre dossier, ou reprenez-la avec --resume mine.")
    for resume in (["--resume", "mine"], ["--out", "mine", "--resume"]):
        result = run("eval", "--reference", str(reference), *resume)
        assert result.exit_code == 0, result.output
        assert "Reprise : 4 réponses déjà faites" in result.stderr
    assert len(read_records(tmp_path / "mine" / "answers.jsonl")) == 4  # nothing asked twice


def test_resume_continues_an_interrupted_run(run, reference, tmp_path):
    assert run("eval", "--reference", str(reference), "--out", "cut").exit_code == 0
    answers = tmp_path / "cut" / "answers.jsonl"
    answers.write_text("".join(answers.read_text("utf-8").splitlines(keepends=True)[:2]), "utf-8")
    (tmp_path / "cut" / "eval.json").unlink()
    result = run("eval", "--reference", str(reference), "--resume", "cut")
    assert result.exit_code == 0, result.output
    assert "Reprise : 2 réponses déjà faites" in result.stderr
    assert [r["id"] for r in read_records(answers)] == list(IDS)
    assert _doc(tmp_path / "cut")["figures"]["questions"] == 4


def test_resume_refuses_other_settings(run, reference, tmp_path):
    assert run("--k", "3", "eval", "--reference", str(reference), "--out", "k3").exit_code == 0
    result = run("--k", "2", "eval", "--reference", str(reference), "--resume", "k3")
    assert result.exit_code == 1
    assert "d'autres réglages (k : 3 dans le fichier, 2 maintenant)" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["--resume"], "--resume sans dossier"),
    (["--resume", "a", "--out", "b"], "--resume a et --out b désignent deux dossiers"),
    (["--answers", "x.jsonl", "--resume", "a"], "--answers note un fichier existant"),
])
def test_contradictory_folder_options_are_refused(run, reference, args, message):
    result = run("eval", "--reference", str(reference), *args)
    assert result.exit_code == 1 and message in result.stderr


def test_run_folder_names(tmp_path):
    now = datetime(2025, 3, 4, 5, 6, 7)
    assert run_folder(base=tmp_path, now=now) == tmp_path / "20250304-050607"
    assert run_folder(base=tmp_path, now=now) == tmp_path / "20250304-050607-2"  # same second
    assert run_folder(split="dev", base=tmp_path, now=now) == tmp_path / "20250304-050607-dev"
    assert (tmp_path / "20250304-050607-2").is_dir()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "eval.json").write_text("{}", "utf-8")
    with pytest.raises(RagError, match="contient déjà une évaluation"):
        run_folder(tmp_path / "x")
    assert run_folder(resume=str(tmp_path / "x")) == run_folder(tmp_path / "x", resume="") == tmp_path / "x"


# ------------------------------------------------------------------ splits


@pytest.mark.parametrize("split, ids", [("dev", ["q001", "q015"]), ("test", ["q002"]), ("all", list(IDS))])
def test_split_scores_only_its_questions(run, split_reference, tmp_path, split, ids):
    result = run("eval", "--reference", str(split_reference), "--split", split)
    assert result.exit_code == 0, result.output
    [out] = _runs(tmp_path)
    assert out.name.endswith(f"-{split}") is (split != "all")
    doc = _doc(out)
    assert doc["split"] == split and [r["id"] for r in doc["rows"]] == ids
    assert [r["id"] for r in read_records(out / "answers.jsonl")] == ids  # only those were asked
    assert all([r["id"] for r in b["rows"]] == ids for b in doc["baselines"].values())
    assert f"partie « {split} »" in (out / "report.md").read_text("utf-8")
    assert f"partie {split}" in result.stdout


def test_a_split_without_questions_is_an_error(run, reference):
    result = run("eval", "--reference", str(reference), "--split", "dev")  # no record has a split
    assert result.exit_code == 1
    assert "aucune question de référence dans la partie « dev »" in result.stderr


# ------------------------------------------------------------------ scoring an answers file


def test_eval_scores_an_answers_file_without_the_language_model(run, reference, tmp_path, monkeypatch):
    assert run("eval", "--reference", str(reference), "--out", "a").exit_code == 0

    def no_model(settings):
        raise AssertionError("the language model was loaded")

    monkeypatch.setattr("rag.pipeline.get_llm", no_model)
    result = run("eval", "--reference", str(reference), "--answers", "a/answers.jsonl", "--out", "b")
    assert result.exit_code == 0, result.output
    a, b = (_doc(tmp_path / d) for d in "ab")
    assert a["figures"] == b["figures"] and a["rows"] == b["rows"] and a["baselines"] == b["baselines"]
    assert not (tmp_path / "b" / "answers.jsonl").exists()

    result = run("eval", "--compare", "a/eval.json", "b/eval.json")
    assert result.exit_code == 0, result.output
    assert "answers.f1" in result.stdout and "+0.000" in result.stdout
    assert "Justes dans B seulement : aucune" in result.stdout


def test_an_answers_file_reports_the_settings_it_was_made_with(run, reference, tmp_path):
    assert run("--k", "3", "eval", "--reference", str(reference), "--out", "a").exit_code == 0
    result = run("--k", "5", "eval", "--reference", str(reference), "--answers", "a/answers.jsonl", "--out", "b")
    assert result.exit_code == 0, result.output
    assert _doc(tmp_path / "b")["settings"]["k"] == 3  # the records', not the current k = 5
    assert "k = 3" in result.stdout

    answers = tmp_path / "a" / "answers.jsonl"
    records = read_records(answers)
    records[1]["settings"] = records[1]["settings"] | {"k": 5}
    del records[2]["settings"]  # as an older version wrote it
    answers.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    result = run("eval", "--reference", str(reference), "--answers", str(answers), "--out", "c")
    assert result.exit_code == 0, result.output
    doc = _doc(tmp_path / "c")
    assert doc["settings"] is None
    assert [v["ids"] for v in doc["settings_variants"]] == [["q001", "q016"], ["q002"], ["q015"]]
    assert doc["settings_variants"][2]["settings"] is None
    assert "les réponses mélangent 3 jeux de réglages" in result.stdout
    report = (tmp_path / "c" / "report.md").read_text("utf-8")
    assert "mélangent 3 jeux de réglages" in report and "inconnus (réponses d'une version antérieure" in report


def test_eval_refuses_an_answers_file_that_misses_questions(run, reference, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("", "utf-8")
    result = run("eval", "--reference", str(reference), "--answers", str(answers))
    assert result.exit_code == 1
    assert "ne contient pas de réponse pour 4 questions" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before any folder is made


def test_compare_refuses_what_is_not_an_eval(run, tmp_path):
    (tmp_path / "x.json").write_text('{"a": 1}', "utf-8")
    result = run("eval", "--compare", "x.json", "x.json")
    assert result.exit_code == 1 and "n'est pas un résultat de `rag eval`" in result.stderr
