"""`rag eval`: answer (or read) the reference questions, score them, write the results.

Each run writes into its own folder (`run_folder`: out/eval/<date-heure>[-partie]/ by
default), never over an earlier run: answers.jsonl (the batch records), eval.json (every
figure and one row per question), report.md (the figures in two short tables and the
questions missed) and chart.png; `compare_runs` sets two eval.json side by side. The
app's figures are shown next to trivial baselines (rag/evaluation.py, `BASELINES`) run
on the pipeline's retriever in BM25 mode, without a language model: a figure the app
does not clearly beat there means little. Retrieval is scored by running the retriever
alone at k=10 (the embedder, never the language model), also when an existing answers
file is scored. The settings reported are those the records were made with. The
metrics are in rag/evaluation.py, the batch run in rag/batch.py; matplotlib is imported
only to draw the chart, through its Agg canvas (no window, no pyplot state).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Callable

from rag.batch import OLDEST_FIELDS, Question, pipeline_maker, read_records, run_batch
from rag.errors import RagError
from rag.evaluation import (BASELINE_PASSAGES, KS, SHORT_ANSWER_CHARS, Reference, answer_summary,
                            answer_text, baseline_rows, evidence_found, in_split, load_reference,
                            retrieval_summary, score_record, summary)
from rag.settings import Settings

_log = logging.getLogger(__name__)
RUNS = Path("out") / "eval"  # where a run's folder goes by default, under the current folder
APP = "app"
# (section, figure, label, short label) of the answer table: the app and the baselines
ANSWER_FIGURES = [
    ("answers", "key_facts", "faits clés (strict)", "faits"),
    ("answers", "key_facts_lenient", "faits clés (souple)", "souple"),
    ("citations", "cites_evidence", "cite la preuve", "preuve"),
    ("citations", "precision", "précision des citations", "préc."),
    ("citations", "recall", "rappel des citations", "rappel"),
    ("refusals", "recall", "refus hors corpus (rappel)", "refus"),
    ("refusals", "wrong_refusals", "refus à tort", "à tort"),
    ("answers", "f1", "F1", "F1"),
    ("language", "french", "réponses en français", "fr"),
]
RETRIEVAL = [*[(f"recall@{k}", f"recall@{k}") for k in KS], ("mrr", "MRR")]
SPEED = [("first_token_p50", "1er token p50"), ("first_token_p95", "1er token p95"),
         ("total_p50", "total p50"), ("total_p95", "total p95")]


# ------------------------------------------------------------------ the run


def run_folder(out: Path | None = None, resume: str | None = None, split: str = "all",
               base: Path = RUNS, now: datetime | None = None) -> Path:
    """The folder this run writes into, created. `resume` is a folder to continue, or
    "" to continue `out`; without it `out` must not hold a run yet, and without either a
    new base/<YYYYmmdd-HHMMSS>[-split]/ is made: a run never overwrites an earlier one."""
    if resume == "" and out is None:
        raise RagError("--resume sans dossier : indiquez l'évaluation à reprendre (--resume DOSSIER).")
    if resume and out is not None and Path(resume) != out:
        raise RagError(f"--resume {resume} et --out {out} désignent deux dossiers : n'en donnez qu'un.")
    folder = Path(resume) if resume else out
    if folder is None:
        return _new_folder(base, split, now or datetime.now())
    held = [n for n in ("eval.json", "answers.jsonl") if (folder / n).exists()]
    if held and resume is None:
        raise RagError(f"{folder} contient déjà une évaluation ({', '.join(held)}) : choisissez un autre "
                       f"dossier, ou reprenez-la avec --resume {folder}.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _new_folder(base: Path, split: str, now: datetime) -> Path:
    """base/<date-heure>[-split], with -2, -3… if two runs start in the same second."""
    name = now.strftime("%Y%m%d-%H%M%S") + ("" if split == "all" else f"-{split}")
    for n in range(1, 1000):
        folder = base / (name if n == 1 else f"{name}-{n}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise RagError(f"Impossible de créer un dossier d'évaluation dans {base}.")


def evaluate(settings: Settings, reference: Path, out: Path | None = None, resume: str | None = None,
             answers: Path | None = None, split: str = "all", progress: bool = False, rebuild: bool = False,
             make_pipeline: Callable | None = None, log: Callable = _log.info) -> tuple[dict, Path]:
    """Answer the `split` reference questions into the run's answers.jsonl (`run_folder`
    gives the folder from `out` and `resume`), or score `answers`; score them and the
    baselines, write eval.json, report.md and chart.png there; return eval.json and the folder."""
    if answers and resume is not None:
        raise RagError("--answers note un fichier existant : --resume n'a rien à reprendre.")
    refs = _references(reference, split)
    records = _records_for(refs, answers) if answers else None  # refused before any folder or model
    folder = run_folder(out, resume, split)
    log(f"Évaluation dans {folder}")
    pipeline = (make_pipeline or pipeline_maker(settings, rebuild, log))()
    if records is None:
        answers = folder / "answers.jsonl"
        records = _answer(refs, answers, settings, pipeline, progress, log)
    doc = _document(refs, records, pipeline, reference, split, answers)
    write_outputs(doc, folder)
    return doc, folder


def _answer(refs: list[Reference], answers: Path, settings: Settings, pipeline, progress: bool,
            log: Callable) -> dict[str, dict]:
    """The batch run of the questions into `answers`, continuing what it holds."""
    questions = [Question(r.id, r.question, n) for n, r in enumerate(refs, 1)]
    done = run_batch(questions, answers, settings, lambda: pipeline, progress)
    if done.skipped:
        log(f"Reprise : {done.skipped} réponses déjà faites dans {answers}.")
    return _records_for(refs, answers)


def _references(reference: Path, split: str) -> list[Reference]:
    refs = in_split(load_reference(reference), split)
    if not refs:
        raise RagError(f"{reference} : aucune question de référence dans la partie « {split} » "
                       "(les questions sans champ « split » ne sont que dans « all »).")
    return refs


def _document(refs: list[Reference], records: dict[str, dict], pipeline, reference: Path, split: str,
              answers: Path) -> dict:
    """eval.json: the app's rows and figures, the baselines', the settings of the records."""
    found = {r.id: evidence_found(r, [h.passage for h in pipeline.retrieve(r.question, max(KS))])
             for r in refs if r.evidence}
    rows = [score_record(r, records[r.id]) | {"rank": found.get(r.id, {}).get("rank")} for r in refs]
    app = summary(rows)
    variants = settings_variants([records[r.id] for r in refs])
    return {"created": datetime.now().isoformat(timespec="seconds"), "reference": str(reference),
            "split": split, "answers": str(answers), "models": records[refs[0].id]["models"],
            "settings": variants[0]["settings"] if len(variants) == 1 else None,
            "settings_variants": variants,
            "figures": {"questions": app["questions"], "errors": app["errors"],
                        "retrieval": retrieval_summary(list(found.values()))} | app,
            "baselines": _baselines(refs, pipeline), "rows": rows}


def _baselines(refs: list[Reference], pipeline) -> dict[str, dict]:
    """Each baseline's figures and rows, on the pipeline's retriever in BM25 mode."""
    def bm25(question: str) -> list:
        return [h.passage for h in pipeline.retriever.search(question, BASELINE_PASSAGES, mode="bm25")]

    return {name: {"figures": answer_summary(rows), "rows": rows}
            for name, rows in baseline_rows(refs, bm25).items()}


def settings_variants(records: list[dict]) -> list[dict]:
    """Each distinct `settings` of the records (None: an older version recorded none) with
    the ids made with it: scoring records made differently as one run must show."""
    variants: list[dict] = []
    for record in records:
        made = record.get("settings")
        same = next((v for v in variants if v["settings"] == made), None)
        if same is None:
            variants.append(same := {"settings": made, "ids": []})
        same["ids"].append(record["id"])
    return variants


def _records_for(refs: list[Reference], path: Path) -> dict[str, dict]:
    """The last record of each reference id, checked to be a batch record of that question."""
    records = {r["id"]: r for r in read_records(path)}
    missing = [r.id for r in refs if r.id not in records]
    if missing:
        raise RagError(f"{path} ne contient pas de réponse pour {len(missing)} questions de "
                       f"référence ({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}).")
    for ref in refs:
        if not set(OLDEST_FIELDS) <= set(records[ref.id]) or records[ref.id]["question"] != ref.question:
            raise RagError(f"{path} : l'enregistrement « {ref.id} » ne répond pas à la question "
                           "de référence de ce nom.")
    return records


# ------------------------------------------------------------------ outputs


def write_outputs(doc: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "eval.json", "markdown": out_dir / "report.md", "chart": out_dir / "chart.png"}
    paths["json"].write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", "utf-8")
    paths["markdown"].write_text(markdown(doc), "utf-8")
    chart(doc, paths["chart"])
    return paths


def systems(doc: dict) -> dict[str, dict]:
    """The figures of the app and of each baseline, in the order of the report's columns."""
    return {APP: doc["figures"]} | {name: b["figures"] for name, b in doc["baselines"].items()}


