"""What the model reads, measured before any model writes: evidence coverage against size.

    python bench/context_quality.py [--embedder NAME] [--split dev] [--passage-chars 250,400,600]
                                    [--k 2,3,4,5,6] [--windows 0,1] [--modes hybrid:0.3,dense,bm25]
                                    [--gaps 1,0.25,0.18,0.15] [--reference eval/faq/reference.jsonl
                                     --seeds-dir eval/faq/docs]

For each retrieval unit size, mode, number of retrieved units k, gap (a unit whose
similarity is more than the gap below the best one's is not read; 1 reads all k) and
window (sentences added each side, rag/evidence.py), prints over the answerable questions
of the split:
- covered: share of questions whose every evidence span is inside what the model reads
  (an answer cannot be better than this), and any@: share with at least one span;
- read: mean number of units the model reads (k, or fewer under a gap);
- chars and tokens: mean size of the extracts block (Qwen's tokenizer when the model is
  there, else characters / 3.6).
Writes out/context_quality.json. The answer-level sweep of the few best points is
bench/prompt_size.py; this one is cheap enough to scan widely (no language model).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

from rag.embedding import get_embedder
from rag.evaluation import holds, load_reference
from rag.evidence import close_to_best, extracts
from rag.index import build_index
from rag.retrieval import Retriever
from rag.settings import PROJECT_ROOT, Settings

REFERENCE = PROJECT_ROOT / "eval" / "reference.jsonl"


def main() -> None:
    args = parse_args()
    refs = [r for r in load_reference(args.reference) if r.answerable and args.split in ("all", r.split)]
    count = token_counter()
    rows = []
    for chars in args.passage_chars:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(embedder=args.embedder, passage_chars=chars, index_dir=Path(tmp),
                                **({"seeds_dir": args.seeds_dir} if args.seeds_dir else {}))
            index = build_index(settings, log=lambda *_: None)
            retriever = Retriever.from_index(index, get_embedder(settings))
            vectors = {r.id: retriever.embedder.embed_query(r.question) for r in refs}
            for mode in args.modes:
                ranked = {r.id: search(retriever, r.question, mode, max(args.k), vectors[r.id]) for r in refs}
                for k, gap, window in itertools.product(args.k, args.gaps, args.windows):
                    rows.append(measure(refs, ranked, index, k, gap, window, count) | {
                        "passage_chars": chars, "mode": mode, "k": k, "gap": gap, "window": window})
                    print(line(rows[-1]), flush=True)
    out = PROJECT_ROOT / "out" / "context_quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"embedder": args.embedder, "split": args.split, "rows": rows}, indent=1), "utf-8")
    print(f"-> {out}", file=sys.stderr)


def search(retriever: Retriever, question: str, mode: str, k: int, vector):
    name, _, weight = mode.partition(":")
    return retriever.search(question, k, name, 30, float(weight or 0.5), vector=vector)


def measure(refs, ranked: dict, index, k: int, gap: float, window: int, count) -> dict:
    covered = anyone = chars = tokens = read = 0
    for ref in refs:
        kept = close_to_best(ranked[ref.id][:k], gap)
        read += len(kept)
        given = [h.passage for h in extracts(kept, index.article, window)]
        found = [any(holds(p, d, e) for p in given) for d, e in ref.evidence]
        covered += all(found)
        anyone += any(found)
        block = "\n".join(f"[{i}] « {p.text} »" for i, p in enumerate(given, 1))  # as prompts/user.txt
        chars += len(block)
        tokens += count(block)
    n = len(refs)
    return {"covered": covered / n, "any": anyone / n, "chars": chars / n, "tokens": tokens / n,
            "units_read": read / n, "questions": n}


def token_counter():
    """Qwen's own token count of a text (the default model, vocabulary only), or an estimate."""
    try:
        import llama_cpp

        from rag import models

        settings = Settings()
        path = models.local_path(settings, settings.llm)
        vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        return lambda text: len(vocab.tokenize(text.encode("utf-8"), add_bos=False))
    except Exception as exc:  # a measurement without the model still says something
        print(f"(tokens estimés : {exc})", file=sys.stderr)
        return lambda text: round(len(text) / 3.6)


def line(row: dict) -> str:
    return (f"{row['passage_chars']:4d} {row['mode']:11} k={row['k']} gap={row['gap']:.2f} w={row['window']}  "
            f"covered {row['covered']:.3f}  any {row['any']:.3f}  {row['units_read']:.2f} read  "
            f"{row['chars']:6.0f} chars {row['tokens']:5.0f} tokens")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=Settings().embedder)
    parser.add_argument("--split", default="dev", choices=["dev", "test", "all"])
    parser.add_argument("--passage-chars", default="250,400,600", type=_ints)
    parser.add_argument("--k", default="2,3,4,5,6", type=_ints)
    parser.add_argument("--windows", default="0,1", type=_ints)
    parser.add_argument("--modes", default="hybrid:0.3,hybrid:0.5,dense,bm25", type=lambda s: s.split(","))
    parser.add_argument("--gaps", default="1", type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--seeds-dir", type=Path, default=None, help="the corpus the reference is about")
    return parser.parse_args()


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


if __name__ == "__main__":
    main()
