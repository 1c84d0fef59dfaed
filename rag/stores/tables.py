"""The passages and articles of a build, on disk, read row by row instead of all at start.

    passages.jsonl  one Passage a line        passages.npz  offsets, keys, article rows
    articles.jsonl  one Article a line        articles.npz  offsets, date numbers
    articles.json   the doc ids, in row order

A million passages are ~1 GB of JSON and would take seconds and gigabytes to turn into
Python objects at start; here a row is parsed when asked for (a question needs ~60), from
a memory-mapped file. Keys are the stores' passage keys (rag.stores.passage_key), sorted
once at load to map a store's answer back to rows. Nothing here searches or embeds.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from rag.records import Article, Passage
from rag.stores import Filter, day_number, passage_keys


def write_tables(folder: Path, articles: Sequence[Article], passages: Sequence[Passage]) -> None:
    rows = {a.doc_id: i for i, a in enumerate(articles)}
    offsets = _write_lines(folder / "articles.jsonl", (asdict(a) for a in articles))
    days = np.array([day_number(a.date) for a in articles], dtype=np.int32)
    np.savez(folder / "articles.npz", offsets=offsets, days=days)
    (folder / "articles.json").write_text(json.dumps(list(rows), ensure_ascii=False), "utf-8")
    offsets = _write_lines(folder / "passages.jsonl", (asdict(p) for p in passages))
    doc_rows = np.array([rows[p.doc_id] for p in passages], dtype=np.int32)
    np.savez(folder / "passages.npz", offsets=offsets, keys=passage_keys(passages), doc_rows=doc_rows)


def _write_lines(path: Path, records) -> np.ndarray:
    """One JSON object a line; the byte offset where each line starts, and the end."""
    offsets = [0]
    with path.open("wb") as out:
        for record in records:
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            out.write(line)
            offsets.append(offsets[-1] + len(line))
    return np.array(offsets, dtype=np.int64)


class _Lines:
    """Line i of a JSON-lines file, by its byte offsets, through a read-only memory map."""

    def __init__(self, path: Path, offsets: np.ndarray):
        self.offsets = offsets
        with path.open("rb") as f:
            size = path.stat().st_size
            self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        if len(offsets) == 0 or offsets[-1] != size:
            raise ValueError(f"{path.name} : {size} octets, l'index en attend {offsets[-1] if len(offsets) else '?'}")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def record(self, i: int) -> dict:
        return json.loads(self.data[self.offsets[i]:self.offsets[i + 1]])


class PassageTable(Sequence[Passage]):
    """The build's passages in order: `table[i]`, `table.by_key(key)`, `table.keys[i]`."""

    def __init__(self, folder: Path):
        arrays = np.load(folder / "passages.npz")
        self.keys, self.doc_rows = arrays["keys"], arrays["doc_rows"]
        self._lines = _Lines(folder / "passages.jsonl", arrays["offsets"])
        if not len(self.keys) == len(self.doc_rows) == len(self._lines):
            raise ValueError("passages.npz : tableaux de tailles différentes")
        self._order = np.argsort(self.keys, kind="stable")
        self._sorted = self.keys[self._order]

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return Passage(**self._lines.record(i % len(self)))

    def __iter__(self) -> Iterator[Passage]:
        return (self[i] for i in range(len(self)))

    def row(self, key: int) -> int | None:
        """The row of the passage with this key, None if the build has none."""
        at = int(np.searchsorted(self._sorted, key))
        return int(self._order[at]) if at < len(self._sorted) and self._sorted[at] == key else None

    def by_key(self, key: int) -> Passage:
        row = self.row(key)
        if row is None:
            raise KeyError(key)
        return self[row]


class ArticleTable(Mapping[str, Article]):
    """The build's articles by doc id, parsed on demand."""

    def __init__(self, folder: Path):
        arrays = np.load(folder / "articles.npz")
        self.days = arrays["days"]
        self.rows = {doc_id: i for i, doc_id in enumerate(json.loads((folder / "articles.json").read_text("utf-8")))}
        self._lines = _Lines(folder / "articles.jsonl", arrays["offsets"])
        if not len(self.rows) == len(self.days) == len(self._lines):
            raise ValueError("articles.npz : tableaux de tailles différentes")

    def __getitem__(self, doc_id: str) -> Article:
        return Article(**self._lines.record(self.rows[doc_id]))

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def passage_mask(passages: PassageTable, articles: ArticleTable, where: Filter) -> np.ndarray:
    """Which passage rows `where` allows, for searches over the table's rows (BM25)."""
    allowed = np.ones(len(articles), dtype=bool)
    if where.doc_ids is not None:
        allowed[:] = False
        allowed[[articles.rows[d] for d in where.doc_ids if d in articles.rows]] = True
    if (days := where.day_range()) is not None:
        allowed &= (articles.days >= days[0]) & (articles.days <= days[1])
    return allowed[passages.doc_rows]
