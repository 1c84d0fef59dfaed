"""A real OpenAI-compatible model server started for a test or a benchmark, and stopped after.

`llama_cpp_server()` is the command for llama-cpp-python's own server with the app's GGUF
file (`pip install llama-cpp-python[server]`); `running(command, url)` starts any server
command, waits until `GET {url}/models` answers and stops it at the end, also on failure.
Used by tests/test_llm_openai_e2e.py and bench/workers.py; choosing the model is the app's.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_cpp_server(model: Path, alias: str, port: int, threads: int | None = None) -> list[str]:
    """`python -m llama_cpp.server` serving `model` as `alias` on 127.0.0.1:`port`. Its
    default would interrupt a streamed reply whenever another request arrives, and use half
    the cores."""
    threads = threads or os.cpu_count() or 1
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--interrupt_requests", "false"]


@contextlib.contextmanager
def running(command: list[str], url: str, log: Path, wait: float = 300.0) -> Iterator[subprocess.Popen]:
    """The server of `command` (output in `log`), once `{url}/models` answers; stopped after."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, url, log, wait)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen, url: str, log: Path, wait: float) -> None:
    import httpx

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the model server stopped (exit {process.returncode}):\n{_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"the model server did not answer within {wait:g} s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
