"""`rag batch`: many questions from a file, one answer record per question, resumable.

Input: `.txt` (one question a line; its id is the line number), `.jsonl` (`id` and
`question` fields), `.csv` (a `question` column, an optional `id` column). A malformed
file is refused before any work, with its line number. Output: `.jsonl`, or `.csv` (nested
fields as JSON in their cell), appended one record at a time, each flushed and fsynced:
a killed run loses at most the questions in flight. A record torn by a kill mid-write is
cut off on the next run, which skips every id already answered and asks the failed ones
again. A failing question (empty, too long, model error) is recorded with its error and
the run goes on. One pipeline, so one model, for the whole run. With a model server,
`settings.workers` questions are answered at once by as many threads; the records are
still written by one thread, one at a time, in the order the answers are ready. Every
record carries the settings that change answers (`settings_of`); an output started with
other settings, or by an older version that did not record them, is refused rather than
mixed.
Scoring the records against the reference set is rag/evaluation.py's job.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator

from rag.errors import RagError
from rag.files import write_atomic
from rag.pipeline import Pipeline
from rag.records import Answer, answer_json
from rag.settings import Settings

_log = logging.getLogger(__name__)
FIELDS = ("id", "question", "answer", "refused", "error", "citations", "passages", "models",
          "settings", "checks", "timings", "tokens")
# columns of older versions' CSV outputs: still read, never appended to
OLDEST_FIELDS = tuple(f for f in FIELDS if f not in ("settings", "checks"))  # what every version wrote
OLDER_FIELDS = (tuple(f for f in FIELDS if f != "checks"), OLDEST_FIELDS)
# the settings that change answers, recorded in every record (with a hash of the prompts)
ANSWER_SETTINGS = ("llm", "llm_backend", "embedder", "retrieval", "k", "candidates", "bm25_weight", "diversify",
                   "passage_chars", "passage_overlap", "max_gap", "window", "temperature", "max_tokens", "verify",
                   "min_p_yes", "max_p_refuse", "rules", "enforce_checks")
_TEXT_FIELDS = ("id", "question", "answer", "error")  # stored as is in a CSV cell


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    line: int  # where it is in the input file, for error messages


@dataclass(frozen=True)
class BatchResult:
    answered: int
    failed: int
    skipped: int  # already answered in the output file


# ------------------------------------------------------------------ reading questions


def read_questions(path: Path) -> list[Question]:
    """The questions of a .txt, .jsonl or .csv file, or a RagError naming the bad line."""
    kind = _kind(path, (".txt", ".jsonl", ".csv"), "de questions")
    text = _decode(_read_bytes(path), path)
    questions = {".txt": _from_txt, ".jsonl": _from_jsonl, ".csv": _from_csv}[kind](text, path)
    if not questions:
        raise RagError(f"{path} : aucune question.")
    first_seen: dict[str, int] = {}
    for q in questions:
        if q.id in first_seen:
            raise RagError(f"{path}, ligne {q.line} : identifiant « {q.id} » déjà utilisé "
                           f"ligne {first_seen[q.id]}.")
        first_seen[q.id] = q.line
    return questions


def _from_txt(text: str, path: Path) -> list[Question]:
    lines = enumerate(text.split("\n"), 1)
    return [Question(str(n), line.strip(), n) for n, line in lines if line.strip()]


def _from_jsonl(text: str, path: Path) -> list[Question]:
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise RagError(f"{path}, ligne {n} : JSON invalide ({exc}).") from None
        if not isinstance(item, dict):
            raise RagError(f"{path}, ligne {n} : un objet JSON est attendu.")
        out.append(Question(_id(item.get("id"), path, n), _question(item, path, n), n))
    return out


def _from_csv(text: str, path: Path) -> list[Question]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        if "question" not in header:
            raise RagError(f"{path}, ligne 1 : colonne « question » manquante "
                           f"(colonnes : {', '.join(header) or 'aucune'}).")
        out, start = [], reader.line_num + 1
        for row in reader:
            if row and len(row) != len(header):
                raise RagError(f"{path}, ligne {start} : {len(row)} champs au lieu de {len(header)}.")
            if row:
                item = dict(zip(header, row))
                qid = _id(item["id"], path, start) if "id" in header else str(start)
                out.append(Question(qid, item["question"], start))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RagError(f"{path}, ligne {reader.line_num} : CSV invalide ({exc}).") from None
    return out


def _id(value: object, path: Path, line: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise RagError(f"{path}, ligne {line} : champ « id » manquant ou vide (texte ou entier attendu).")
    return str(value).strip()


def _question(item: dict, path: Path, line: int) -> str:
    if not isinstance(item.get("question"), str):
        raise RagError(f"{path}, ligne {line} : champ « question » manquant ou qui n'est pas un texte.")
    return item["question"]  # an empty one is a failed question, not a malformed file


def _kind(path: Path, allowed: tuple[str, ...], what: str) -> str:
    if path.suffix.lower() not in allowed:
        raise RagError(f"Fichier {what} non pris en charge : {path} (attendu : {', '.join(allowed)}).")
    return path.suffix.lower()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise RagError(f"Fichier introuvable : {path}") from None
    except OSError as exc:
        raise RagError(f"Fichier illisible : {path} ({exc.strerror})") from None


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RagError(f"{path}, ligne {line} : le texte n'est pas en UTF-8.") from None


# ------------------------------------------------------------------ the output file


class Output:
    """A .jsonl or .csv file of records, opened for appending one record at a time.

    `records` are the complete ones already there; a torn last record (the process was
    killed while writing it) is not among them and is cut off when the file is opened.
    """

    def __init__(self, path: Path):
        self.path = path
        self.kind = _kind(path, (".jsonl", ".csv"), "de sortie")
        self.records, self._complete = _scan(path, self.kind)
        self._file: IO[bytes] | None = None

    def __enter__(self) -> "Output":
        if self.kind == ".csv" and self.records and not _has_todays_columns(self.path):
            raise RagError(f"{self.path} vient d'une version précédente de `rag batch` : on peut le lire "
                           "(`rag eval --answers`), pas le compléter. Choisissez un autre fichier de sortie.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self._file.truncate(self._complete)
        if self._complete == 0:
            self._append(self._header())
        return self

    def __exit__(self, *exc) -> None:
        self._file.close()

    def write(self, record: dict) -> None:
        self._append(self._encode(record))

    def keep(self, records: list[dict]) -> None:
        """Replace the file's records by `records`, atomically: a kill leaves the old file."""
        data = (self._header() + "".join(self._encode(r) for r in records)).encode("utf-8")
        write_atomic(self.path, data)
        self.records, self._complete = records, len(data)

    def _header(self) -> str:
        return _csv_line(FIELDS) if self.kind == ".csv" else ""

    def _encode(self, record: dict) -> str:
        if self.kind == ".jsonl":
            return json.dumps(record, ensure_ascii=False) + "\n"
        return _csv_line([_cell(record.get(f)) for f in FIELDS])

    def _append(self, text: str) -> None:
        self._file.write(text.encode("utf-8"))  # one write, so a kill tears at most this one
        self._file.flush()
        os.fsync(self._file.fileno())