def markdown(doc: dict) -> str:
    """report.md: what was run, the answer table, the tags, retrieval, speed, the misses."""
    f = doc["figures"]
    lines = [f"# Évaluation du {doc['created']}", "",
             f"{f['questions']} questions (partie « {doc['split']} »), dont {f['refusals']['unanswerable']} "
             f"sans réponse dans le corpus ; {f['errors']} en échec. Modèles : {doc['models']['llm']}, "
             f"{doc['models']['embedder']}. Réponses : `{doc['answers']}`.", "", *_settings_lines(doc), ""]
    lines += ["## Réponses, face à des références triviales", "", _answer_table(doc), "", *_answer_notes(doc), ""]
    lines += ["## Par type de question", "", _tag_table(f["by_tag"]), ""]
    lines += ["## Recherche", "", _table([label for _, label in RETRIEVAL],
                                          [[_fmt(f["retrieval"][k]) for k, _ in RETRIEVAL]]), ""]
    lines += ["## Vitesse", "", _table([label for _, label in SPEED] + ["tokens/s"],
                                       [[_fmt(f["speed"][k], " s") for k, _ in SPEED]
                                        + [_fmt(f["speed"]["tokens_per_second"], "", 1)]]), ""]
    missed = [r for r in doc["rows"] if not r["correct"]]
    lines += ["## Questions manquées", ""]
    lines += [f"- {r['id']} ({_why(r)}) : {r['question']}" for r in missed] or ["Aucune."]
    return "\n".join(lines) + "\n"


