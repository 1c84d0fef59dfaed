"""Load: 8 API clients x 10 questions at once against the chat served on 127.0.0.1 with the
fake model (one generation at a time, as with the model in process). Every question must be
answered, with its own answer, and the queue must serve the clients in turn. The test is
bounded (a deadline per call and for the whole run) and stops the server itself.

Each question asks about an article of its own, about a made-up creature whose name appears
nowhere else: the fake model answers with that article's first sentence, so an answer names
the creature of its question, and an answer sent to the wrong client shows at once."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from rag.index import build_index
from rag.pipeline import Pipeline
from serving import SlowLLM, launch

CLIENTS, QUESTIONS = 8, 10
DEADLINE = 300.0  # seconds for the whole run: about 20 alone on 2 cores; 150 was once too short beside a full eval
FIRST = ["ba", "de", "fi", "go", "lu", "mo", "ri", "zu"]
SECOND = ["ka", "le", "mi", "no", "pu", "ra", "se", "ti", "vo", "xa"]
FOODS = ["pommes", "poires", "noix", "radis", "figues", "olives", "cerises", "prunes", "lentilles", "navets"]


def creature(client: int, question: int) -> str:
    return f"{FIRST[client]}{SECOND[question]}rth".capitalize()  # « Bakarth »: one word, its own stem


def question(client: int, n: int) -> str:
    return f"Que mange le {creature(client, n)} chaque matin ?"


def write_corpus(folder) -> None:
    folder.mkdir()
    for c in range(CLIENTS):
        for n in range(QUESTIONS):
            name = creature(c, n)
            (folder / f"{name.lower()}.txt").write_text(
                f"Le {name} du village\n\n"
                f"Le {name} mange des {FOODS[n]} chaque matin, selon ses voisins. "
                f"Il dort ensuite jusqu'au soir dans la grange.\n", encoding="utf-8")


def test_eight_clients_ten_questions_each_all_answered_in_turn(settings, tmp_path):
    from gradio_client import Client

    write_corpus(tmp_path / "creatures")
    settings = settings.model_copy(update={"seeds_dir": tmp_path / "creatures", "retrieval": "bm25", "k": 3})
    slow = SlowLLM(delay=0.01)
    app, url = launch(settings, Pipeline(settings, index=build_index(settings, log=lambda *_: None), llm=slow))
    started = time.monotonic()

    def one_client(c: int) -> list[dict]:
        api, done = Client(url, verbose=False), []
        for n in range(QUESTIONS):
            sent = time.monotonic()
            try:
                out = api.submit(question(c, n), api_name="/ask").result(
                    timeout=max(1.0, started + DEADLINE - sent))
            except Exception as exc:  # a timeout, a dropped connection: counted as lost
                out = {"lost": repr(exc)}
            done.append({"client": c, "n": n, "sent": sent, "back": time.monotonic(), "out": out})
        return done

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            records = [r for client_records in pool.map(one_client, range(CLIENTS)) for r in client_records]
    finally:
        app.close()

    lost = [r for r in records if "lost" in r["out"] or r["out"].get("error")]
    answered = [r for r in records if r not in lost]
    mixed = [r for r in answered if r["out"]["question"] != question(r["client"], r["n"])
             or f"Le {creature(r['client'], r['n'])} mange des {FOODS[r['n']]}" not in r["out"]["answer"]]
    latencies = sorted(r["back"] - r["sent"] for r in records)
    # fairness: when the first client has all its answers, how many has each of the others?
    first_done = min(max(r["back"] for r in records if r["client"] == c) for c in range(CLIENTS))
    others_then = min(sum(1 for r in records if r["client"] == c and r["back"] <= first_done)
                      for c in range(CLIENTS))
    figures = (f"{CLIENTS} clients x {QUESTIONS} questions: {len(answered)} answered, {len(lost)} lost, "
               f"{len(mixed)} mixed up; latency median {statistics.median(latencies):.2f} s, "
               f"max {latencies[-1]:.2f} s; when the first client had its {QUESTIONS} answers, the least "
               f"served had {others_then}; at most {slow.most_at_once} generation at once; "
               f"{time.monotonic() - started:.1f} s in all")
    print("\n" + figures)
    assert len(records) == CLIENTS * QUESTIONS and not lost, f"{figures}; lost: {lost[:3]}"
    assert not mixed, f"{figures}; mixed: {[(r['client'], r['n'], r['out']['answer']) for r in mixed[:3]]}"
    assert slow.most_at_once == 1, figures
    assert others_then >= QUESTIONS // 2, f"unfair queue: {figures}"
    assert latencies[-1] <= 4 * statistics.median(latencies), f"one client waited far longer: {figures}"
