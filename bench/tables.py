"""The Markdown tables bench/run.py prints (they go into the issue as they are)."""

from __future__ import annotations

BUSY = 0.10  # share of the CPU used by other processes above which timings are noise


def table(title: str, headers: list[str], rows: list[list]) -> str:
    """A Markdown table (it goes into the issue as is)."""
    cells = [[_cell(v) for v in row] for row in rows]
    lines = [f"\n### {title}\n", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _cell(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3f}"


def build_table(rows: list[dict], load_s: float) -> str:
    out = []
    for row in rows:
        for name in ("cleaning", "splitting", "embedding", "index"):
            s = row[name]["s"]
            sampled = name == "embedding" and row["extrapolated"]
            note = f"extrapolated from {row['embedded']:,} passages" if sampled else ""
            out.append([row["corpus"], f"{row['articles']:,}", f"{row['passages']:,}", name, s,
                        row["articles"] / s, row["passages"] / s, row[name]["py_peak_mb"], row[name]["peak_rss_mb"],
                        note])
        total = sum(row[n]["s"] for n in ("cleaning", "splitting", "embedding", "index"))
        out.append([row["corpus"], "", "", "**total**", total, row["articles"] / total, row["passages"] / total,
                    "", "", f"other processes: {row['others_cpu']:.0%} of the CPU"])
    title = (f"Index build (embedder loaded beforehand in {load_s:.1f} s; index = tables, BM25, vector store, "
             f"manifest (rag.index.write_index); Python peak "
             f"traced in a second pass, embedding {rows[0]['traced_sample']} passages at most; peak RSS: the process's "
             f"high-water mark after the stage (VmHWM; ru_maxrss in the JSON), each synthetic corpus built in a "
             f"fresh process)")
    return table(title, ["corpus", "articles", "passages", "stage", "s", "articles/s", "passages/s",
                         "Python peak MB", "peak RSS MB", "note"], out)


def retrieval_tables(rows: list[dict]) -> str:
    return table(f"Retrieval latency per query on the seeds, {rows[0]['queries']} reference questions "
                 "(query embedding included)",
                 ["index", "passages", "store", "mode", "p50 ms", "p95 ms", "others' CPU"],
                 [[r["index"], f"{r['passages']:,}", r["store"], r["mode"], r["p50_ms"], r["p95_ms"],
                   f"{r['others_cpu']:.0%}"] for r in rows])


def scale_tables(rows: list[dict], flat: list[dict], embedding: dict | None) -> str:
    """The retrieval-at-scale table (bench/retrieval_scale.py), flat search by size, and
    the query embedding's cost, which the latencies leave out."""
    main = table("Retrieval at scale through the app (load_index + Retriever.search, query vector given; "
                 "RSS: the process's peak, retrieval only; recall@10 of dense search against exact search)",
                 ["store", "passages", "index", "start-up s", "peak RSS MB", "dense p50/p95 ms",
                  "BM25 p50/p95 ms", "fused p50/p95 ms", "recall@10", "recall@10, new points", "others' CPU"],
                 [[r["store"], f"{r['passages']:,}", r["index"], r["startup_s"], r["peak_rss_mb"],
                   _pair(r, "dense"), _pair(r, "bm25"), _pair(r, "hybrid"), r["recall@10"],
                   r.get("recall@10_new_points", ""), f"{r['others_cpu']:.0%}"] for r in rows])
    sweep = table("Exact (flat) FAISS search by size, one thread, one query at a time (sets FLAT_LIMIT)",
                  ["vectors", "p50 ms", "p95 ms"], [[f"{r['vectors']:,}", r["p50_ms"], r["p95_ms"]] for r in flat])
    cost = (f"\n\nQuery embedding ({embedding['embedder']}, {embedding['queries']} questions): "
            f"p50 {embedding['p50_ms']:.1f} ms, p95 {embedding['p95_ms']:.1f} ms." if embedding else "")
    return main + "\n" + sweep + cost


def _pair(row: dict, mode: str) -> str:
    return f"{row[mode]['p50_ms']:.1f} / {row[mode]['p95_ms']:.1f}"


def generation_table(gen: dict, llm: str) -> str:
    a, d, r = gen["app"], gen["direct"], gen["ratios"]
    c, prefix = gen["app_prefix_cache"], gen["prefix"]
    rows = [["time to first token s (app: incl. retrieval + prompt)", a["ttft_s"], d["ttft_s"],
             r["ttft_with_retrieval"]],
            ["time to first token s, model call only", a["ttft_s"] - a["before_llm_s"], d["ttft_s"], r["ttft"]],
            ["decode tokens/s (ratio: time per token)", a["tokens_per_s"], d["tokens_per_s"], r["tokens_per_s"]],
            ["to last token s, model call only", a["last_s"] - a["before_llm_s"], d["last_s"], r["to_last_token"]],
            ["pieces streamed", a["pieces"], d["pieces"], ""],
            [f"time to first token s, model call only, app with its prefix cache ({prefix['tokens']} "
             f"system-prompt tokens put back, the rest evaluated)", c["ttft_s"] - c["before_llm_s"], d["ttft_s"],
             r["ttft_prefix_cache"]]]
    title = (f"Generation, {llm}, {gen['prompt_tokens']} prompt tokens, median of {len(gen['runs']['app'])} "
             f"(same text: {gen['same_text']}, same passages: {gen['same_passages']}; other processes used "
             f"{gen['others_cpu']:.0%} of the CPU meanwhile)")
    verdict = "within" if r["to_last_token"] <= 1.05 else "ABOVE"
    warning = (f" — NOT MEANINGFUL: other processes used {gen['others_cpu']:.0%} of the CPU; run again on a "
               "quiet machine" if gen["others_cpu"] > BUSY else "")
    cache = (f"\n\nPrefix cache: the system prompt's KV cache ({prefix['state_mb']:.1f} MB) was computed once in "
             f"{prefix['compute_s']:.2f} s; same answer as without it: {prefix['same_text']}.")
    return (table(title, ["", "app", "llama-cpp direct", "app/direct time"], rows)
            + f"\n\nOverhead of the app, to last token: {r['to_last_token']:.3f} ({verdict} the 1.05 target){warning}"
            + cache)


def end_to_end_table(e2e: dict, load: dict, machine: dict, lim: list[dict]) -> str:
    parts = ["retrieval_s", "prompt_s", "prefill_s", "decode_s", "verify_s", "to_last_token_s", "total_s"]
    headers = [p.removesuffix("_s").replace("_", " ") + " s" for p in parts]
    first = table(f"End to end, verification on (median; other processes used {e2e['others_cpu']:.0%} of the CPU)",
                  headers + ["model load s", "RSS before load MB", "RSS loaded MB"],
                  [[e2e[p] for p in parts] + [load["load_s"], load["rss_before_mb"], load["rss_loaded_mb"]]])
    second = table(f"Machine limits: copy {machine['bandwidth_gbs']:.1f} GB/s (read + write), "
                   f"matmul {machine['matmul_gflops']:.0f} GFLOP/s float32",
                   ["", "measured", "limit", "measured/limit (throughput share)"],
                   [[r["what"], r["measured"], r["limit"], r["share"]] for r in lim])
    note = ("\n\nDecode limit: model file bytes read once per token at the copy bandwidth. Prefill limit: "
            "2 x parameters (embedding table left out) x prompt tokens at numpy's float32 matmul speed; "
            "llama.cpp's quantised int8 kernels can go past it (share > 1).")
    return first + "\n" + second + note
