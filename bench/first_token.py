"""Time to first token through the app, the way a user waits for it: `Pipeline.stream` on
reference questions of the dev split, default settings (prefix cache on, verification
after the answer), one question after another.

    python bench/first_token.py [--questions 40] [--threads N] [--busy]

Prints p50/p95 of the first token and of the whole answer (checks included), the load
average before and after, and with --busy the same beside one `while True: pass` process
(another program using a core). Time on an idle machine: other jobs make these figures noise.
"""

from __future__ import annotations

import argparse
import os
import time

from rag.evaluation import in_split, load_reference, percentile
from rag.settings import PROJECT_ROOT, Settings, load_settings

# a sibling in bench/, found because the script's folder heads sys.path
from helpers import busy_process  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--threads", type=int, default=Settings().threads)
    parser.add_argument("--busy", action="store_true", help="beside one busy process")
    args = parser.parse_args()
    from rag.index import ensure_index
    from rag.pipeline import Pipeline

    settings = load_settings(env=os.environ, threads=args.threads)  # RAG_INDEX_DIR etc. apply
    pipeline = Pipeline(settings, index=ensure_index(settings, log=lambda *_: None))
    questions = [r.question for r in in_split(load_reference(PROJECT_ROOT / "eval" / "reference.jsonl"), "dev")]
    questions = questions[:args.questions]
    pipeline.ask(questions[-1])  # loads the models and computes the system prompts' KV caches
    with busy_process(args.busy):
        load = os.getloadavg()[0]
        first, total = [], []
        for q in questions:
            started, waited = time.perf_counter(), None
            for _ in pipeline.stream(q):  # pieces (str), then the checked Answer
                if waited is None:
                    waited = time.perf_counter() - started
            first.append(waited)
            total.append(time.perf_counter() - started)
    print(f"threads {args.threads}, {'à côté d’un processus occupé' if args.busy else 'machine libre'}, "
          f"{len(first)} questions, charge avant {load:.2f}, après {os.getloadavg()[0]:.2f}")
    print(f"1er token p50 {percentile(first, 50):.2f} s  p95 {percentile(first, 95):.2f} s  "
          f"réponse vérifiée p50 {percentile(total, 50):.2f} s  p95 {percentile(total, 95):.2f} s")


if __name__ == "__main__":
    main()