def _settings_lines(doc: dict) -> list[str]:
    """The settings the answers were made with, and a warning when they differ."""
    variants = doc["settings_variants"]
    if len(variants) > 1:
        return [f"**Attention : les réponses mélangent {len(variants)} jeux de réglages** :"] + [
            f"- {_settings_text(v['settings'])} ({len(v['ids'])} questions : {', '.join(v['ids'][:5])}"
            f"{'…' if len(v['ids']) > 5 else ''})" for v in variants]
    return [f"Réglages des réponses : {_settings_text(variants[0]['settings'])}."]


def _settings_line(doc: dict) -> str:
    """The settings in one line for the terminal, or the warning that they are mixed."""
    variants = doc["settings_variants"]
    if len(variants) > 1:
        return (f"Attention : les réponses mélangent {len(variants)} jeux de réglages "
                "(voir « settings_variants » dans eval.json).")
    return f"Réglages des réponses : {_settings_text(variants[0]['settings'])}."


def _settings_text(settings: dict | None) -> str:
    if settings is None:
        return "inconnus (réponses d'une version antérieure, qui ne les enregistrait pas)"
    return ", ".join(f"{k} = {v}" for k, v in settings.items())


def _answer_table(doc: dict) -> str:
    by_system = systems(doc)
    return _table(["", *by_system], [[label, *(_fmt(fig[s][name]) for fig in by_system.values())]
                                     for s, name, label, _ in ANSWER_FIGURES])


