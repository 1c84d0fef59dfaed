"""Speed and memory of every stage, against what the machine allows (GitHub issue 5).

    python bench/run.py [--quick] [--full] [--llm NAME] [--repeats N] [--out out/bench.json]
    python bench/run.py --retrieval-only [--sizes 100000,1000000] [--milvus-sizes 100000]

One run prints a Markdown table per part and writes every figure to JSON:
- generation: time to first token and tokens/s through the app (Pipeline.stream, no
  verification) and through llama_cpp.Llama called directly with the same messages,
  sampling, length and context; alternated, medians; each run starts from a cleared
  context and the app's prefix cache is off, so every prefill is whole; then the app
  again with its prefix cache (the system prompt's KV cache put back: the real case);
- end to end: one question with verification, split into retrieval, prompt, prefill,
  decode and verification; the model's load time and the process's RSS once it is loaded;
- machine limits: copy bandwidth (~1 GB numpy array) and float32 matmul throughput, and
  the ceilings they put on decode (model bytes read per token) and prefill (2 x params
  FLOPs per prompt token);
- index build: cleaning, splitting, embedding, writing the index (tables, BM25, vector
  store), in articles/s and passages/s, with peak memory, on the seeds and on corpora 100x and 1000x the seeds (the seed pages with
  their digits redrawn and some words swapped). At 1000x the embedding rate is measured
  on a sample and extrapolated, unless --full;
- retrieval: latency p50/p95 per query (dense, BM25, fused) on the seeds; then, through
  the app's own loading and search code, synthetic indexes of 100k and 1M passages
  (bench/retrieval_scale.py): start-up, peak RSS, p50/p95 per mode, recall@10 against
  exact search, for FAISS flat and IVF and Milvus Lite, and exact search's p95 by size.
  `--retrieval-only` runs this part alone.
The language model goes first, while the machine is most likely quiet. Every part says
how much of the CPU other processes used meanwhile: above 10 % its timings are noise.
--quick: seeds and 100k only, one generation run. Quality is measured elsewhere
(`rag eval`, bench/retrieval_quality.py).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path
from statistics import median

import numpy as np

from rag.evaluation import percentile
from rag.settings import PROJECT_ROOT, Settings

# siblings in bench/, found because the script's folder heads sys.path
from helpers import write_synthetic_corpus  # noqa: E402
from retrieval_scale import measure_query_embedding, measure_size, write_synthetic  # noqa: E402
from tables import build_table, end_to_end_table, generation_table, retrieval_tables, scale_tables  # noqa: E402

QUESTION = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"
REFERENCE = PROJECT_ROOT / "eval" / "reference.jsonl"
EMBED_SAMPLE = 512  # passages embedded to extrapolate the embedding rate of a big corpus
MEMORY_SAMPLE = 128  # passages embedded in the traced pass: working memory is per batch of 32
QWEN_PARAMS = 1.54e9  # Qwen2.5-1.5B without its embedding table, when llama_cpp cannot say


# ---------------------------------------------------------------- measuring

def maxrss_mb() -> float:
    """The process's resident-memory high-water mark so far, in MB (Linux counts KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def peak_rss_mb() -> float:
    """The same high-water mark from Linux's VmHWM, which, unlike ru_maxrss, does not carry
    over the parent's peak into a process started by fork + exec; ru_maxrss elsewhere."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return maxrss_mb()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) * 1024 / 1e6 if found else maxrss_mb()


@contextmanager
def stage(row: dict, name: str):
    """Record the block's time and the RSS high-water mark after it, or, while tracemalloc
    traces, its Python peak only (tracing slows Python code 1.3-3x: timings come untraced)."""
    traced = tracemalloc.is_tracing()
    if traced:
        tracemalloc.reset_peak()
    started = time.perf_counter()
    yield
    entry = row.setdefault(name, {})
    if traced:
        entry["py_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    else:
        entry.update(s=time.perf_counter() - started, maxrss_mb=maxrss_mb(), peak_rss_mb=peak_rss_mb())


@contextmanager
def others_cpu(record: dict):
    """Share of the machine's CPU time that other processes used during the block: timings
    taken while it is high say more about the neighbours than about this code."""
    import psutil

    def busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

    def mine() -> float:
        t = psutil.Process().cpu_times()
        return t.user + t.system

    started, busy0, mine0 = time.perf_counter(), busy(), mine()
    yield
    wall = (time.perf_counter() - started) * (psutil.cpu_count() or 1)
    record["others_cpu"] = max(0.0, (busy() - busy0) - (mine() - mine0)) / wall


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def measure_machine() -> dict:
    return {"bandwidth_gbs": copy_bandwidth(), "matmul_gflops": matmul_throughput()}


def copy_bandwidth(gigabytes: float = 1.0) -> float:
    """GB/s copying a ~1 GB float32 array, bytes read + bytes written (STREAM's count), best of 3."""
    src = np.ones(int(gigabytes * 1e9) // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return 2 * gigabytes / min(_timed(lambda: np.copyto(dst, src)) for _ in range(3))


def matmul_throughput(n: int = 2048) -> float:
    """GFLOP/s of a float32 n x n matmul through numpy's BLAS, best of 3."""
    a, b = np.ones((n, n), dtype=np.float32), np.ones((n, n), dtype=np.float32)
    return 2 * n**3 / min(_timed(lambda: a @ b) for _ in range(3)) / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ---------------------------------------------------------------- index build

def measure_build(settings: Settings, folder: Path, label: str, sample: int | None = None):
    """Build the index of `folder` stage by stage, as rag.index does, into settings.index_dir;
    the row. With `sample`, only that many passages are embedded and the time is scaled to
    all of them. A second, traced pass (embedding MEMORY_SAMPLE passages at most, into
    another folder) gives Python peaks."""
    row = {"corpus": label}
    with others_cpu(row):
        articles, passages, embedded = _build_stages(settings, folder, sample, row)
    row["embedding"]["s"] *= len(passages) / embedded
    tracemalloc.start()
    _build_stages(settings.model_copy(update={"index_dir": settings.index_dir / "traced"}), folder,
                  MEMORY_SAMPLE, row)
    tracemalloc.stop()
    row.update(articles=len(articles), passages=len(passages), embedded=embedded,
               extrapolated=embedded < len(passages), traced_sample=MEMORY_SAMPLE)
    return row


def _build_stages(settings: Settings, folder: Path, sample: int | None, row: dict):
    from rag.articles import load_corpus
    from rag.embedding import get_embedder
    from rag.passages import split_passages

    embedder = get_embedder(settings)
    with stage(row, "cleaning"):
        articles = load_corpus(folder)
    with stage(row, "splitting"):
        passages = [p for a in articles for p in split_passages(a, settings.passage_chars, settings.passage_overlap)]
    texts = [p.text for p in passages]
    if sample and sample < len(texts):
        texts = texts[:: len(texts) // sample][:sample]
    with stage(row, "embedding"):
        vectors = embedder.embed_passages(texts)
    with stage(row, "index"):  # tables, BM25, vector store, manifest (the index cost ignores values)
        write_synthetic(settings, articles, passages, np.resize(vectors, (len(passages), embedder.dim)), None,
                        embedder=settings.embedder)
    return articles, passages, len(texts)


def measure_seeds_build(settings: Settings):
    """The seeds' row, their index (written in settings.index_dir: generation and retrieval
    use it), and the embedder's load time."""
    from rag.embedding import get_embedder
    from rag.index import load_index

    load_s = _timed(lambda: get_embedder(settings))
    get_embedder(settings).embed_passages(["Échauffement."])  # first calls set up lazily
    row = measure_build(settings, settings.seeds_dir, "seeds")
    return row, load_index(settings, check_corpus=False), load_s


def measure_synthetic_builds(settings: Settings, copies: list[int], full: bool) -> list[dict]:
    """One row per synthetic corpus, each built in a fresh process so that its peak RSS is
    that build's, not the high-water mark of everything measured before (the model)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    rows = []
    for n in copies:
        log(f"corpus {n}x: writing and building…")
        sample = None if full or n < 1000 else EMBED_SAMPLE
        with tempfile.TemporaryDirectory() as tmp, \
                ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            write_synthetic_corpus(settings.seeds_dir, Path(tmp) / "pages", n)
            child = settings.model_copy(update={"index_dir": Path(tmp) / "index"})
            rows.append(pool.submit(_child_build, child, Path(tmp) / "pages", f"{n}x", sample).result())
    return rows


def _child_build(settings: Settings, folder: Path, label: str, sample: int | None) -> dict:
    from rag.embedding import get_embedder

    get_embedder(settings).embed_passages(["Échauffement."])
    return measure_build(settings, folder, label, sample)


# ---------------------------------------------------------------- retrieval

def measure_latency(retriever, questions: list[str], settings: Settings, label: str, store: str,
                    modes=("dense", "bm25", "hybrid")) -> list[dict]:
    """p50/p95 of Retriever.search per question, per mode, after one warm-up query."""
    rows = []
    for mode in modes:
        def search(q: str, mode=mode):
            return retriever.search(q, settings.k, mode, settings.candidates, settings.bm25_weight)
        search(questions[0])
        ms = [1000 * _timed(lambda q=q: search(q)) for q in questions]
        rows.append({"index": label, "passages": len(retriever.passages), "store": store,
                     "mode": mode, "queries": len(ms), "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)})
    return rows


def measure_retrieval(settings: Settings, seeds_index) -> list[dict]:
    """Latency on the seeds, query embedding included."""
    from rag.embedding import get_embedder
    from rag.retrieval import Retriever

    busy: dict = {}
    with others_cpu(busy):
        rows = measure_latency(Retriever.from_index(seeds_index, get_embedder(settings)), reference_questions(),
                               settings, "seeds", seeds_index.manifest["store"]["kind"])
    return [r | busy for r in rows]


def reference_questions() -> list[str]:
    from rag.evaluation import load_reference

    return [r.question for r in load_reference(REFERENCE)]


def measure_scale(sizes: list[int], milvus_sizes: list[int], flat_sweep: bool) -> dict:
    """Retrieval through the app on synthetic indexes (bench/retrieval_scale.py): FAISS with
    the type the size chooses, plus flat at sizes where IVF is chosen and flat still fits
    the p95 sweep, plus Milvus Lite at `milvus_sizes`."""
    from rag.stores.faiss_store import index_type

    questions, rows, flat = reference_questions(), [], []
    for n in sizes:
        variants = [("faiss", "flat"), ("faiss", "ivf")] if n <= 100_000 else [("faiss", index_type(n))]
        variants += [("milvus", None)] if n in milvus_sizes else []
        more, swept = measure_size(n, variants, questions, Settings().seeds_dir, log,
                                   sweep=flat_sweep and n == max(sizes))
        rows, flat = rows + more, flat + swept
    return {"rows": rows, "flat": flat, "embedding": measure_query_embedding(questions, log)}


# ---------------------------------------------------------------- generation

def load_app_model(settings: Settings) -> dict:
    """Load the app's model (rag.llms) and say how long it took and what it holds."""
    import psutil

    from rag.llms import get_llm

    before = psutil.Process().memory_info().rss
    load_s = _timed(lambda: get_llm(settings))
    after = psutil.Process().memory_info().rss
    return {"load_s": load_s, "rss_before_mb": before / 1e6, "rss_loaded_mb": after / 1e6}


def load_direct(settings: Settings):
    """llama-cpp-python with the parameters rag.llms.llamacpp.LlamaCppLLM uses."""
    import llama_cpp

    from rag import models

    path = models.local_path(settings, settings.llm)
    return llama_cpp.Llama(model_path=str(path), n_ctx=settings.n_ctx, n_threads=settings.threads,
                           n_threads_batch=settings.threads, n_batch=512, verbose=False)


def run_app(pipeline, question: str) -> dict:
    """One answer through Pipeline.stream, from a cleared context (a full prefill)."""
    pipeline.llm.model.reset()
    started, stamps, answer = time.perf_counter(), [], None
    for item in pipeline.stream(question):
        if isinstance(item, str):
            stamps.append(time.perf_counter())
        else:
            answer = item
    t = answer.timings
    return {**_stamps(started, stamps), "text": answer.raw, "before_llm_s": t["retrieval"] + t["prompt"],
            "retrieval_s": t["retrieval"], "prompt_s": t["prompt"], "verify_s": t.get("checks", 0.0),
            "total_s": t["total"], "passages": [h.passage.id for h in answer.passages]}


def run_direct(llm, messages: list[dict], settings: Settings) -> dict:
    """The same answer from llama_cpp.Llama itself: same messages, sampling and length."""
    llm.reset()
    started, stamps, text = time.perf_counter(), [], []
    chunks = llm.create_chat_completion(messages=messages, max_tokens=settings.max_tokens, temperature=0.0,
                                        top_k=1, repeat_penalty=1.05, stream=True)
    for chunk in chunks:
        if piece := chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
            text.append(piece)
    return {**_stamps(started, stamps), "text": "".join(text), "before_llm_s": 0.0}


def _stamps(started: float, stamps: list[float]) -> dict:
    decode = stamps[-1] - stamps[0]
    return {"ttft_s": stamps[0] - started, "last_s": stamps[-1] - started, "decode_s": decode,
            "pieces": len(stamps), "tokens_per_s": (len(stamps) - 1) / decode if decode > 0 else 0.0}


def prompt_tokens(llm, messages: list[dict]) -> int:
    """Prompt length in tokens, from a one-token completion (which also warms the model up)."""
    llm.reset()
    out = llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0, top_k=1)
    return out["usage"]["prompt_tokens"]


def measure_generation(settings: Settings, index, question: str, repeats: int) -> dict:
    """App vs llama-cpp-python on the identical prompt, alternating, medians of `repeats`;
    the app's prefix cache is off for that comparison (both evaluate the whole prompt), then
    on for `repeats` more app runs (the system prompt's KV cache put back, the rest evaluated)."""
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings.model_copy(update={"verify": False}), index=index)
    hits = pipeline.read(question)  # what the app gives the model: the same prompt for both
    messages = pipeline.messages(question, hits)
    direct = load_direct(settings)
    n_prompt = prompt_tokens(direct, messages)
    prompt_tokens(pipeline.llm.model, messages)
    runs: dict[str, list[dict]] = {"app": [], "direct": [], "app_prefix_cache": []}
    busy: dict = {}
    with others_cpu(busy):
        pipeline.llm.reuse_prefix = False
        for i in range(repeats):
            for who in ("app", "direct") if i % 2 == 0 else ("direct", "app"):
                log(f"generation {who} {i + 1}/{repeats}…")
                run = run_app(pipeline, question) if who == "app" else run_direct(direct, messages, settings)
                runs[who].append(run)
        pipeline.llm.reuse_prefix = True
        log("generation app, computing the system prompt's KV cache…")
        started = time.perf_counter()
        prefix = pipeline.llm.restore_prefix(messages)
        prefix_s = time.perf_counter() - started
        for i in range(repeats):
            log(f"generation app with the prefix cache {i + 1}/{repeats}…")
            runs["app_prefix_cache"].append(run_app(pipeline, question))
        pipeline.llm.reuse_prefix = settings.reuse_prefix
    result = {who: _medians(r) for who, r in runs.items()} | busy
    result.update(prompt_tokens=n_prompt, runs=runs, same_text=runs["app"][0]["text"] == runs["direct"][0]["text"],
                  same_passages=runs["app"][0]["passages"] == [h.passage.id for h in hits],
                  ratios=_ratios(result["app"], result["direct"]), model=_model_facts(direct),
                  prefix={"tokens": len(prefix.tokens), "compute_s": prefix_s, "state_mb": len(prefix.state) / 1e6,
                          "same_text": runs["app_prefix_cache"][0]["text"] == runs["app"][0]["text"]})
    cached = result["app_prefix_cache"]
    result["ratios"]["ttft_prefix_cache"] = (cached["ttft_s"] - cached["before_llm_s"]) / result["direct"]["ttft_s"]
    return result


def _medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: median(r[k] for r in runs) for k in keys}


