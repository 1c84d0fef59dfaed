"""Finding the passages that answer a question: BM25, dense search and their fusion.

BM25 runs in the index's bm25s index (rag/stores/bm25.py: accent-folded, lightly stemmed
French terms) or, with Milvus, in the collection itself on the same terms. Dense search
asks the vector store (rag/stores/) with the embedder's query vector. Both answer with
{passage key: score}. Fusion mixes the two score lists after standardising each over its
candidates (z-scores; a passage missing from one list gets that list's lowest score),
BM25 weighted by `bm25_weight`. z-scores beat min-max scaling and reciprocal-rank fusion
on the project's reference questions (bench/retrieval_quality.py, figures in the README).
A `Filter` (articles, date range) narrows every retriever alike. The retriever holds no
model of its own; it is built once per loaded index.

Diversification (`diversify`, off by default): a candidate that says the same thing as a
better one from another article (rag/dedup.py `repeats`: near-duplicate content terms)
waits until the other candidates are placed, so two copies of one story's sentence do not
take two of the k places from a second source. Passages of one article are never held
back: several small units of the same article are how one story is read. On the seeds it
changed the top 4 of 2 dev questions out of 69 and lost one question's evidence coverage
(its reference counts the same fact in both copies), in every mode: off by default until
a corpus with more copies shows a gain (README « Your own documents »).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from rag.dedup import SIMILARITY, repeats, terms_of
from rag.embedding import Embedder
from rag.index import Index
from rag.records import Hit, Passage
from rag.stores import Filter, VectorStore
from rag.stores.bm25 import Bm25Index
from rag.stores.tables import passage_mask


@dataclass(frozen=True, eq=False)
class Retriever:
    passages: Any  # stores.tables.PassageTable: rows, their keys, lookup by key
    store: VectorStore
    embedder: Embedder
    bm25: Bm25Index | None  # None: the store searches text itself (`search_text`)
    articles: Any = None  # stores.tables.ArticleTable, for filters on BM25 rows
    diversify: bool = False  # settings.diversify: see the module docstring

    @classmethod
    def from_index(cls, index: Index, embedder: Embedder, diversify: bool = False) -> "Retriever":
        return cls(index.passages, index.store, embedder, index.bm25, index.articles, diversify)

    def search(self, query: str, k: int, mode: str = "hybrid", candidates: int = 30,
               bm25_weight: float = 0.6, where: Filter | None = None,
               vector: np.ndarray | None = None, diversify: bool | None = None) -> list[Hit]:
        """The k best passages; `vector` is the query's embedding when the caller has it;
        `diversify` overrides the retriever's own choice."""
        n = min(max(k, candidates), len(self.passages))
        keep = k if not (self.diversify if diversify is None else diversify) else n
        if mode == "bm25":
            hits = self._hits(self.bm25_top(query, n, where), None, keep)
        elif mode == "dense":
            hits = self._hits(None, self.dense_top(query, n, where, vector), keep)
        else:
            dense = self.dense_top(query, n, where, vector)
            hits = fuse(self.bm25_top(query, n, where), dense, bm25_weight, _ByKey(self.passages), keep)
        return diversified(hits, k) if keep > k else hits

    def bm25_top(self, query: str, n: int, where: Filter | None = None) -> dict[int, float]:
        if self.bm25 is None:
            return self.store.search_text(query, n, where)
        mask = passage_mask(self.passages, self.articles, where) if where else None
        keys = self.passages.keys
        return {int(keys[row]): score for row, score in self.bm25.top(query, n, mask).items()}

    def dense_top(self, query: str, n: int, where: Filter | None = None,
                  vector: np.ndarray | None = None) -> dict[int, float]:
        if vector is None:
            vector = self.embedder.embed_query(query)
        return self.store.search(np.asarray(vector, dtype=np.float32), n, where)

    def _hits(self, bm25: dict | None, dense: dict | None, k: int) -> list[Hit]:
        ranked = bm25 if bm25 is not None else dense
        order = sorted(ranked, key=lambda i: -ranked[i])[:k]
        return [Hit(self.passages.by_key(i), ranked[i], dense=(dense or {}).get(i), bm25=(bm25 or {}).get(i))
                for i in order]


def diversified(hits: Sequence[Hit], k: int, threshold: float = SIMILARITY) -> list[Hit]:
    """The k best hits, those repeating a better hit of another article placed last."""
    chosen: list[tuple[Hit, frozenset[str]]] = []
    held: list[Hit] = []
    for hit in hits:
        terms = terms_of(hit.passage.text)
        if any(h.passage.doc_id != hit.passage.doc_id and repeats(terms, t, threshold) for h, t in chosen):
            held.append(hit)
        else:
            chosen.append((hit, terms))
        if len(chosen) == k:
            break
    return ([h for h, _ in chosen] + held)[:k]


class _ByKey(Mapping[int, Passage]):
    """A passage table indexed by store keys, for `fuse`."""

    def __init__(self, table):
        self.table = table

    def __getitem__(self, key: int) -> Passage:
        return self.table.by_key(key)

    def __iter__(self):
        return iter(self.table.keys.tolist())

    def __len__(self) -> int:
        return len(self.table)


def fuse(bm25: dict[int, float], dense: dict[int, float], weight: float,
         passages: Sequence[Passage] | Mapping[int, Passage], k: int) -> list[Hit]:
    """Weighted sum of z-scored candidate scores (see module docstring); `passages` is
    indexed by the score dicts' ids."""
    b, d = _zscores(bm25), _zscores(dense)
    b_floor, d_floor = min(b.values(), default=0.0), min(d.values(), default=0.0)
    mixed = {i: weight * b.get(i, b_floor) + (1 - weight) * d.get(i, d_floor) for i in set(b) | set(d)}
    order = sorted(mixed, key=lambda i: (-mixed[i], i))[:k]
    return [Hit(passages[i], mixed[i], dense=dense.get(i), bm25=bm25.get(i)) for i in order]


def _zscores(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    values = np.fromiter(scores.values(), dtype=np.float64)
    mean, std = values.mean(), values.std()
    return {i: (s - mean) / std if std > 0 else 0.0 for i, s in scores.items()}
