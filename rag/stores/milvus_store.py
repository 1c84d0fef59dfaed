"""Passages in a Milvus collection: Milvus Lite in a local file, or a server or cluster.

The same client code (pymilvus' MilvusClient) serves all three: `milvus_uri` is a path
ending in .db for Milvus Lite (default: milvus.db in the index folder), or
http(s)://host:19530 for a server, with `milvus_token` (RAG_MILVUS_TOKEN) when it asks
for one. The token is never written to the manifest or to a message. Milvus Lite 3 runs
inside the process that opens the file and locks it: one process at a time (a server
has no such limit).

One row per passage: its key (primary), passage id, doc id, title, date (text, and as a
number for ranges), offsets, text, vector, and its BM25 terms. BM25 runs in Milvus too:
a BM25 function turns the `terms` field (the passage's terms from rag.stores.bm25's
analyzer, joined by spaces, so Milvus and the local index see the same terms) into a
sparse vector, searched with the BM25 metric (Milvus Lite 3.2 does it; its scores come
back negated, so their absolute value is kept). Fusion with the dense scores stays in
the app (rag.retrieval). Writes are upserts by key, so an interrupted or repeated build
leaves no duplicate; index.py marks the manifest while the collection changes.
Left out: partitions, several collections per server (one name, COLLECTION), and
Milvus-side reranking.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Collection, Mapping, Sequence

import numpy as np

from rag.errors import RagError
from rag.records import Passage
from rag.settings import Settings
from rag.stores import Filter, day_number, passage_key
from rag.stores.bm25 import ANALYZER, K1, B, analyze

COLLECTION = "rag_passages"
_LITE_USERS: dict[str, int] = {}  # open stores per Milvus Lite file in this process
BATCH = 500  # rows per upsert: well under gRPC's 64 MB message limit at 768 dims
MAX_TEXT = 65_535  # Milvus' longest VARCHAR


def public_uri(settings: Settings) -> str:
    """The URI as the manifest records it: a Milvus Lite file as an absolute path."""
    uri = settings.milvus_uri or str(settings.index_dir / "milvus.db")
    if "://" in uri:
        scheme, _, rest = uri.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"  # no user:password@ in a manifest
    return str(Path(uri).resolve())


def _client(settings: Settings):
    from pymilvus import MilvusClient

    uri = public_uri(settings)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    if "://" not in uri:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        client = MilvusClient(uri=uri, token=token)
    except Exception as exc:  # pymilvus raises its own and gRPC's exception types
        raise RagError(f"Milvus injoignable ({uri}) : {_short(exc)}") from None
    if "://" not in uri:
        _LITE_USERS[uri] = _LITE_USERS.get(uri, 0) + 1
    return client


def _release(uri: str) -> None:
    """Milvus Lite 3 serves a file from threads of this process and locks the file until
    they stop: stop them when the last store on the file closes, so that another process
    (a `rag index` after a `rag serve`) can open it."""
    if "://" in uri or uri not in _LITE_USERS:
        return
    _LITE_USERS[uri] -= 1
    if _LITE_USERS[uri] == 0:
        from milvus_lite.server_manager import server_manager_instance

        del _LITE_USERS[uri]
        server_manager_instance.release_server(uri)


def _short(exc: Exception) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _schema(client, dim: int):
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.INT64, is_primary=True)
    for name, length in (("passage_id", 1024), ("doc_id", 512), ("title", 4096), ("date", 32)):
        schema.add_field(name, DataType.VARCHAR, max_length=length)
    for name in ("day", "start_char", "end_char"):
        schema.add_field(name, DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT)
    schema.add_field("terms", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]})
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                 input_field_names=["terms"], output_field_names=["sparse"]))
    return schema


def _index_params(client):
    params = client.prepare_index_params()
    params.add_index("vector", index_type="AUTOINDEX", metric_type="IP")
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                     params={"bm25_k1": K1, "bm25_b": B})
    return params


class MilvusStore:
    kind = "milvus"

    def __init__(self, client, uri: str, dim: int, analyzer: str = ANALYZER, name: str = COLLECTION):
        self.client, self.uri, self.dim, self.analyzer, self.name = client, uri, dim, analyzer, name

    @classmethod
    def open(cls, settings: Settings, dim: int, record: dict | None) -> "MilvusStore":
        """The collection a manifest `record` describes, checked; without one, a new empty
        collection (an old one of the same name is dropped)."""
        store = cls(_client(settings), public_uri(settings), dim, (record or {}).get("analyzer", ANALYZER))
        try:
            store._check(record) if record else store._create()
        except RagError:
            store.close()
            raise
        except Exception as exc:
            store.close()
            raise RagError(f"Milvus ({store.uri}) : {_short(exc)}") from None
        return store

    def _create(self) -> None:
        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)
        self.client.create_collection(self.name, schema=_schema(self.client, self.dim),
                                      index_params=_index_params(self.client), consistency_level="Strong")

    def _check(self, record: dict) -> None:
        fix = "Lancez `rag index --rebuild`."
        if not self.client.has_collection(self.name):
            raise RagError(f"Index périmé : la collection Milvus {self.name} n'existe plus ({self.uri}). {fix}")
        self.client.load_collection(self.name)
        dims = [f["params"].get("dim") for f in self.client.describe_collection(self.name)["fields"]
                if f["name"] == "vector"]
        if dims != [self.dim] or self.count() != record.get("count"):
            raise RagError(f"Index corrompu : la collection Milvus {self.name} ({self.count()} passages, "
                           f"dimension {dims}) ne correspond pas au manifeste ({record.get('count')} passages, "
                           f"dimension {self.dim}). {fix}")

    # ------------------------------------------------------------ changes

    def add(self, passages: Sequence[Passage], vectors: np.ndarray, dates: Mapping[str, str | None]) -> None:
        for start in range(0, len(passages), BATCH):
            rows = [self._row(p, v, dates.get(p.doc_id))
                    for p, v in zip(passages[start:start + BATCH], vectors[start:start + BATCH])]
            self.client.upsert(self.name, rows)

    def _row(self, p: Passage, vector: np.ndarray, date: str | None) -> dict:
        return {"key": passage_key(p.id), "passage_id": p.id, "doc_id": p.doc_id, "title": p.title[:4000],
                "date": date or "", "day": day_number(date), "start_char": p.start, "end_char": p.end,
                "text": p.text[:MAX_TEXT // 4], "terms": " ".join(analyze(p.text, self.analyzer))[:MAX_TEXT // 4],
                "vector": np.asarray(vector, dtype=np.float32).tolist()}

    def delete(self, doc_ids: Collection[str]) -> None:
        ids = sorted(doc_ids)
        for start in range(0, len(ids), BATCH):
            self.client.delete(self.name, filter=f"doc_id in {json.dumps(ids[start:start + BATCH])}")

    def commit(self, folder: Path | None = None) -> dict:
        self.client.flush(self.name)
        return {"kind": "milvus", "uri": self.uri, "collection": self.name, "dim": self.dim,
                "count": self.count(), "analyzer": self.analyzer, "bm25": "milvus"}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
            _release(self.uri)

    # ------------------------------------------------------------ search

    def count(self) -> int:
        rows = self.client.query(self.name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def search(self, vector: np.ndarray, n: int, where: Filter | None = None) -> dict[int, float]:
        data = [np.asarray(vector, dtype=np.float32).tolist()]
        hits = self.client.search(self.name, data=data, anns_field="vector", limit=n, filter=_expr(where),
                                  search_params={"metric_type": "IP"})
        return {int(h["key"]): float(h["distance"]) for h in hits[0]}

    def search_text(self, query: str, n: int, where: Filter | None = None) -> dict[int, float]:
        """BM25 in Milvus over the same terms as the local index; {key: score}, best first."""
        query_terms = " ".join(analyze(query, self.analyzer))
        if not query_terms:
            return {}
        hits = self.client.search(self.name, data=[query_terms], anns_field="sparse", limit=n,
                                  filter=_expr(where), search_params={"metric_type": "BM25"})
        return {int(h["key"]): abs(float(h["distance"])) for h in hits[0] if h["distance"]}


def _expr(where: Filter | None) -> str:
    """A Milvus boolean expression for `where` ("" = every row)."""
    if where is None:
        return ""
    parts = []
    if where.doc_ids is not None:
        parts.append(f"doc_id in {json.dumps(sorted(where.doc_ids))}")
    if (days := where.day_range()) is not None:
        parts.append(f"day >= {days[0]} and day <= {days[1]}")
    return " and ".join(parts)