def read_records(path: Path) -> list[dict]:
    """The complete records of a batch output file."""
    if not path.exists():
        raise RagError(f"Fichier introuvable : {path}")
    return Output(path).records


def _scan(path: Path, kind: str) -> tuple[list[dict], int]:
    """The complete records and the byte length they fill (what comes after is torn)."""
    data = _read_bytes(path) if path.exists() else b""
    data = data[: data.rfind(b"\n") + 1]  # every record ends with a newline
    text = _decode(data, path)
    records, end = (_scan_jsonl if kind == ".jsonl" else _scan_csv)(text, path)
    return records, len(text[:end].encode("utf-8"))


def _scan_jsonl(text: str, path: Path) -> tuple[list[dict], int]:
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "id" not in record:
            raise RagError(f"Fichier de sortie corrompu : {path}, ligne {n}.")
        records.append(record)
    return records, len(text)


def _scan_csv(text: str, path: Path) -> tuple[list[dict], int]:
    lines, ends = _counted_lines(text)
    reader = csv.reader(lines, strict=True)
    records, end, header = [], 0, None
    try:
        for row in reader:
            if header is None:
                header = _columns(row, path)
            elif len(row) == len(header):
                records.append(_uncell(dict(zip(header, row))))
            elif ends[0] < len(text):
                raise csv.Error(f"{len(row)} champs au lieu de {len(header)}")
            else:
                break  # the torn last record
            end = ends[0]
    except (csv.Error, ValueError) as exc:
        if ends[0] < len(text) or not isinstance(exc, csv.Error):
            raise RagError(f"Fichier de sortie corrompu : {path}, ligne {reader.line_num} ({exc}).") from None
    if header != FIELDS and not records:
        end = 0  # nothing to keep: the file restarts with today's header
    return records, end