def _answer_notes(doc: dict) -> list[str]:
    c = doc["figures"]["citations"]
    return [
        f"Faits clés (strict) : dans une réponse d'au plus {SHORT_ANSWER_CHARS} caractères (marqueurs [n] "
        "ôtés), cherchés dans ses deux premières phrases ; (souple) : n'importe où, quelle que soit la "
        "longueur. « Cite la preuve » et le rappel des citations portent sur toutes les questions qui ont "
        f"une réponse dans le corpus ({c['questions']} ; un refus ou un échec y compte 0) ; la précision des "
        f"citations, sur les réponses qui citent un passage ({c['citing']} pour l'app).",
        "",
        f"Références sans modèle de langue, sur les {BASELINE_PASSAGES} premiers passages BM25 : "
        "**bm25-passage** colle le premier passage comme réponse, **bm25-sentence** cite la phrase qui "
        "partage le plus de termes avec la question, **refuse-all** refuse tout.",
    ]


def _tag_table(tags: dict[str, dict]) -> str:
    rows = [[tag, str(t["questions"]), _fmt(t["key_facts"]), _fmt(t["key_facts_lenient"]), _fmt(t["refused"])]
            for tag, t in tags.items()]
    return _table(["type", "questions", "faits clés (strict)", "faits clés (souple)", "refusées"], rows)


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(values) + " |" for values in rows)])


def _fmt(value, unit: str = "", digits: int | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits if digits is not None else (2 if unit else 3)}f}{unit}"


def _why(row: dict) -> str:
    if row["error"]:
        return f"échec : {row['error']}"
    if not row["answerable"]:
        return "a répondu au lieu de refuser"
    if row["refused"]:
        return "refus à tort"
    if row["key_facts_lenient"]:
        size = len(answer_text(row["answer"]))
        return (f"réponse trop longue, {size} caractères" if size > SHORT_ANSWER_CHARS
                else "fait clé après les deux premières phrases")
    return "fait clé absent"


def chart(doc: dict, path: Path) -> None:
    """The app's rates as horizontal bars (0–1), each baseline as a mark on its bar;
    the times as vertical bars (seconds)."""
    from matplotlib.figure import Figure

    f = doc["figures"]
    fig = Figure(figsize=(11, 6))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    _rate_bars(left, doc)
    left.set_title(f"{doc['models']['llm']} — {f['questions']} questions ({doc['split']})")
    times = [(label, f["speed"][k]) for k, label in SPEED if f["speed"][k] is not None]
    right.bar([label for label, _ in times], [v for _, v in times], color="#DD8452")
    right.set_ylabel("secondes")
    right.tick_params(axis="x", labelrotation=45)
    for label in right.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _rate_bars(axes, doc: dict) -> None:
    f = doc["figures"]
    rates = [(label, f["retrieval"][k]) for k, label in RETRIEVAL]
    rates += [(label, f[s][name]) for s, name, label, _ in ANSWER_FIGURES]
    labels = [label for label, _ in rates][::-1]
    bars = axes.barh(labels, [v or 0 for _, v in rates][::-1], color="#4C72B0", label=APP)
    axes.bar_label(bars, labels=[_fmt(v) for _, v in rates][::-1], padding=2)
    baselines = {name: b["figures"] for name, b in doc["baselines"].items()}
    for (name, figures), marker in zip(baselines.items(), "D^s"):
        points = [(label, figures[s][n]) for s, n, label, _ in ANSWER_FIGURES if figures[s][n] is not None]
        axes.scatter([v for _, v in points], [label for label, _ in points], marker=marker, zorder=3, label=name)
    axes.set_xlim(0, 1.12)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=4, fontsize="small", frameon=False)


