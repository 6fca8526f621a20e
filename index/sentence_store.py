"""Reading the sentence vectors the article store keeps beside each passage (schema 3)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .passages import Passage, Span, embed_text


def blob(vectors: np.ndarray | None) -> bytes | None:
    """The stored form of a passage's sentence vectors: float16 rows."""
    return None if vectors is None else np.asarray(vectors, np.float16).tobytes()


def _matrix(data: bytes | None, rows: int) -> np.ndarray | None:
    if data is None or rows == 0 or len(data) % (rows * 2):
        return None
    return np.frombuffer(data, np.float16).reshape(rows, -1).astype(np.float32)


class SentenceVectorReads:
    """The article store's reads of sentence vectors (mixed into `ArticleStore`)."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def sentence_vectors(self, keys: Iterable[str]) -> dict[str, tuple[list[Span], np.ndarray]]:
        """Each article's sentence spans and vectors (float32), for articles whose passages all
        have them (stores from before schema 3 have none until reindexed)."""
        out: dict[str, tuple[list[Span], np.ndarray]] = {}
        keys = list(dict.fromkeys(keys))
        if not keys:
            return out
        marks = ",".join("?" * len(keys))
        try:
            rows = (
                self._conn()
                .execute(
                    f"SELECT article_key, sentences, vectors FROM passages "
                    f"WHERE article_key IN ({marks}) ORDER BY article_key, ordinal",
                    keys,
                )
                .fetchall()
            )
        except sqlite3.OperationalError:  # a schema-2 store that could not be upgraded
            return out
        parts: dict[str, list[tuple[list[Span], np.ndarray] | None]] = {}
        for key, sentences, data in rows:
            spans = [Span(a, b) for a, b in json.loads(sentences)]
            matrix = _matrix(data, len(spans))
            parts.setdefault(key, []).append((spans, matrix) if matrix is not None else None)
        for key, items in parts.items():
            if all(items):
                good = [i for i in items if i is not None]
                spans = [s for part, _ in good for s in part]
                out[key] = (spans, np.concatenate([m for _, m in good]))
        return out

    def passage_sentence_vectors(self, ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored sentence vectors of passages by id (those that have them)."""
        ids = list(dict.fromkeys(ids))
        out: dict[str, np.ndarray] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            sql = f"SELECT id, sentences, vectors FROM passages WHERE id IN ({marks})"
            for pid, sentences, data in self._conn().execute(sql, part):
                matrix = _matrix(data, len(json.loads(sentences)))
                if matrix is not None:
                    out[pid] = matrix
        return out


def sentence_texts(title: str, body: str, passage: Passage) -> list[str]:
    """What the model sees for each sentence of a passage: the headline and the sentence (for
    a one-sentence passage, the passage's own embedding text, so its vector is reused)."""
    return [embed_text(title, body[s.start : s.end]) for s in passage.sentences]


def assemble(
    passages: Sequence[Passage],
    passage_vectors: Mapping[str, np.ndarray],
    sentence_vectors: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Each passage's sentence vectors: its own vector for a one-sentence passage, else the
    sentences' vectors (passages with neither are left out)."""
    out: dict[str, np.ndarray] = {}
    for p in passages:
        if p.id in sentence_vectors:
            out[p.id] = sentence_vectors[p.id]
        elif len(p.sentences) == 1 and p.id in passage_vectors:
            out[p.id] = passage_vectors[p.id][None, :]
    return out