def _columns(row: list[str], path: Path) -> tuple[str, ...]:
    """The columns of a batch output: today's, or an older version's."""
    if tuple(row) not in (FIELDS, *OLDER_FIELDS):
        raise RagError(f"{path} n'est pas une sortie de `rag batch` (colonnes : {', '.join(row)}).")
    return tuple(row)


def _has_todays_columns(path: Path) -> bool:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return tuple(next(csv.reader(f), [])) == FIELDS


def _counted_lines(text: str) -> tuple[Iterator[str], list[int]]:
    """Lines for csv.reader, and a one-item list holding how many characters it has read."""
    consumed = [0]

    def lines():
        for line in text.splitlines(keepends=True):
            consumed[0] += len(line)
            yield line

    return lines(), consumed


def _csv_line(cells) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return json.dumps(value, ensure_ascii=False)


def _uncell(row: dict) -> dict:
    out = {f: (value if f in _TEXT_FIELDS else json.loads(value)) for f, value in row.items()}
    return out | {"error": out["error"] or None}


# ------------------------------------------------------------------ the run


def answer_file(settings: Settings, questions: Path, output: Path, progress: bool = False,
                rebuild: bool = False, log: Callable = _log.info) -> BatchResult:
    """`rag batch`: read and check the questions file, then answer what `output` lacks."""
    return run_batch(read_questions(questions), output, settings,
                     pipeline_maker(settings, rebuild, log), progress)


def pipeline_maker(settings: Settings, rebuild: bool = False, log: Callable = _log.info) -> Callable[[], Pipeline]:
    """What makes the one pipeline of a run, when (and if) it is needed."""
    def make() -> Pipeline:
        from rag.index import ensure_index

        return Pipeline(settings, index=ensure_index(settings, rebuild=rebuild, log=log), log=log)

    return make


def run_batch(questions: list[Question], output: Path, settings: Settings,
              make_pipeline: Callable[[], Pipeline], progress: bool = False) -> BatchResult:
    """Answer the questions `output` holds no answer for, one appended record each.

    Everything that can be refused is checked first; then `make_pipeline()` is called
    once (so the model loads once), and only if there is something left to answer.
    A question that failed in an earlier run is asked again: its old record goes.
    """
    out = Output(output)
    todo = pending(questions, out.records, output)
    recorded = settings_of(settings)
    same_settings(out.records, recorded, output)
    pipeline = make_pipeline() if todo else None
    retried = {q.id for q in todo}
    if any(r["id"] in retried for r in out.records):
        out.keep([r for r in out.records if r["id"] not in retried])
    with out:
        failed = _answer_all(pipeline, todo, out, progress, recorded, already=len(questions) - len(todo))
    return BatchResult(len(todo) - failed, failed, len(questions) - len(todo))


def pending(questions: list[Question], records: list[dict], output: Path) -> list[Question]:
    """The questions without an answer (a record without error) in the output; a RagError
    if an id there names another question (the output belongs to another input file)."""
    asked = {r["id"]: r.get("question") for r in records}
    for q in questions:
        if q.id in asked and asked[q.id] != q.question:
            raise RagError(f"{output} contient déjà une autre question sous l'identifiant "
                           f"« {q.id} » : choisissez un autre fichier de sortie.")
    answered = {r["id"] for r in records if not r.get("error")}
    return [q for q in questions if q.id not in answered]


def same_settings(records: list[dict], wanted: dict, output: Path) -> None:
    """A RagError naming the first difference if a record was made with other settings
    than `wanted`: answers made differently must not be scored as one run."""
    for r in records:
        if not r.get("settings"):
            raise RagError(f"{output} ne dit pas avec quels réglages ses réponses ont été faites "
                           "(sortie d'une version antérieure) : choisissez un autre fichier de sortie.")
        difference = first_difference(r["settings"], wanted)
        if difference:
            raise RagError(f"{output} a été commencé avec d'autres réglages ({difference}) : "
                           "choisissez un autre fichier de sortie.")