def headline(doc: dict) -> str:
    """For the terminal: counts and settings, retrieval, the answer table, speed."""
    f = doc["figures"]
    lines = [f"{f['questions']} questions (partie {doc['split']}), {f['errors']} en échec", _settings_line(doc)]
    lines.append("recherche  " + "  ".join(f"{label} {_fmt(f['retrieval'][k])}" for k, label in RETRIEVAL))
    width = max(len(name) for name in systems(doc))
    lines.append(" " * width + "".join(f"{short:>8}" for *_, short in ANSWER_FIGURES))
    for name, fig in systems(doc).items():
        lines.append(f"{name:<{width}}" + "".join(f"{_fmt(fig[s][n]):>8}" for s, n, *_ in ANSWER_FIGURES))
    lines.append("vitesse  " + "  ".join(f"{label} {_fmt(f['speed'][k], ' s')}" for k, label in SPEED))
    return "\n".join(lines)


# ------------------------------------------------------------------ comparing two runs


def compare(a: dict, b: dict) -> list[tuple[str, float | None, float | None, float | None]]:
    """(figure, value in a, value in b, b − a) for every figure of either run."""
    fa, fb = _flat(a["figures"]), _flat(b["figures"])
    out = []
    for name in dict.fromkeys([*fa, *fb]):
        va, vb = fa.get(name), fb.get(name)
        out.append((name, va, vb, vb - va if va is not None and vb is not None else None))
    return out


def changed(a: dict, b: dict) -> tuple[list[str], list[str]]:
    """Ids of the questions right in b but not in a, and wrong in b but right in a."""
    right_a = {r["id"]: r["correct"] for r in a["rows"]}
    right_b = {r["id"]: r["correct"] for r in b["rows"]}
    both = [i for i in right_b if i in right_a]
    return ([i for i in both if right_b[i] and not right_a[i]],
            [i for i in both if right_a[i] and not right_b[i]])


def compare_runs(path_a: Path, path_b: Path) -> str:
    a, b = _load_eval(path_a), _load_eval(path_b)
    width = max(len(name) for name, *_ in compare(a, b))
    lines = [f"{'':{width}}  {'A':>9}  {'B':>9}  {'B − A':>9}"]
    for name, va, vb, diff in compare(a, b):
        lines.append(f"{name:{width}}  {_num(va):>9}  {_num(vb):>9}  {_num(diff, sign=True):>9}")
    better, worse = changed(a, b)
    lines += _differences(a, b)
    lines += [f"A : {path_a} ({a['models']['llm']})   B : {path_b} ({b['models']['llm']})",
              f"Justes dans B seulement : {', '.join(better) or 'aucune'}",
              f"Justes dans A seulement : {', '.join(worse) or 'aucune'}"]
    return "\n".join(lines)


def _differences(a: dict, b: dict) -> list[str]:
    """Warnings when two runs do not measure the same thing: other questions, or key facts
    counted the old way (anywhere in the answer) in a run made before the strict count."""
    out = []
    splits = a.get("split", "all"), b.get("split", "all")  # runs made before splits scored all
    if splits[0] != splits[1]:
        out.append(f"Attention : questions de parties différentes (A : {splits[0]}, B : {splits[1]}).")
    old = [name for name, doc in (("A", a), ("B", b)) if "key_facts_lenient" not in doc["figures"].get("answers", {})]
    if len(old) == 1:
        out.append(f"Attention : {old[0]} compte les faits clés à l'ancienne (n'importe où dans la réponse) : "
                   "comparez-le à answers.key_facts_lenient de l'autre.")
    return out


def _num(value, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:{'+' if sign else ''}{'d' if isinstance(value, int) else '.3f'}}"


def _flat(figures: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        elif value is None or isinstance(value, (int, float)):
            out[prefix + key] = value
    return out


def _load_eval(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise RagError(f"Fichier introuvable : {path}") from None
    except ValueError as exc:
        raise RagError(f"{path} : JSON invalide ({exc}).") from None
    if not isinstance(doc, dict) or not {"figures", "rows", "models"} <= set(doc):
        raise RagError(f"{path} n'est pas un résultat de `rag eval` (eval.json).")
    return doc