def _ratios(app: dict, direct: dict) -> dict:
    """app / direct; the generation ratios leave out what the app does before calling the model."""
    gen_ttft = app["ttft_s"] - app["before_llm_s"]
    return {"ttft": gen_ttft / direct["ttft_s"], "ttft_with_retrieval": app["ttft_s"] / direct["ttft_s"],
            "tokens_per_s": direct["tokens_per_s"] / app["tokens_per_s"],
            "to_last_token": (app["last_s"] - app["before_llm_s"]) / direct["last_s"],
            "to_last_token_with_retrieval": app["last_s"] / direct["last_s"]}


def _model_facts(llm) -> dict:
    """File size and parameter counts. Llama.n_params() is absent in 0.3.36 (its internal
    model object has it). The token embedding table is looked up, not multiplied, and the
    output head runs on the last prompt token only: prefill FLOPs count the rest."""
    inner = getattr(llm, "n_params", None) or getattr(getattr(llm, "_model", None), "n_params", None)
    params = inner() if callable(inner) else None
    matmul = params - llm.n_vocab() * llm.n_embd() if params else QWEN_PARAMS
    return {"path": llm.model_path, "file_bytes": Path(llm.model_path).stat().st_size, "n_params": params,
            "matmul_params": matmul, "n_params_source": "llama_cpp" if params else "assumed (Qwen2.5-1.5B)"}