def first_difference(before: dict, now: dict) -> str | None:
    """« k : 3 dans le fichier, 5 maintenant » for the first setting that differs, or None."""
    for name in dict.fromkeys([*now, *before]):
        if before.get(name, "absent") != now.get(name, "absent"):
            return (f"{name} : {_shown(before.get(name, 'absent'))} dans le fichier, "
                    f"{_shown(now.get(name, 'absent'))} maintenant")
    return None


def _shown(value: object) -> str:
    return f"« {value} »" if isinstance(value, str) else json.dumps(value)


def _answer_all(pipeline, todo: list[Question], out: Output, progress: bool, recorded: dict,
                already: int) -> int:
    from tqdm import tqdm

    failed = 0
    with tqdm(total=already + len(todo), initial=already, unit="question", file=sys.stderr,
              disable=not progress, dynamic_ncols=True) as bar:
        for record in _records(pipeline, todo, recorded):
            out.write(record)  # only this thread writes: records are never interleaved
            failed += record["error"] is not None
            bar.update()
    return failed


def _records(pipeline, todo: list[Question], recorded: dict) -> Iterator[dict]:
    """The questions' records: in order with one worker; with `settings.workers` > 1 (a model
    server), that many questions are answered at once and each record comes as soon as its
    answer is ready (a kill loses only the questions in flight; ids say which is which)."""
    workers = pipeline.settings.workers if pipeline is not None else 1
    if workers == 1 or len(todo) < 2:
        yield from (answer_record(pipeline, q, recorded) for q in todo)
        return
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with contextlib.suppress(RagError):  # else each question records the failure
        pipeline.retriever, pipeline.llm  # noqa: B018 - loaded once here, not raced for by the threads
    pool = ThreadPoolExecutor(workers, thread_name_prefix="rag-batch")
    try:
        futures = [pool.submit(answer_record, pipeline, q, recorded) for q in todo]
        yield from (future.result() for future in as_completed(futures))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: nothing new starts


def answer_record(pipeline: Pipeline, q: Question, recorded: dict) -> dict:
    """The output record for one question, with the settings `recorded` (`settings_of`);
    a failure becomes a record with its error."""
    started = time.perf_counter()
    try:
        *_, answer = pipeline.stream(q.question)
        return record_of(q, answer, recorded)
    except RagError as exc:
        error = str(exc)
    except Exception as exc:  # a model or library failure costs this question, not the run
        error = f"{type(exc).__name__} : {exc}"
    failed = Answer(q.question, "", False, (), (), models=models_of(pipeline.settings),
                    timings={"total": time.perf_counter() - started})
    return record_of(q, failed, recorded) | {"error": error}


def record_of(q: Question, answer: Answer, recorded: dict) -> dict:
    """`answer_json` with the question's id and the settings; passages by id (their texts are in the index)."""
    record = {"id": q.id} | answer_json(answer) | {
        "question": q.question,
        "passages": [h.passage.id for h in answer.passages],
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
        "settings": recorded,
    }
    return {name: record[name] for name in FIELDS}  # in the columns' order


def models_of(settings: Settings) -> dict:
    """The models a record names, as the pipeline names them in `Answer.models`."""
    return {"llm": settings.llm, "embedder": settings.embedder}


def settings_of(settings: Settings) -> dict:
    """What a record says it was made with: the `ANSWER_SETTINGS` and a hash of the
    prompt files, so that a changed prompt also tells two runs apart. Settings meant to
    change only the speed (threads, reuse_prefix, n_ctx) are left out."""
    served = {"openai_model": settings.openai_model or settings.llm} if settings.llm_backend == "openai" else {}
    return {name: _plain(getattr(settings, name)) for name in ANSWER_SETTINGS} | served | {
        "prompts": prompts_hash(settings.prompts_dir)}


def _plain(value):
    """A setting as it reads back from JSON (a tuple is a list there)."""
    return list(value) if isinstance(value, tuple) else value


def prompts_hash(folder: Path) -> str:
    """sha256 (first 16 hex digits) of every file's name and bytes in the prompts folder."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    for path in files:
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
