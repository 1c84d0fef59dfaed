"""Helpers for the chat tests: a planted article, a slow model, the app on a free port."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

from fakes import FakeLLM
from rag.settings import PROJECT_ROOT

SEEDS = PROJECT_ROOT / "seeds"

# An article whose text is markup: the page must show it as text and run none of it.
PLANTED = (
    "Le zorglub <b>gras</b> du marché\n\n"
    "Le zorglub <script>alert(1)</script> mange des <b>pommes</b> <img src=x onerror=alert(2)> chaque matin.\n\n"
    "Il boit aussi du thé vert le soir, selon son entourage.\n"
)
PLANTED_QUESTION = "Que mange le zorglub chaque matin ?"


def plant(seeds_dir: Path) -> Path:
    path = seeds_dir / "900_zorglub.txt"
    path.write_text(PLANTED, encoding="utf-8")
    return path


class SlowLLM(FakeLLM):
    """The fake model, one piece every `delay` seconds, one generation at a time (like
    llama.cpp's lock); records how many generations ever ran at once."""

    def __init__(self, delay: float = 0.15):
        self.delay = delay
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def stream(self, messages, max_tokens, temperature):
        self.running += 1  # counted before the lock: the app, not the lock, must queue them
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            with self.lock:
                for piece in super().stream(messages, max_tokens, temperature):
                    time.sleep(self.delay)
                    yield piece
        finally:
            self.running -= 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_fake(root: Path, delay: float, planted: bool = False):
    """The chat with the fake models, `delay` seconds a piece, on a copy of the seeds under
    `root` (plus the planted article): (app, url, pipeline, slow model)."""
    from rag.index import build_index
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    shutil.copytree(SEEDS, root / "seeds")
    if planted:
        plant(root / "seeds")
    settings = Settings(seeds_dir=root / "seeds", index_dir=root / "index", models_dir=root / "models",
                        llm="fake", llm_backend="fakes:FakeLLM", embedder="fake",
                        embedder_backend="fakes:fake_embedder", threads=1, retrieval="hybrid")
    slow = SlowLLM(delay)
    pipeline = Pipeline(settings, index=build_index(settings, log=lambda *_: None), llm=slow)
    app, url = launch(settings, pipeline)
    return app, url, pipeline, slow


def launch(settings, pipeline, auth=None):
    """The chat served in the background on a free local port: (app, url)."""
    from rag.app import serve

    port = free_port()
    app = serve(settings, host="127.0.0.1", port=port, auth=auth, pipeline=pipeline, block=False,
                log=lambda *_: None)
    return app, f"http://127.0.0.1:{port}/"
