"""The one module that owns Chroma: passage ids and vectors, nothing else."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from .embeddings import Embedder

log = logging.getLogger(__name__)

COLLECTION = "passages"
# Measured here: HNSW recall@10 at 100k real vectors is 0.92 with Chroma's default ef_search
# and 0.98 with 400; it is fixed at collection creation.
EF_SEARCH = 400
_WRITE_BATCH = 4096


@dataclass(frozen=True, slots=True)
class VectorHit:
    """A passage id with its cosine similarity to the query."""

    passage_id: str
    similarity: float


def _embedding_function(embedder: Embedder | None) -> Any:
    """Chroma's explicit embedding function, so it never falls back to downloading its own."""
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

    class CoverbotEmbeddingFunction(EmbeddingFunction[Documents]):
        """Adapter from Chroma to coverbot's `Embedder`; coverbot always passes vectors itself."""

        def __init__(self, model: str) -> None:
            self._model = model

        def __call__(self, input: Documents) -> Embeddings:
            if embedder is None:
                raise RuntimeError("coverbot passes embeddings explicitly; no model is attached")
            return list(embedder.encode(list(input)))

        @staticmethod
        def name() -> str:
            return "coverbot"

        def get_config(self) -> dict[str, Any]:
            return {"model": self._model}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> CoverbotEmbeddingFunction:
            return CoverbotEmbeddingFunction(config.get("model", ""))

        def default_space(self) -> Any:
            return "cosine"

    return CoverbotEmbeddingFunction(embedder.name if embedder else "")


def make_client(path: Path | None = None, url: str | None = None) -> Any:
    """An embedded PersistentClient under `path`, or an HttpClient for a Chroma server URL."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        return chromadb.HttpClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=settings,
        )
    assert path is not None
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


_CANNOT_WRITE = ("readonly", "read-only", "disk is full", "no space left", "unable to open")


def open_embedded(path: Path) -> tuple[Any, Path | None]:
    """An embedded client for `path`, and the snapshot folder it reads instead when `path`
    cannot be written (Chroma writes to its SQLite file even to open it): answering then
    works from a read-only or full data dir, as long as the temp folder has room."""
    try:
        return make_client(path), None
    except Exception as exc:
        if not any(text in str(exc).lower() for text in _CANNOT_WRITE):
            raise
        snapshot = Path(tempfile.mkdtemp(prefix="coverbot-chroma-"))
        log.warning("%s cannot be written (%s); reading a copy in %s", path, exc, snapshot)
        try:
            shutil.copytree(path, snapshot, dirs_exist_ok=True)
            return make_client(snapshot), snapshot
        except BaseException:
            shutil.rmtree(snapshot, ignore_errors=True)
            raise


class VectorStore:
    """Passage vectors in one Chroma collection, cosine space."""

    def __init__(
        self,
        client: Any,
        name: str = COLLECTION,
        embedder: Embedder | None = None,
        path: Path | None = None,
        snapshot: Path | None = None,
    ):
        self.client = client
        self.name = name
        # The generation folder this collection belongs to (embedded Chroma), and the copy
        # read instead when that folder cannot be written (`open_embedded`).
        self.path = path or Path(".")
        self.snapshot = snapshot
        self.collection: Collection = client.get_or_create_collection(
            name=name,
            configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}},
            embedding_function=_embedding_function(embedder),
        )

    def close(self) -> None:
        """Let go of the collection; an embedded store's files are closed once no other
        client of this process uses them, so the next open reads them afresh."""
        close = getattr(self.client, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # closing must never fail an answer
                log.warning("closing Chroma failed", exc_info=True)
        if self.snapshot is not None:
            shutil.rmtree(self.snapshot, ignore_errors=True)

    def count(self) -> int:
        """Number of vectors stored."""
        return int(self.collection.count())

    def upsert(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors under passage ids, replacing any with the same id."""
        for i in range(0, len(ids), _WRITE_BATCH):
            self.collection.upsert(
                ids=list(ids[i : i + _WRITE_BATCH]),
                embeddings=vectors[i : i + _WRITE_BATCH],
            )

    def delete(self, ids: Sequence[str]) -> None:
        """Remove vectors by passage id; unknown ids are ignored."""
        for i in range(0, len(ids), _WRITE_BATCH):
            self.collection.delete(ids=list(ids[i : i + _WRITE_BATCH]))

    def all_ids(self) -> set[str]:
        """Every stored passage id (for consistency checks)."""
        ids: set[str] = set()
        offset = 0
        while True:
            page = self.collection.get(include=[], limit=10_000, offset=offset)
            if not page["ids"]:
                return ids
            ids.update(page["ids"])
            offset += len(page["ids"])

    def get_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors for the given passage ids; ids without a vector are left out."""
        out: dict[str, np.ndarray] = {}
        # In batches: a digest may ask for the passages of thousands of new articles at once.
        for i in range(0, len(ids), _WRITE_BATCH):
            page = self.collection.get(ids=list(ids[i : i + _WRITE_BATCH]), include=["embeddings"])
            embeddings = page["embeddings"]
            if embeddings is None:
                continue
            for pid, vec in zip(page["ids"], list(embeddings), strict=True):
                out[pid] = np.asarray(vec, dtype=np.float32)
        return out

    def query(self, vector: np.ndarray, k: int) -> list[VectorHit]:
        """Nearest passages to a unit query vector, most similar first."""
        # Chroma returns fewer than k hits from a small collection; no count() round trip.
        result = self.collection.query(
            query_embeddings=[vector], n_results=k, include=["distances"]
        )
        ids = result["ids"][0]
        distances = result["distances"][0] if result["distances"] else []
        return [VectorHit(pid, 1.0 - float(d)) for pid, d in zip(ids, distances, strict=True)]
