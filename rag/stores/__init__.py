"""Where passage vectors live and how they are searched: one module per backend.

- `faiss_store.py`: FAISS files in the index's build folder, for one machine (default);
  exact search below a size measured in bench/run.py, an inverted file (IVF) above.
- `milvus_store.py`: a Milvus collection, from a local Milvus Lite file to a cluster,
  chosen by `settings.store = "milvus"` and reached by `milvus_uri` (+ `milvus_token`).

Every backend keeps, per passage, a 63-bit key (a hash of the passage id), the document
id and its date, and answers `search(vector, n, where)` with {key: score}, best first.
The retriever never knows which backend it has. Lexical (BM25) search lives in bm25.py,
unless the store does its own full text search (`search_text`). Nothing here embeds
text or builds passages: index.py hands the stores what to keep.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from rag.records import Passage
from rag.settings import Settings

KEY_MASK = (1 << 63) - 1  # keys are positive int64: what FAISS and Milvus both hold


@dataclass(frozen=True)
class Filter:
    """Restricts a search: to some articles, and/or to a date range (inclusive; "YYYY",
    "YYYY-MM" or "YYYY-MM-DD"). An article without a date is outside every date range."""

    doc_ids: frozenset[str] | None = None
    date_from: str | None = None
    date_to: str | None = None

    def day_range(self) -> tuple[int, int] | None:
        if self.date_from is None and self.date_to is None:
            return None
        low = day_number(self.date_from) if self.date_from else 1
        high = day_number(self.date_to, end=True) if self.date_to else 99_999_999
        return low, high


@runtime_checkable
class VectorStore(Protocol):
    kind: str

    def add(self, passages: Sequence[Passage], vectors: np.ndarray, dates: Mapping[str, str | None]) -> None:
        """Keep these passages' vectors (and their metadata); same key again replaces it."""

    def delete(self, doc_ids: Collection[str]) -> None:
        """Forget every passage of these articles."""

    def search(self, vector: np.ndarray, n: int, where: Filter | None = None) -> dict[int, float]:
        """The n passages most similar to the unit `vector` (inner product): {key: score}."""

    def count(self) -> int: ...

    def commit(self, folder: Path) -> dict:
        """Make the changes durable (FAISS: files in `folder`); the manifest's record."""

    def close(self) -> None: ...


def passage_key(passage_id: str) -> int:
    """A stable 63-bit key for a passage id (collisions: ~1e-7 at 1M passages)."""
    digest = hashlib.blake2b(passage_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & KEY_MASK


def passage_keys(passages: Sequence[Passage]) -> np.ndarray:
    return np.fromiter((passage_key(p.id) for p in passages), dtype=np.int64, count=len(passages))


_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def day_number(date: str | None, end: bool = False) -> int:
    """« 2025-01-31 » -> 20250131, « 2025-01 » -> 20250100 (20250199 as a range's end),
    none or unreadable -> 0, so dates compare as integers in every backend."""
    found = _DATE.match(date or "")
    if not found:
        return 0
    year, month, day = found.groups()
    fill = 99 if end else 0
    return int(year) * 10_000 + (int(month) if month else fill) * 100 + (int(day) if day else fill)


def get_store(settings: Settings, dim: int, record: dict | None = None, folder: Path | None = None) -> VectorStore:
    """The backend the settings choose. With `record` (what `commit` returned, kept in the
    manifest) the built store is opened, from `folder` for FAISS; without it, an empty one.
    Raises RagError when the built store is missing, corrupt or does not match."""
    if settings.store == "milvus":
        from rag.stores.milvus_store import MilvusStore

        return MilvusStore.open(settings, dim, record)
    from rag.stores.faiss_store import FaissStore

    return FaissStore.open(dim, record, folder, settings.threads)


def mismatch(settings: Settings, record: dict) -> str | None:
    """Why a built store is not the one the settings ask for, or None."""
    if record.get("kind") != settings.store:
        return f"store : index {record.get('kind')!r}, réglages {settings.store!r}"
    if settings.store == "milvus":
        from rag.stores.milvus_store import public_uri

        if record.get("uri") != public_uri(settings):
            return f"milvus_uri : index {record.get('uri')!r}, réglages {public_uri(settings)!r}"
    return None
