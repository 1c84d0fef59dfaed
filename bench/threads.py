"""Time to first token and decode speed by thread count, OpenMP wait policy and model file,
on an idle machine and beside one busy process (issue 11, part 5).

    python bench/threads.py [--threads 1,2] [--policies active,passive] [--models PATH,…]
                            [--repeats 3] [--tokens 48] [--out out/threads.json]
    python bench/threads.py --quantize q4_0      # write models/<llm>-q4_0.gguf, print its sha256

llama-cpp-python's wheel here is built with OpenMP: its threads spin at every barrier of
every layer. When another process holds one of the 2 cores, a spinning thread waits for a
scheduler slice instead of a few microseconds, so a 2-thread prefill slows far more than
half. Each configuration runs in a child process (the OpenMP runtime reads OMP_WAIT_POLICY
once, at load), calls llama_cpp.Llama directly on the app's prompt for the bench question
(system prompt, extracts, question: a whole prefill from a cleared context), and reports
medians of --repeats runs; "busy" starts one `while True: pass` process first and stops it
after. The load average and other processes' CPU are printed: time on an idle machine.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

from rag.settings import PROJECT_ROOT, Settings

# a sibling in bench/, found because the script's folder heads sys.path
from helpers import busy_process  # noqa: E402

QUESTION = "Combien Meta prévoit-elle de dépenser en IA en 2025 ?"


def messages(settings: Settings) -> list[dict]:
    """The app's messages for QUESTION, on the seeds' first passages (no index needed: the
    prompt's size and shape are what matter here, not which passages fill it)."""
    from rag.articles import load_corpus
    from rag.passages import split_passages
    from rag.prompts import render
    from rag.records import Hit

    passages = [p for a in load_corpus(settings.seeds_dir) for p in split_passages(a, settings.passage_chars,
                                                                                  settings.passage_overlap)]
    hits = [Hit(p, 1.0) for p in passages[:settings.k]]
    return [{"role": "system", "content": render(settings.prompts_dir, "system.txt")},
            {"role": "user", "content": render(settings.prompts_dir, "user.txt", question=QUESTION, passages=hits)}]


def child(model: str, threads: int, repeats: int, tokens: int) -> dict:
    """One configuration, in this (child) process."""
    import llama_cpp

    settings = Settings()
    llm = llama_cpp.Llama(model_path=model, n_ctx=settings.n_ctx, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, verbose=False)
    msgs = messages(settings)
    n_prompt = llm.create_chat_completion(messages=msgs, max_tokens=1, temperature=0.0)["usage"]["prompt_tokens"]
    runs = []
    for _ in range(repeats):
        llm.reset()
        started, stamps = time.perf_counter(), []
        for chunk in llm.create_chat_completion(messages=msgs, max_tokens=tokens, temperature=0.0, top_k=1,
                                                repeat_penalty=1.05, stream=True):
            if chunk["choices"][0]["delta"].get("content"):
                stamps.append(time.perf_counter())
        decode = stamps[-1] - stamps[0]
        runs.append({"ttft_s": stamps[0] - started, "tokens_per_s": (len(stamps) - 1) / decode if decode else 0.0})
    return {"ttft_s": median(r["ttft_s"] for r in runs), "tokens_per_s": median(r["tokens_per_s"] for r in runs),
            "runs": runs, "prompt_tokens": n_prompt}


def measure(model: Path, threads: int, policy: str, busy: bool, repeats: int, tokens: int) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": policy.upper()}
    with busy_process(busy):
        load = os.getloadavg()[0]
        out = subprocess.run([sys.executable, __file__, "--child", str(model), str(threads), str(repeats), str(tokens)],
                             capture_output=True, text=True, env=env, check=True)
    return {"model": model.name, "threads": threads, "omp_wait_policy": policy, "busy": busy,
            "load_before": load} | json.loads(out.stdout.strip().splitlines()[-1])


def quantize(settings: Settings, kind: str) -> Path:
    """The default LLM re-quantized by llama.cpp's own quantize API (llama-cpp-python)."""
    import llama_cpp

    from rag import models

    source = models.local_path(settings, settings.llm)
    target = source.with_name(f"{settings.llm}-{kind}.gguf")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = {"q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0}[kind]
    params.allow_requantize = True  # the only source here is already Q4_K_M
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.byref(params)) != 0:
        sys.exit(f"la quantification a échoué : {source} -> {target}")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"{target}  {target.stat().st_size} octets  sha256 {digest}")
    return target


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        model, threads, repeats, tokens = sys.argv[2], *map(int, sys.argv[3:6])
        print(json.dumps(child(model, threads, repeats, tokens)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--policies", default="active,passive")
    parser.add_argument("--models", help="GGUF files (default: the llm setting's file)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--quantize", choices=["q4_0", "q8_0"])
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "out" / "threads.json")
    args = parser.parse_args()
    settings = Settings()
    if args.quantize:
        quantize(settings, args.quantize)
        return
    from rag import models

    files = [Path(m) for m in args.models.split(",")] if args.models else [models.local_path(settings, settings.llm)]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in open("/proc/cpuinfo") if line.startswith("flags")), [])
    print(f"CPU : {cpu}, {os.cpu_count()} cœurs, {' '.join(f for f in flags if f.startswith(('avx', 'fma', 'f16c')))}")
    rows = []
    for model in files:
        for busy in (False, True):
            for threads in map(int, args.threads.split(",")):
                for policy in args.policies.split(","):
                    row = measure(model, threads, policy, busy, args.repeats, args.tokens)
                    rows.append(row)
                    print(f"{row['model']:<45} threads {threads}  OMP {policy:<7}  {'occupé' if busy else 'libre ':<6}  "
                          f"1er token {row['ttft_s']:6.2f} s  {row['tokens_per_s']:5.1f} tok/s  "
                          f"(charge avant {row['load_before']:.2f})", flush=True)
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"cpu": cpu, "rows": rows}, indent=1), "utf-8")


if __name__ == "__main__":
    main()
