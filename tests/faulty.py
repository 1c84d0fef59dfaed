"""Slow stand-ins for the fault tests, run inside a `rag` subprocess that is killed with
SIGKILL. `python faulty.py MARKER STAGE rag-args…` stalls the stage named (writing MARKER
when it gets there) so the test knows when to kill; `faulty:SlowFake` is a fake language
model that takes its time (`RAG_LLM_BACKEND=faulty:SlowFake`, tests/ on PYTHONPATH)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from fakes import FakeLLM

STALL = 120.0  # seconds a stalled stage waits: far longer than any test waits for it


class SlowFake(FakeLLM):
    """The fake model, 20 ms a word."""

    def stream(self, messages, max_tokens, temperature):
        for piece in super().stream(messages, max_tokens, temperature):
            time.sleep(0.02)
            yield piece


def _stalling(real, marker: Path):
    def stalled(*args, **kwargs):
        marker.write_text(str(os.getpid()))
        time.sleep(STALL)
        return real(*args, **kwargs)

    return stalled


def main(marker: Path, stage: str, args: list[str]) -> None:
    import fakes
    import rag.index
    from rag.cli import main as cli

    if stage == "embedding":  # mid-embedding: the slow embedder, new build folder not yet written
        fakes.fake_encode = _stalling(fakes.fake_encode, marker)
    elif stage == "manifest":  # build folder complete, manifest not yet replaced
        rag.index._atomic_json = _stalling(rag.index._atomic_json, marker)
    elif stage == "cleanup":  # new manifest in place, old build folders not yet removed
        rag.index._remove_old_builds = _stalling(rag.index._remove_old_builds, marker)
    cli(args)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:])
