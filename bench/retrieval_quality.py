"""Retrieval quality on the reference questions: BM25, dense and fused, side by side.

    python bench/retrieval_quality.py [--embedder NAME] [--passage-chars 300,600] [--weights 0.3,0.5,0.7]

Prints recall@1/3/5/10 and MRR per mode (and per fusion weight) and writes
out/retrieval_quality.json. This is the measurement behind the default retrieval mode
and bm25_weight in rag/settings.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rag.embedding import get_embedder
from rag.evaluation import load_reference, retrieval_scores
from rag.index import build_index
from rag.retrieval import Retriever
from rag.settings import PROJECT_ROOT, Settings

REFERENCE = PROJECT_ROOT / "eval" / "reference.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=Settings().embedder)
    parser.add_argument("--passage-chars", default="600")
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7,0.8")
    parser.add_argument("--candidates", type=int, default=30)
    args = parser.parse_args()
    refs = load_reference(REFERENCE)
    rows = []
    for chars in [int(c) for c in args.passage_chars.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(embedder=args.embedder, passage_chars=chars, index_dir=Path(tmp))
            index = build_index(settings, log=lambda *_: None)
            retriever = Retriever.from_index(index, get_embedder(settings))
            runs = [("bm25", None), ("dense", None)] + [
                ("hybrid", float(w)) for w in args.weights.split(",")]
            for mode, weight in runs:
                def search(q, mode=mode, weight=weight):
                    hits = retriever.search(q, 10, mode, args.candidates, weight or 0.5)
                    return [h.passage for h in hits]
                scores = retrieval_scores(refs, search)
                rows.append({"passage_chars": chars, "passages": len(index.passages), "mode": mode,
                             "bm25_weight": weight, **scores})
                print(_line(rows[-1]), flush=True)
    out = PROJECT_ROOT / "out" / "retrieval_quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"embedder": args.embedder, "rows": rows}, indent=1), "utf-8")
    print(f"-> {out}", file=sys.stderr)


def _line(row: dict) -> str:
    w = "" if row["bm25_weight"] is None else f"{row['bm25_weight']:.1f}"
    return (f"{row['passage_chars']:5d} {row['passages']:4d} {row['mode']:7} {w:4} "
            + " ".join(f"{k}={row[k]:.3f}" for k in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr")))


if __name__ == "__main__":
    main()