def measure_end_to_end(settings: Settings, index, question: str, repeats: int) -> dict:
    """The question as a user asks it (verification on): medians of each part."""
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings, index=index)
    runs, busy = [], {}
    with others_cpu(busy):
        for i in range(repeats):
            log(f"end to end {i + 1}/{repeats}…")
            r = run_app(pipeline, question)
            runs.append({"retrieval_s": r["retrieval_s"], "prompt_s": r["prompt_s"],
                         "prefill_s": r["ttft_s"] - r["before_llm_s"], "decode_s": r["decode_s"],
                         "verify_s": r["verify_s"], "to_last_token_s": r["last_s"], "total_s": r["total_s"],
                         "pieces": r["pieces"]})
    return {**_medians(runs), "runs": runs, **busy}


def limits(machine: dict, gen: dict, e2e: dict) -> list[dict]:
    """Decode reads every weight once per token (bandwidth); prefill is 2 x params FLOPs per
    prompt token evaluated (matmul throughput): with the prefix cache, the tokens after the
    system prompt. Ratio = measured throughput / the ceiling."""
    model = gen["model"]
    max_tps = machine["bandwidth_gbs"] * 1e9 / model["file_bytes"]
    per_token = 2 * model["matmul_params"] / (machine["matmul_gflops"] * 1e9)
    min_prefill = per_token * gen["prompt_tokens"]
    min_cached = per_token * (gen["prompt_tokens"] - gen["prefix"]["tokens"])
    app_prefill = gen["app"]["ttft_s"] - gen["app"]["before_llm_s"]
    cached = gen["app_prefix_cache"]["ttft_s"] - gen["app_prefix_cache"]["before_llm_s"]
    rows = [("decode tokens/s, direct", gen["direct"]["tokens_per_s"], max_tps),
            ("decode tokens/s, app", gen["app"]["tokens_per_s"], max_tps),
            ("prefill s, direct", gen["direct"]["ttft_s"], min_prefill),
            ("prefill s, app", app_prefill, min_prefill),
            ("prefill s, app with prefix cache", cached, min_cached),
            ("prefill s, end to end (prefix cache on)", e2e["prefill_s"], min_cached)]
    return [{"what": what, "measured": m, "limit": lim, "share": m / lim if "tokens" in what else lim / m}
            for what, m, lim in rows]

