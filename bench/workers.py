"""Questions per minute through `rag batch` at 1, 2 and 4 workers, against model servers.

    python bench/workers.py [--questions 8] [--workers 1,2,4] [--llama-server PATH] [--no-in-process]

Answers the first `--questions` questions of eval/reference.jsonl (the whole pipeline:
retrieval, P(refusing), the answer streamed, the checks with verification) with the default
models, into a fresh output each time, and prints one row per server and worker count:
- in process (llama-cpp-python, 1 worker: the only count it allows), the baseline;
- llama-cpp-python's server (`python -m llama_cpp.server`, started here): one model, one
  request at a time, the others wait;
- with `--llama-server PATH`, llama.cpp's own `llama-server` (built from the llama.cpp source
  vendored in the llama-cpp-python sdist, README « Model servers »), started with
  `--parallel 4` slots sharing the cores by continuous batching.
The index is built in a temporary folder (the project's index/ is left alone). Run it on an
otherwise idle machine: it prints the load average before and after, and results are in
out/workers.json. Nothing here is asserted; tests/test_llm_openai*.py test the behaviour.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rag.batch import Question, run_batch
from rag.evaluation import load_reference
from rag.index import build_index
from rag.models import local_path
from rag.pipeline import Pipeline
from rag.settings import PROJECT_ROOT, Settings

sys.path.insert(0, str(PROJECT_ROOT / "tests"))  # the server launcher the e2e test uses
from model_server import free_port, llama_cpp_server, running  # noqa: E402

REFERENCE = PROJECT_ROOT / "eval" / "reference.jsonl"


def main() -> None:
    args = _arguments()
    questions = [Question(r.id, r.question, i) for i, r in enumerate(load_reference(REFERENCE), 1)][:args.questions]
    with tempfile.TemporaryDirectory() as folder:
        base = Settings(index_dir=Path(folder) / "index")
        index = build_index(base, log=lambda *_: None)
        rows = [] if args.no_in_process else [_measure("in process", base, index, questions, 1, folder)]
        for kind, command, url in _servers(args, base, folder):
            with running(command, url, Path(folder) / f"{kind}.log"):
                for workers in args.workers:
                    served = base.model_copy(update={"llm_backend": "openai", "openai_base_url": url,
                                                     "workers": workers})
                    rows.append(_measure(kind, served, index, questions, workers, folder))
    _report(rows)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--workers", type=lambda s: [int(w) for w in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--llama-server", type=Path, help="llama.cpp's llama-server binary")
    parser.add_argument("--parallel", type=int, default=4, help="llama-server's slots")
    parser.add_argument("--no-in-process", action="store_true")
    return parser.parse_args()


def _servers(args, settings: Settings, folder: str):
    """(kind, command, base URL) of each server to measure."""
    model, threads = local_path(settings, settings.llm), str(os.cpu_count() or 1)
    port = free_port()
    yield "llama-cpp-python server", llama_cpp_server(model, settings.llm, port), f"http://127.0.0.1:{port}/v1"
    if args.llama_server:
        port = free_port()
        command = [str(args.llama_server), "-m", str(model), "--alias", settings.llm, "--host", "127.0.0.1",
                   "--port", str(port), "-c", str(4096 * args.parallel), "--parallel", str(args.parallel),
                   "-t", threads, "-tb", threads]
        yield f"llama-server --parallel {args.parallel}", command, f"http://127.0.0.1:{port}/v1"


def _measure(kind: str, settings: Settings, index, questions: list[Question], workers: int, folder: str) -> dict:
    pipeline = Pipeline(settings, index=index)
    pipeline.retrieve("Meta"), pipeline.llm  # loads the embedder and the model outside the timing
    output = Path(folder) / f"{kind.replace(' ', '-')}-{workers}.jsonl"
    started = time.perf_counter()
    result = run_batch(questions, output, settings, lambda: pipeline)
    seconds = time.perf_counter() - started
    records = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    row = {"server": kind, "workers": workers, "questions": len(questions), "failed": result.failed,
           "seconds": round(seconds, 1), "per_minute": round(len(questions) / seconds * 60, 2),
           "total_p50": round(statistics.median(r["timings"]["total"] for r in records), 1),
           "refused": sum(r["refused"] for r in records), "load": os.getloadavg()[0]}
    print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    return row


def _report(rows: list[dict]) -> None:
    print("| server | workers | questions | failed | refused | seconds | questions/min | per question p50 s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['server']} | {r['workers']} | {r['questions']} | {r['failed']} | {r['refused']} | "
              f"{r['seconds']} | {r['per_minute']} | {r['total_p50']} |")
    print(f"load average (1 min) after each row: {', '.join(str(round(r['load'], 2)) for r in rows)}")
    out = PROJECT_ROOT / "out" / "workers.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "cpu_count": os.cpu_count()}, indent=1), "utf-8")


if __name__ == "__main__":
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    main()
