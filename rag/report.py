"""`rag eval`: answer (or read) the reference questions, score them, write the results.

Writes eval.json (every figure and one row per question), report.md (the figures in
short tables and the questions missed) and chart.png; `compare_runs` sets two eval.json
side by side. Retrieval is scored by running the retriever alone at k=10 (the embedder,
never the language model), also when an existing answers file is scored. The metrics
are in rag/evaluation.py, the batch run in rag/batch.py; matplotlib is imported only to
draw the chart, through its Agg canvas (no window, no pyplot state).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Callable

from rag.batch import FIELDS, Question, pipeline_maker, read_records, run_batch
from rag.errors import RagError
from rag.evaluation import KS, Reference, evidence_found, load_reference, retrieval_summary, score_record, summary
from rag.settings import Settings

# (section, figure, label) in the order of the report and the chart
FIGURES = [
    *[("retrieval", f"recall@{k}", f"recall@{k}") for k in KS],
    ("retrieval", "mrr", "MRR"),
    ("answers", "exact_match", "exact match"), ("answers", "f1", "F1"),
    ("answers", "key_facts", "faits clés"),
    ("citations", "precision", "précision des citations"), ("citations", "recall", "rappel des citations"),
    ("citations", "cites_evidence", "cite la preuve"),
    ("refusals", "precision", "précision des refus"), ("refusals", "recall", "rappel des refus"),
    ("refusals", "wrong_refusals", "refus à tort"),
    ("language", "french", "réponses en français"),
]
SPEED = [("first_token_p50", "1er token p50"), ("first_token_p95", "1er token p95"),
         ("total_p50", "total p50"), ("total_p95", "total p95")]
TITLES = {"retrieval": "Recherche", "answers": "Réponses", "citations": "Citations",
          "refusals": "Refus", "language": "Langue"}


def evaluate(settings: Settings, reference: Path, out_dir: Path, answers: Path | None = None,
             resume: bool = False, progress: bool = False, rebuild: bool = False,
             make_pipeline: Callable | None = None, log: Callable = print) -> dict:
    """Answer the reference questions into out_dir/answers.jsonl (or score `answers`),
    score them, write eval.json, report.md and chart.png in `out_dir`; return eval.json."""
    refs = load_reference(reference)
    if not refs:
        raise RagError(f"{reference} : aucune question de référence.")
    records = _records_for(refs, answers) if answers else None  # refused before any model loads
    pipeline = (make_pipeline or pipeline_maker(settings, rebuild, log))()
    if records is None:
        answers = out_dir / "answers.jsonl"
        if not resume:
            answers.unlink(missing_ok=True)
        questions = [Question(r.id, r.question, n) for n, r in enumerate(refs, 1)]
        run_batch(questions, answers, settings, lambda: pipeline, progress)
        records = _records_for(refs, answers)
    found = {r.id: evidence_found(r, [h.passage for h in pipeline.retrieve(r.question, max(KS))])
             for r in refs if r.evidence}
    rows = [score_record(r, records[r.id]) | {"rank": found.get(r.id, {}).get("rank")} for r in refs]
    doc = {"created": datetime.now().isoformat(timespec="seconds"), "reference": str(reference),
           "answers": str(answers), "models": records[refs[0].id]["models"],
           "settings": _settings_part(settings),
           "figures": _figures(retrieval_summary(list(found.values())), summary(rows)), "rows": rows}
    write_outputs(doc, out_dir)
    return doc


def _records_for(refs: list[Reference], path: Path) -> dict[str, dict]:
    """The last record of each reference id, checked to be a batch record of that question."""
    records = {r["id"]: r for r in read_records(path)}
    missing = [r.id for r in refs if r.id not in records]
    if missing:
        raise RagError(f"{path} ne contient pas de réponse pour {len(missing)} questions de "
                       f"référence ({', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}).")
    for ref in refs:
        if not set(FIELDS) <= set(records[ref.id]) or records[ref.id]["question"] != ref.question:
            raise RagError(f"{path} : l'enregistrement « {ref.id} » ne répond pas à la question "
                           "de référence de ce nom.")
    return records


def _figures(retrieval: dict, answers: dict) -> dict:
    counts = {"questions": answers["questions"], "errors": answers["errors"]}
    return counts | {"retrieval": retrieval} | answers


def _settings_part(settings: Settings) -> dict:
    names = ("embedder", "retrieval", "k", "bm25_weight", "passage_chars", "temperature",
             "max_tokens", "verify")
    return {n: getattr(settings, n) for n in names}


# ------------------------------------------------------------------ outputs


def write_outputs(doc: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "eval.json", "markdown": out_dir / "report.md", "chart": out_dir / "chart.png"}
    paths["json"].write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", "utf-8")
    paths["markdown"].write_text(markdown(doc), "utf-8")
    chart(doc, paths["chart"])
    return paths


def markdown(doc: dict) -> str:
    f = doc["figures"]
    lines = [f"# Évaluation du {doc['created']}", "",
             f"{f['questions']} questions, dont {f['refusals']['unanswerable']} sans réponse dans le "
             f"corpus ; {f['errors']} en échec. Modèles : {doc['models']['llm']}, "
             f"{doc['models']['embedder']}. Réponses : `{doc['answers']}`.", ""]
    for section, title in TITLES.items():
        figures = [(label, f[s][name]) for s, name, label in FIGURES if s == section]
        lines += [f"## {title}", "", _table([label for label, _ in figures],
                                            [_fmt(v) for _, v in figures]), ""]
    speed = f["speed"]
    lines += ["## Vitesse", "", _table([label for _, label in SPEED] + ["tokens/s"],
                                       [_fmt(speed[k], " s") for k, _ in SPEED]
                                       + [_fmt(speed["tokens_per_second"], "", 1)]), ""]
    missed = [r for r in doc["rows"] if not r["correct"]]
    lines += ["## Questions manquées", ""]
    lines += [f"- {r['id']} ({_why(r)}) : {r['question']}" for r in missed] or ["Aucune."]
    return "\n".join(lines) + "\n"


def _table(header: list[str], values: list[str]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      "| " + " | ".join(values) + " |"])


def _fmt(value, unit: str = "", digits: int | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits if digits is not None else (2 if unit else 3)}f}{unit}"


def _why(row: dict) -> str:
    if row["error"]:
        return f"échec : {row['error']}"
    if not row["answerable"]:
        return "a répondu au lieu de refuser"
    return "refus à tort" if row["refused"] else "fait clé absent"


def chart(doc: dict, path: Path) -> None:
    """The rates as horizontal bars (0–1), the times as vertical bars (seconds)."""
    from matplotlib.figure import Figure

    f = doc["figures"]
    rates = [(label, f[s][name]) for s, name, label in FIGURES if f[s][name] is not None]
    times = [(label, f["speed"][k]) for k, label in SPEED if f["speed"][k] is not None]
    fig = Figure(figsize=(11, 5.5))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    bars = left.barh([label for label, _ in rates][::-1], [v for _, v in rates][::-1], color="#4C72B0")
    left.bar_label(bars, fmt="%.2f", padding=2)
    left.set_xlim(0, 1.08)
    left.set_title(f"{doc['models']['llm']} — {f['questions']} questions")
    right.bar([label for label, _ in times], [v for _, v in times], color="#DD8452")
    right.set_ylabel("secondes")
    right.tick_params(axis="x", labelrotation=45)
    for label in right.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def headline(doc: dict) -> str:
    """Three lines for the terminal."""
    f = doc["figures"]
    rates = "  ".join(f"{label} {_fmt(f[s][name])}" for s, name, label in FIGURES)
    speed = "  ".join(f"{label} {_fmt(f['speed'][k], ' s')}" for k, label in SPEED)
    return f"{f['questions']} questions, {f['errors']} en échec\n{rates}\n{speed}"


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
    lines += [f"A : {path_a} ({a['models']['llm']})   B : {path_b} ({b['models']['llm']})",
              f"Justes dans B seulement : {', '.join(better) or 'aucune'}",
              f"Justes dans A seulement : {', '.join(worse) or 'aucune'}"]
    return "\n".join(lines)


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
