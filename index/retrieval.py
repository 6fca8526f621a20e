"""Hybrid retrieval: dense (Chroma) and lexical (BM25) scores fused per passage."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .lexical import LexicalIndex
from .vectors import VectorStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetrievalSettings:
    """Knobs of the hybrid search, chosen by measurement on the development questions."""

    dense_k: int = 50
    lexical_k: int = 50
    # Weight of the dense similarity in the fused score; the rest goes to lexical coverage.
    dense_weight: float = 0.6
    fusion: str = "score"  # "score" (weighted, normalised) or "rrf"
    rrf_k: int = 60


@dataclass(frozen=True, slots=True)
class ScoredPassage:
    """One retrieved passage with every score that went into its rank."""

    passage_id: str
    dense: float
    lexical: float
    lexical_norm: float
    fused: float
    dense_rank: int | None
    lexical_rank: int | None


def query_weight(terms: Sequence[str], lexical: LexicalIndex) -> float:
    """BM25 score of a passage of average length that holds each query term once.

    bm25s scores the Lucene way, without the (k1 + 1) factor, so such a passage scores
    IDF / (1 + k1) per term; unknown terms count with the highest IDF, as misses.
    """
    total = sum(lexical.idf_of(t) for t in dict.fromkeys(terms))
    return total / (1 + lexical.k1) if total else 1.0


def hybrid_search(
    query_vector: np.ndarray,
    query_terms: Sequence[str],
    vectors: VectorStore,
    lexical: LexicalIndex,
    settings: RetrievalSettings,
) -> list[ScoredPassage]:
    """Candidates from both retrievers, each scored by both, best fused score first."""
    dense_hits = vectors.query(query_vector, settings.dense_k)
    lexical_scores = lexical.scores(query_terms)
    lexical_hits = lexical.top(lexical_scores, settings.lexical_k)
    dense = {h.passage_id: h.similarity for h in dense_hits}
    lex = {h.passage_id: h.score for h in lexical_hits}
    dense_rank = {h.passage_id: i for i, h in enumerate(dense_hits)}
    lex_rank = {h.passage_id: i for i, h in enumerate(lexical_hits)}

    # Score every candidate by both retrievers, not only by the one that found it.
    missing_dense = [pid for pid in lex if pid not in dense]
    if missing_dense:
        for pid, vec in vectors.get_vectors(missing_dense).items():
            dense[pid] = float(np.dot(vec, query_vector))
    for pid in dense:
        if pid not in lex:
            lex[pid] = lexical.score_of(lexical_scores, pid)

    norm = query_weight(query_terms, lexical)
    out = []
    for pid in dense.keys() | lex.keys():
        d = dense.get(pid, 0.0)
        raw = lex.get(pid, 0.0)
        ln = min(raw / norm, 1.0)
        if settings.fusion == "rrf":
            fused = sum(
                1.0 / (settings.rrf_k + r + 1)
                for r in (dense_rank.get(pid), lex_rank.get(pid))
                if r is not None
            )
        else:
            fused = settings.dense_weight * d + (1 - settings.dense_weight) * ln
        out.append(ScoredPassage(pid, d, raw, ln, fused, dense_rank.get(pid), lex_rank.get(pid)))
    # Ties are common where BM25's share is capped at 1.0; break them by the raw scores, then
    # the id, so the order never depends on set iteration (string hashes vary per process).
    out.sort(key=lambda s: (-s.fused, -s.lexical, -s.dense, s.passage_id))
    return out
