"""Two file helpers shared by the corpus, the index, batch outputs and the models: a
file's sha256, and writing a file whole or not at all."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time while hashing


def sha256_file(path: Path) -> str:
    """The sha256 of the file's bytes, read a chunk at a time (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` whole or not at all: into a temporary file beside it (same
    filesystem; a dot name with a suffix no corpus reader takes), flushed to disk, then
    renamed over `path`. A kill leaves the old file; a failure removes the temporary."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
