"""`rag batch` with fake models: input files, records, resuming, failures, interruption."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rag.batch import (FIELDS, OLDEST_FIELDS, Output, Question, answer_file, read_questions, read_records,
                       run_batch, settings_of)
from rag.errors import RagError
from fakes import FakeLLM
from rag.index import build_index
from rag.pipeline import Pipeline

META = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
ROSEN = "Qui est Guy Rosen ?"
TIKTOK = "Qui a fondé TikTok ?"
LEAKS = "Que dit Zuckerberg des fuites ?"
TRUMP = "Combien Meta a-t-elle donné au fonds d'investiture de Donald Trump ?"


class Counting(FakeLLM):
    """The fake model; counts the questions it is asked (checks by the model left out) and
    fails on the question holding `fail_on`: with `error` (a model error) or by
    KeyboardInterrupt (the user killing the run); `peek` is a file whose content on disk
    it notes at that moment."""

    def __init__(self, fail_on: str | None = None, error: BaseException | None = None,
                 peek: Path | None = None):
        self.asked: list[str] = []
        self.fail_on, self.error, self.peek, self.seen = fail_on, error, peek, None

    def stream(self, messages, max_tokens, temperature):
        prompt = messages[-1]["content"]
        if "oui ou par non" not in prompt:
            self.asked.append(prompt)
            if self.fail_on and self.fail_on in prompt:
                self.seen = self.peek.read_text("utf-8") if self.peek else None
                raise self.error or KeyboardInterrupt()
        yield from super().stream(messages, max_tokens, temperature)


@pytest.fixture
def index(settings):
    return build_index(settings, log=lambda *_: None)


def _run(settings, index, questions, output, llm=None):
    pipeline = Pipeline(settings, index=index, llm=llm or Counting())
    items = [Question(str(i), q, i) for i, q in enumerate(questions, 1)]
    return run_batch(items, output, settings, lambda: pipeline)


# ------------------------------------------------------------------ reading input files


@pytest.mark.parametrize("name, content, expected", [
    ("q.txt", "Première ?\n\n   Deuxième ?  \n", [("1", "Première ?", 1), ("3", "Deuxième ?", 3)]),
    ("q.txt", "\ufeffUne ?\r\nDeux ?\r\n", [("1", "Une ?", 1), ("2", "Deux ?", 2)]),
    ("q.jsonl", '{"id": "a", "question": "Une ?"}\n\n{"id": 7, "question": "Deux ?", "x": 1}\n',
     [("a", "Une ?", 1), ("7", "Deux ?", 3)]),
    ("q.csv", 'id,question\nx,"Une, avec virgule ?"\ny,"Sur deux\nlignes ?"\nz,Trois ?\n',
     [("x", "Une, avec virgule ?", 2), ("y", "Sur deux\nlignes ?", 3), ("z", "Trois ?", 5)]),
    ("q.csv", "question,auteur\nUne ?,moi\n\nDeux ?,toi\n", [("2", "Une ?", 2), ("4", "Deux ?", 4)]),
])
def test_questions_are_read_with_their_ids_and_lines(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8"))
    assert [(q.id, q.question, q.line) for q in read_questions(path)] == expected


@pytest.mark.parametrize("name, content, message", [
    ("q.jsonl", '{"id": "a", "question": "Q ?"}\n{"id": "b", "question": \n', "ligne 2 : JSON invalide"),
    ("q.jsonl", '{"id": "a", "question": "Q ?"}\n["b", "Q ?"]\n', "ligne 2 : un objet JSON est attendu"),
    ("q.jsonl", '\n{"question": "Q ?"}\n', "ligne 2 : champ « id » manquant"),
    ("q.jsonl", '{"id": true, "question": "Q ?"}\n', "ligne 1 : champ « id »"),
    ("q.jsonl", '{"id": "a", "question": 3}\n', "ligne 1 : champ « question »"),
    ("q.jsonl", '{"id": "a", "question": "Q ?"}\n{"id": "a", "question": "R ?"}\n',
     "ligne 2 : identifiant « a » déjà utilisé ligne 1"),
    ("q.csv", "id,texte\na,Q ?\n", "ligne 1 : colonne « question » manquante (colonnes : id, texte)"),
    ("q.csv", "id,question\na,Q ?\nb,R ?,en trop\n", "ligne 3 : 3 champs au lieu de 2"),
    ("q.csv", "id,question\na,Q ?\n,R ?\n", "ligne 3 : champ « id » manquant"),
    ("q.csv", 'id,question\na,"Q ?\n', "CSV invalide"),
    ("q.txt", "\n  \n", "aucune question"),
    ("q.pdf", "Q ?", "non pris en charge"),
])
def test_malformed_files_are_refused_with_the_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RagError, match=re.escape(message)):
        read_questions(path)


def test_text_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "q.txt"
    path.write_bytes("Une ?\nDeux é ?\n".encode("latin-1"))
    with pytest.raises(RagError, match="ligne 2 : le texte n'est pas en UTF-8"):
        read_questions(path)


# ------------------------------------------------------------------ records


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_one_record_per_question_and_failures_recorded(settings, index, tmp_path, suffix):
    output = tmp_path / f"answers{suffix}"
    result = _run(settings, index, [META, "", ROSEN, "mot " * 200], output)
    assert (result.answered, result.failed, result.skipped) == (2, 2, 0)
    records = read_records(output)
    assert [r["id"] for r in records] == ["1", "2", "3", "4"]
    assert all(list(r) == list(FIELDS) for r in records)
    ok, empty, _, long = records
    assert ok["error"] is None and ok["refused"] is False and ok["tokens"] > 0
    assert ok["models"] == {"llm": "fake", "embedder": "fake"}
    assert ok["settings"] == empty["settings"] == settings_of(settings)
    assert {"llm": "fake", "embedder": "fake", "retrieval": "hybrid", "k": 4, "bm25_weight": 0.6, "diversify": False,
            "passage_chars": 200, "temperature": 0.0, "max_tokens": 256, "verify": True}.items() <= ok["settings"].items()
    assert len(ok["settings"]["prompts"]) == 16
    assert {"retrieval", "first_token", "total"} <= set(ok["timings"])
    assert 1 <= len(ok["passages"]) <= settings.k
    c = ok["citations"][0]
    start, end = c["span"]
    assert index.article(c["doc_id"]).text[start:end] == c["quote"]
    assert c["passage_id"] == f"{c['doc_id']}#{c['passage_span'][0]}-{c['passage_span'][1]}"
    assert c["quote"] in c["passage_text"] and c["title"]
    assert "vide" in empty["error"] and empty["answer"] == "" and empty["citations"] == []
    assert "trop longue" in long["error"]


def test_a_model_error_is_recorded_and_the_run_goes_on(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    llm = Counting(fail_on=ROSEN, error=RuntimeError("llama_decode returned -1"))
    result = _run(settings, index, [META, ROSEN, LEAKS], output, llm)
    assert (result.answered, result.failed) == (2, 1)
    records = read_records(output)
    assert records[1]["error"] == "RuntimeError : llama_decode returned -1"
    assert records[2]["error"] is None and records[2]["answer"]


def test_resume_skips_answered_ids_and_asks_failed_ones_again(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    _run(settings, index, [META, ROSEN], output, Counting(fail_on=ROSEN, error=ValueError("boum")))
    again = Counting()
    result = _run(settings, index, [META, ROSEN, LEAKS], output, again)
    assert (result.answered, result.failed, result.skipped) == (2, 0, 1)
    assert len(again.asked) == 2 and not any(META in p for p in again.asked)
    records = read_records(output)
    assert sorted(r["id"] for r in records) == ["1", "2", "3"]  # the failed record was replaced
    assert all(r["error"] is None for r in records)


def test_interrupted_run_keeps_every_written_record_and_resumes(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    questions = [META, ROSEN, TIKTOK, LEAKS, TRUMP]
    killer = Counting(fail_on=TIKTOK, peek=output)
    with pytest.raises(KeyboardInterrupt):
        _run(settings, index, questions, output, killer)
    # on disk while the third question was in flight, not only after the file was closed
    assert [json.loads(line)["id"] for line in killer.seen.splitlines()] == ["1", "2"]
    assert output.read_text("utf-8") == killer.seen
    again = Counting()
    result = _run(settings, index, questions, output, again)
    assert (result.answered, result.skipped, len(again.asked)) == (3, 2, 3)
    assert [r["id"] for r in read_records(output)] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("suffix, torn", [
    (".jsonl", '{"id": "3", "question": "Qui a fon'),
    (".csv", '3,Qui a fondé TikTok ?,"Une réponse\ncoupée'),
    (".csv", '3,Qui a fondé TikTok ?,"Une réponse\n'),
    (".csv", "3,Qui a fondé TikTok ?\n"),
])
def test_a_record_torn_by_a_kill_is_cut_off_and_asked_again(settings, index, tmp_path, suffix, torn):
    output = tmp_path / f"answers{suffix}"
    _run(settings, index, [META, ROSEN], output)
    with open(output, "a", encoding="utf-8") as f:
        f.write(torn)
    assert [r["id"] for r in read_records(output)] == ["1", "2"]
    result = _run(settings, index, [META, ROSEN, TIKTOK], output)
    assert (result.answered, result.skipped) == (1, 2)
    records = read_records(output)
    assert [r["id"] for r in records] == ["1", "2", "3"] and records[2]["question"] == TIKTOK
    assert Output(output)._complete == output.stat().st_size  # nothing torn left behind


def test_a_bad_record_inside_the_output_is_an_error(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    _run(settings, index, [META, ROSEN], output)
    first, second = output.read_text("utf-8").splitlines()
    output.write_text(first + "\n{abîmé\n" + second + "\n", "utf-8")
    with pytest.raises(RagError, match="corrompu.*ligne 2"):
        _run(settings, index, [META, ROSEN], output)


def test_an_output_for_other_questions_or_models_is_refused(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    _run(settings, index, [META], output)
    with pytest.raises(RagError, match="autre question sous l'identifiant « 1 »"):
        _run(settings, index, [ROSEN], output)
    other = settings.model_copy(update={"llm": "smollm2-135m-instruct"})
    with pytest.raises(RagError, match=re.escape(
            "d'autres réglages (llm : « fake » dans le fichier, « smollm2-135m-instruct » maintenant)")):
        _run(other, index, [META, ROSEN], output)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
@pytest.mark.parametrize("change, difference", [
    ({"k": 5}, "k : 4 dans le fichier, 5 maintenant"),
    ({"temperature": 0.7}, "temperature : 0.0 dans le fichier, 0.7 maintenant"),
    ({"verify": False}, "verify : true dans le fichier, false maintenant"),
    ({"retrieval": "bm25"}, "retrieval : « hybrid » dans le fichier, « bm25 » maintenant"),
])
def test_resuming_with_other_settings_is_refused_naming_the_first_difference(
        settings, index, tmp_path, suffix, change, difference):
    output = tmp_path / f"answers{suffix}"
    _run(settings, index, [META], output)
    other = settings.model_copy(update=change)
    with pytest.raises(RagError, match=re.escape(f"a été commencé avec d'autres réglages ({difference})")):
        _run(other, index, [META, ROSEN], output)
    assert len(read_records(output)) == 1  # nothing added
    faster = settings.model_copy(update={"threads": 2, "reuse_prefix": False})  # speed only: same answers
    assert _run(faster, index, [META, ROSEN], output).answered == 1


def test_a_changed_prompt_file_is_another_setting(settings, index, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(settings.prompts_dir, prompts)
    mine = settings.model_copy(update={"prompts_dir": prompts})
    output = tmp_path / "answers.jsonl"
    _run(mine, index, [META], output)
    system = prompts / "system.txt"
    system.write_text(system.read_text("utf-8") + "\nRéponds en une phrase.\n", "utf-8")
    with pytest.raises(RagError, match=r"d'autres réglages \(prompts : « [0-9a-f]{16} » dans le fichier"):
        _run(mine, index, [META, ROSEN], output)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_an_output_of_an_older_version_is_read_but_not_resumed(settings, index, tmp_path, suffix):
    output = tmp_path / f"answers{suffix}"
    _run(settings, index, [META, ROSEN], output)
    _drop_settings(output)
    old = read_records(output)
    assert [r["id"] for r in old] == ["1", "2"] and all("settings" not in r for r in old)
    assert old[0]["answer"] and old[0]["citations"]
    with pytest.raises(RagError, match="ne dit pas avec quels réglages"):
        _run(settings, index, [META, ROSEN, LEAKS], output)


def test_an_older_csv_with_no_record_restarts_with_the_settings_column(settings, index, tmp_path):
    output = tmp_path / "answers.csv"
    output.write_text(",".join(OLDEST_FIELDS) + "\n", "utf-8")
    assert _run(settings, index, [META], output).answered == 1
    assert output.read_text("utf-8").splitlines()[0] == ",".join(FIELDS)
    assert read_records(output)[0]["settings"] == settings_of(settings)


def _drop_settings(output: Path) -> None:
    """Make `output` look written by a version that recorded no settings."""
    records = read_records(output)
    if output.suffix == ".jsonl":
        lines = [json.dumps({k: v for k, v in r.items() if k != "settings"}, ensure_ascii=False) for r in records]
        output.write_text("\n".join(lines) + "\n", "utf-8")
        return
    import csv

    with open(output, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(OLDEST_FIELDS)
        for r in records:
            writer.writerow([r[k] if k in ("id", "question", "answer") else
                             "" if r[k] is None else json.dumps(r[k], ensure_ascii=False) for k in OLDEST_FIELDS])


def test_the_model_is_loaded_once_and_not_at_all_when_all_is_done(settings, tmp_path, monkeypatch):
    loads = []
    monkeypatch.setattr("rag.pipeline.get_llm", lambda s: loads.append(s) or FakeLLM())
    questions = tmp_path / "q.txt"
    questions.write_text(f"{META}\n{ROSEN}\n{LEAKS}\n", "utf-8")
    result = answer_file(settings, questions, tmp_path / "a.jsonl", log=lambda *_: None)
    assert result.answered == 3 and len(loads) == 1
    result = answer_file(settings, questions, tmp_path / "a.jsonl", log=lambda *_: None)
    assert result.skipped == 3 and len(loads) == 1


def test_nothing_is_loaded_when_every_question_is_answered(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    _run(settings, index, [META, ROSEN], output)

    def make():
        raise AssertionError("a pipeline was made with nothing to answer")

    items = [Question("1", META, 1), Question("2", ROSEN, 2)]
    assert run_batch(items, output, settings, make).skipped == 2


def test_progress_bar_with_eta_only_when_asked(settings, tmp_path, capsys):
    questions = tmp_path / "q.txt"
    questions.write_text(f"{META}\n{ROSEN}\n", "utf-8")
    answer_file(settings, questions, tmp_path / "a.jsonl", progress=True, log=lambda *_: None)
    err = capsys.readouterr().err
    assert "2/2" in err and "<" in err  # tqdm: « n/total [elapsed<remaining] »
    answer_file(settings, questions, tmp_path / "b.jsonl", progress=False, log=lambda *_: None)
    assert "2/2" not in capsys.readouterr().err


# ------------------------------------------------------------------ the command


def test_batch_command_exit_code_says_whether_any_failed(run, tmp_path):
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.csv"
    good.write_text(json.dumps({"id": "m", "question": META}) + "\n", "utf-8")
    bad.write_text(f"id,question\nm,{META}\nv,\n", "utf-8")
    result = run("batch", str(good), "-o", str(tmp_path / "good.out.jsonl"))
    assert result.exit_code == 0, result.output
    assert "1 réponses, 0 en échec, 0 déjà faites" in result.stdout
    assert "%|" not in result.stderr  # no progress bar off a terminal
    result = run("batch", str(bad), "-o", str(tmp_path / "bad.out.csv"))
    assert result.exit_code == 1
    assert "1 réponses, 1 en échec" in result.stdout
    assert result.stderr.strip().splitlines()[-1].startswith("Erreur : 1 question(s) en échec")


def test_batch_command_refuses_a_malformed_file_before_any_work(run, settings, tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": 1, "question": "Qui ?"}\n{"id": 2}\n', "utf-8")
    result = run("batch", str(questions), "-o", str(tmp_path / "a.jsonl"))
    assert result.exit_code == 1
    assert "ligne 2 : champ « question » manquant" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not settings.index_dir.exists() and not (tmp_path / "a.jsonl").exists()


def test_records_carry_the_verdicts_of_the_checks(settings, index, tmp_path):
    output = tmp_path / "answers.jsonl"
    _run(settings, index, [META], output)
    checks = read_records(output)[0]["checks"]
    assert checks["refusal"] is None and checks["verdicts"][0]["check"] == "refusal"
    calibration = tmp_path / "calibration.jsonl"
    _run(settings.model_copy(update={"enforce_checks": False}), index, [META], calibration)
    assert read_records(calibration)[0]["checks"]["p_refuse"] is not None  # the signals calibration reads


def test_a_csv_of_an_earlier_version_is_read_but_not_appended_to(settings, index, tmp_path):
    output = tmp_path / "answers.csv"
    _run(settings, index, [META], output)
    import csv

    records = read_records(output)
    columns = tuple(f for f in FIELDS if f != "checks")
    with open(output, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for r in records:
            writer.writerow([r[k] if k in ("id", "question", "answer") else
                             "" if r[k] is None else json.dumps(r[k], ensure_ascii=False) for k in columns])
    assert read_records(output)[0]["id"] == records[0]["id"]
    with pytest.raises(RagError, match="version précédente"):
        _run(settings, index, [META, ROSEN], output)