# ---------------------------------------------------------------- the run

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seeds + 100k only, one generation run")
    parser.add_argument("--full", action="store_true", help="embed the 1000x corpus instead of extrapolating")
    parser.add_argument("--llm", default=Settings().llm)
    parser.add_argument("--threads", type=int, default=Settings().threads)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--repeats", type=int, help="generation runs per side (default 3, --quick 1)")
    parser.add_argument("--copies", help="synthetic corpus sizes, in seed copies (default 100,1000)")
    parser.add_argument("--sizes", help="synthetic retrieval sizes (default 100000,1000000)")
    parser.add_argument("--milvus-sizes", help="sizes also measured on Milvus Lite (default 100000)")
    parser.add_argument("--retrieval-only", action="store_true",
                        help="only retrieval at scale through the app (no language model, no build part)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "out" / "bench.json")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.copies = _ints(args.copies, "" if args.quick else "100,1000")
    args.sizes = _ints(args.sizes, "100000" if args.quick else "100000,1000000")
    args.milvus_sizes = _ints(args.milvus_sizes, "100000")
    return args


def _ints(given: str | None, default: str) -> list[int]:
    return [int(x) for x in (given if given is not None else default).split(",") if x]


def main() -> None:
    args = parse_args()
    if args.retrieval_only:
        return retrieval_only(args)
    settings = Settings(llm=args.llm, threads=args.threads, index_dir=Path(tempfile.mkdtemp(prefix="rag-bench-")))
    report: dict = {"llm": settings.llm, "embedder": settings.embedder, "threads": settings.threads,
                    "quick": args.quick, "full": args.full, "question": args.question}
    try:
        run_all(args, settings, report)
    finally:
        shutil.rmtree(settings.index_dir, ignore_errors=True)
    save(report, args.out)


def run_all(args: argparse.Namespace, settings: Settings, report: dict) -> None:
    seeds_row, seeds_index, embedder_load_s = measure_seeds_build(settings)
    report["embedder_load_s"] = embedder_load_s
    # the language model first: the long synthetic parts below leave more time for other
    # jobs to start on the machine and disturb it
    report.update(machine=measure_machine(), model_load=load_app_model(settings))
    report["generation"] = measure_generation(settings, seeds_index, args.question, args.repeats)
    print(generation_table(report["generation"], settings.llm), flush=True)
    report["end_to_end"] = measure_end_to_end(settings, seeds_index, args.question, args.repeats)
    report["limits"] = limits(report["machine"], report["generation"], report["end_to_end"])
    print(end_to_end_table(report["end_to_end"], report["model_load"], report["machine"], report["limits"]), flush=True)
    report["index_build"] = [seeds_row] + measure_synthetic_builds(settings, args.copies, args.full)
    print(build_table(report["index_build"], embedder_load_s), flush=True)
    report["retrieval"] = measure_retrieval(settings, seeds_index)
    print(retrieval_tables(report["retrieval"]), flush=True)
    report["scale"] = measure_scale(args.sizes, args.milvus_sizes, flat_sweep=not args.quick)
    print(scale_tables(**report["scale"]), flush=True)


def retrieval_only(args: argparse.Namespace) -> None:
    report = {"scale": measure_scale(args.sizes, args.milvus_sizes, flat_sweep=True)}
    print(scale_tables(**report["scale"]), flush=True)
    save(report, args.out.with_name("bench-retrieval.json"))


def save(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str), "utf-8")
    log(f"-> {out}")


if __name__ == "__main__":
    from rag.errors import RagError

    try:
        main()
    except RagError as exc:
        sys.exit(f"bench/run.py : {exc}")
