"""Answer quality against prompt size: how many passages, and how long, the model is given.

    python bench/prompt_size.py [--grid 3x900,2x900,...] [--out out/prompt-size]

For each k x passage_chars of the grid, runs the full `rag eval` (real models, verification
on) in its own process, with its own index when the passage length differs, into
OUT/k{k}-c{chars}/ (an interrupted sweep resumes where it stopped), then prints one table:
the prompt's mean length in tokens (the model's own tokenizer on the system and user
messages; the chat template adds a dozen more),
time to first token, and the quality figures the setting is chosen on. Writes OUT/sweep.json.
Each point is a whole eval (~10 minutes on 2 cores): the default grid takes over an hour.
Run nothing else meanwhile if the timings matter; the quality figures do not depend on it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import mean

from rag.settings import PROJECT_ROOT, Settings

GRID = "3x900,2x900,4x900,1x900,3x600,3x1200,5x900"


def parse_grid(text: str) -> list[tuple[int, int]]:
    """« 3x900,2x600 » → [(3, 900), (2, 600)]: passages given x passage length in characters."""
    points = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        k, _, chars = item.partition("x")
        if not (k.isdigit() and chars.isdigit() and int(k) > 0 and int(chars) > 0):
            raise SystemExit(f"point de grille invalide « {item} » : attendu K x CARACTÈRES, par ex. 3x900")
        points.append((int(k), int(chars)))
    return points


def run_eval(k: int, chars: int, out: Path) -> dict:
    folder = out / f"k{k}-c{chars}"
    if not (folder / "eval.json").is_file():
        env = {**os.environ, "RAG_K": str(k), "RAG_PASSAGE_CHARS": str(chars),
               "RAG_INDEX_DIR": str(out / f"index-c{chars}")}
        cmd = [sys.executable, "-m", "rag", "eval", "--out", str(folder), "--resume", "--quiet"]
        print(f"k={k} passage_chars={chars}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, env=env, cwd=PROJECT_ROOT, check=True)
    return json.loads((folder / "eval.json").read_text(encoding="utf-8"))


def prompt_tokens(k: int, chars: int, out: Path, questions: list[str]) -> float:
    """Mean prompt length in tokens over the reference questions, with this setting."""
    from rag.llms import get_llm
    from rag.pipeline import Pipeline

    settings = Settings(k=k, passage_chars=chars, index_dir=out / f"index-c{chars}")
    pipeline = Pipeline(settings, llm=get_llm(Settings()), log=lambda *_: None)
    count = pipeline.llm.count_tokens
    return mean(sum(count(m["content"]) for m in pipeline.messages(q, pipeline.read(q))) for q in questions)


def row(k: int, chars: int, report: dict, tokens: float) -> dict:
    f = report["figures"]
    return {"k": k, "passage_chars": chars, "prompt_tokens": round(tokens),
            "first_token_p50_s": f["speed"]["first_token_p50"], "key_facts": f["answers"]["key_facts"],
            "f1": f["answers"]["f1"], "cites_evidence": f["citations"]["cites_evidence"],
            "citation_precision": f["citations"]["precision"], "refusal_recall": f["refusals"]["recall"],
            "wrong_refusals": f["refusals"]["wrong_refusals"], "recall@k": f["retrieval"].get(f"recall@{k}")}


def table(rows: list[dict]) -> str:
    cols = ["k", "passage_chars", "prompt_tokens", "first_token_p50_s", "key_facts", "cites_evidence",
            "refusal_recall", "wrong_refusals", "f1", "recall@k"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [r[c] if isinstance(r[c], int) or r[c] is None else f"{r[c]:.3f}" for c in cols]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default=GRID, help=f"points K x CHARS (default {GRID})")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "out" / "prompt-size")
    args = parser.parse_args()
    points = parse_grid(args.grid)
    reports = {(k, c): run_eval(k, c, args.out) for k, c in points}
    from rag.evaluation import load_reference

    questions = [r.question for r in load_reference(PROJECT_ROOT / "eval" / "reference.jsonl")]
    rows = [row(k, c, reports[k, c], prompt_tokens(k, c, args.out, questions)) for k, c in points]
    rows.sort(key=lambda r: r["prompt_tokens"])
    print(table(rows))
    (args.out / "sweep.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
