"""Retrieval quality on the reference questions: BM25 analyzers, dense and fused, side by side.

    python bench/retrieval_quality.py [--embedder NAME] [--split dev|test|all] [--unaccented]
                                      [--passage-chars 600] [--weights 0.3,0.5,0.7]

Prints recall@1/3/5/10 and MRR (a hit is a passage holding the evidence span) and writes
out/retrieval_quality.json:
- BM25 alone and fused (bm25_weight of the settings) for each way of making terms: the
  in-house BM25 the app had before bm25s (scipy, rag.text.terms; kept here as the
  baseline), and bm25s with each analyzer of rag/stores/bm25.py (our terms(), French
  Snowball with bm25s' stopwords, Snowball on our accent-folded words);
- dense alone and fused at each weight, with the app's default analyzer.
Questions: the answerable ones of `--split` (default dev: tune on dev, report on test);
`--unaccented` asks them as typed without accents (« depenses »), as users often do.
This is the measurement behind ANALYZER in rag/stores/bm25.py and the retrieval mode
and bm25_weight in rag/settings.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.embedding import get_embedder
from rag.evaluation import load_reference, retrieval_scores
from rag.index import build_index
from rag.retrieval import Retriever
from rag.settings import PROJECT_ROOT, Settings
from rag.stores.bm25 import ANALYZER, ANALYZERS, Bm25Index, build_bm25, top_rows
from rag.text import terms

REFERENCE = PROJECT_ROOT / "eval" / "reference.jsonl"
IN_HOUSE = "in-house (scipy, terms)"


class InHouseBM25:
    """The BM25 the app used before bm25s: Okapi BM25 (k1 1.2, b 0.75) over a sparse
    term x passage matrix of rag.text.terms, rebuilt at every start."""

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75):
        from scipy.sparse import csr_matrix

        self.vocab: dict[str, int] = {}
        counts = [self._count(terms(t)) for t in texts]
        lengths = np.array([sum(tf.values()) for tf in counts], dtype=np.float32)
        avg = max(float(lengths.mean()), 1e-9)
        df = np.zeros(len(self.vocab), dtype=np.float32)
        for tf in counts:
            df[list(tf)] += 1
        idf = np.log(1 + (len(counts) - df + 0.5) / (df + 0.5))
        rows, cols, vals = [], [], []
        for j, tf in enumerate(counts):
            norm = k1 * (1 - b + b * lengths[j] / avg)
            for t, n in tf.items():
                rows.append(t), cols.append(j), vals.append(idf[t] * n * (k1 + 1) / (n + norm))
        self.weights = csr_matrix((vals, (rows, cols)), shape=(len(self.vocab), len(counts)), dtype=np.float32)

    def _count(self, doc: list[str]) -> dict[int, int]:
        tf: dict[int, int] = {}
        for term in doc:
            t = self.vocab.setdefault(term, len(self.vocab))
            tf[t] = tf.get(t, 0) + 1
        return tf

    def top(self, query: str, n: int, mask=None) -> dict[int, float]:
        ids = sorted({self.vocab[t] for t in terms(query) if t in self.vocab})
        if not ids:
            return {}
        return top_rows(np.asarray(self.weights[ids].sum(axis=0)).ravel(), n)


def questions(split: str) -> list:
    """Answerable reference questions of the split ("all": every one)."""
    refs = [r for r in load_reference(REFERENCE) if r.answerable and r.evidence]
    return refs if split == "all" else [r for r in refs if r.split == split]


def bm25_variants(index, tmp: Path) -> dict:
    texts = [p.text for p in index.passages]
    variants = {IN_HOUSE: InHouseBM25(texts)}
    for name in ANALYZERS:
        build_bm25(texts, tmp / name, name)
        variants[f"bm25s + {name}"] = Bm25Index.load(tmp / name, name)
    return variants


def score(refs, retriever: Retriever, mode: str, weight: float, candidates: int, unaccented: bool) -> dict:
    def search(q: str):
        q = _unaccented(q) if unaccented else q
        return [h.passage for h in retriever.search(q, 10, mode, candidates, weight)]
    return retrieval_scores(refs, search)


def _unaccented(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def run(args: argparse.Namespace, chars: int, refs, tmp: Path) -> list[dict]:
    settings = Settings(embedder=args.embedder, passage_chars=chars, index_dir=tmp / "index")
    index = build_index(settings, log=lambda *_: None)
    base = Retriever.from_index(index, get_embedder(settings))
    rows = []
    for name, bm25 in bm25_variants(index, tmp).items():
        retriever = Retriever(base.passages, base.store, base.embedder, bm25, base.articles)
        for mode in ("bm25", "hybrid"):
            rows.append({"terms": name, "mode": mode, "bm25_weight": settings.bm25_weight if mode == "hybrid" else None,
                         **score(refs, retriever, mode, settings.bm25_weight, args.candidates, args.unaccented)})
    for mode, weight in [("dense", None)] + [("hybrid", float(w)) for w in args.weights.split(",")]:
        rows.append({"terms": f"bm25s + {ANALYZER}", "mode": mode, "bm25_weight": weight,
                     **score(refs, base, mode, weight or 0.5, args.candidates, args.unaccented)})
    return [r | {"passage_chars": chars, "passages": len(index.passages)} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=Settings().embedder)
    parser.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    parser.add_argument("--unaccented", action="store_true", help="ask the questions without their accents")
    parser.add_argument("--passage-chars", default="600")
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7,0.8")
    parser.add_argument("--candidates", type=int, default=30)
    args = parser.parse_args()
    refs = questions(args.split)
    accents = ", asked without accents" if args.unaccented else ""
    print(f"{len(refs)} answerable questions ({args.split}{accents}), embedder {args.embedder}", flush=True)
    rows = []
    for chars in [int(c) for c in args.passage_chars.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            for row in run(args, chars, refs, Path(tmp)):
                rows.append(row)
                print(_line(row), flush=True)
    out = PROJECT_ROOT / "out" / "retrieval_quality.json"
    out.parent.mkdir(exist_ok=True)
    doc = {"embedder": args.embedder, "split": args.split, "unaccented": args.unaccented, "rows": rows}
    out.write_text(json.dumps(doc, indent=1), "utf-8")
    print(f"-> {out}", file=sys.stderr)


def _line(row: dict) -> str:
    w = "" if row["bm25_weight"] is None else f"{row['bm25_weight']:.1f}"
    return (f"| {row['passage_chars']} | {row['terms']} | {row['mode']} {w} | "
            + " | ".join(f"{row[k]:.3f}" for k in ("recall@1", "recall@3", "recall@5", "recall@10", "mrr")) + " |")


if __name__ == "__main__":
    main()
