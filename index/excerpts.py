"""The learned excerpt ranker: which sentence of an article answers the question.

Every sentence of an article (as its passages cut it) has a vector, stored at import: the
bundled model's embedding of the headline and the sentence. A question is scored against
each sentence by a linear listwise model over features of the sentence and its neighbours
(`FEATURES`): the question-sentence similarity, the question's IDF weight the sentence
holds, the same for the sentences before and after (news announces a topic, then gives the
detail), whether it offers the kind of answer asked for, where it sits. The weights are
fitted by `benchmarks/train_ranker.py` on hand-written questions (never the test split)
and ship in `ranker.json` beside this module, with the command that made them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from .lexical import LexicalIndex, tokenize
from .passages import Span, paragraphs
from .qtype import answer_type, offers

MODEL_PATH = Path(__file__).with_name("ranker.json")
FEATURES = (
    "similarity",
    "similarity_gap",
    "coverage",
    "coverage_gap",
    "similarity_before",
    "similarity_after",
    "coverage_before",
    "coverage_after",
    "offers",
    "offers_similarity",
    "first_paragraph",
    "position",
    "length",
    "novel",
)


@dataclass(frozen=True, slots=True)
class ArticleSentences:
    """An article's sentences, in order, with their vectors and paragraph numbers."""

    body: str
    spans: tuple[Span, ...]
    vectors: np.ndarray  # float32, one unit-length row per span
    paragraphs: tuple[int, ...]

    @classmethod
    def of(cls, body: str, spans: Sequence[Span], vectors: np.ndarray) -> ArticleSentences:
        """An article's sentences as the store gives them, numbered by paragraph."""
        return cls(body, tuple(spans), vectors, paragraph_numbers(body, spans))


@dataclass(frozen=True, slots=True)
class RankerModel:
    """A fitted linear model over standardised FEATURES."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The shipped form: features, standardisation, weights, provenance."""
        return {
            "features": list(FEATURES),
            "mean": [round(float(x), 6) for x in self.mean],
            "std": [round(float(x), 6) for x in self.std],
            "weights": [round(float(x), 6) for x in self.weights],
            **self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RankerModel:
        """Read a model; refuse one fitted on other features."""
        if tuple(data.get("features", ())) != FEATURES:
            raise ValueError("ranker model was fitted on other features; refit it")
        meta = {k: v for k, v in data.items() if k not in ("features", "mean", "std", "weights")}
        return cls(
            np.asarray(data["mean"], np.float32),
            np.asarray(data["std"], np.float32),
            np.asarray(data["weights"], np.float32),
            meta,
        )

    def scores(self, features: np.ndarray) -> np.ndarray:
        """One score per row of features."""
        return np.asarray(((features - self.mean) / self.std) @ self.weights, np.float32)


@cache
def shipped_model() -> RankerModel | None:
    """The model in the package, or None when none was fitted (the landed choice is used)."""
    if not MODEL_PATH.is_file():
        return None
    return RankerModel.from_json(json.loads(MODEL_PATH.read_text(encoding="utf-8")))


def paragraph_numbers(body: str, spans: Sequence[Span]) -> tuple[int, ...]:
    """Paragraph number of each span, by the rule passages are cut with."""
    return tuple(n for n, group in enumerate(paragraphs(body, spans)) for _ in group)


def _shift(values: np.ndarray, by: int) -> np.ndarray:
    """values[i - by] at i: by=1 is the one before, -1 the one after. Past the ends, the
    article's mean: a first sentence has no sentence before it, which is no evidence either
    way (a zero there would penalise every opening sentence; where the sentence sits has
    features of its own)."""
    out = np.full_like(values, values.mean())
    if by > 0:
        out[by:] = values[:-by]
    else:
        out[:by] = values[-by:]
    return out


def features(
    question: str,
    query_vector: np.ndarray,
    weights: dict[str, float],
    article: ArticleSentences,
) -> np.ndarray:
    """The FEATURES row of every sentence of an article, for one question.

    `weights` maps each distinct query term to its IDF.
    """
    n = len(article.spans)
    texts = [article.body[s.start : s.end] for s in article.spans]
    terms = [set(tokenize(t)) for t in texts]
    total = sum(weights.values()) or 1.0
    cov = np.asarray([sum(w for t, w in weights.items() if t in ts) / total for ts in terms])
    sim = np.asarray(article.vectors @ query_vector, dtype=np.float64)
    kind = answer_type(question)
    offer = np.asarray([float(offers(kind, t, question)) for t in texts])
    novel = np.asarray([len(ts - weights.keys()) / max(len(ts), 1) for ts in terms])
    first = np.asarray([float(p == 0) for p in article.paragraphs])
    return np.stack(
        [
            sim,
            sim - sim.max(),
            cov,
            cov - cov.max(),
            _shift(sim, 1),
            _shift(sim, -1),
            _shift(cov, 1),
            _shift(cov, -1),
            offer,
            offer * sim,
            first,
            np.arange(n) / max(n - 1, 1),
            np.asarray([min(len(t), 400) / 200 for t in texts]),
            novel,
        ],
        axis=1,
    ).astype(np.float32)


def term_weights(query_terms: Sequence[str], lexical: LexicalIndex) -> dict[str, float]:
    """IDF of each distinct query term."""
    return {t: lexical.idf_of(t) for t in dict.fromkeys(query_terms)}


def window_around(
    article: ArticleSentences, best: int, scores: np.ndarray, max_chars: int, max_sentences: int
) -> Span:
    """The best sentence with neighbours of its paragraph while they fit; the neighbour that
    scores higher joins first."""
    spans, paragraphs = article.spans, article.paragraphs
    lo = hi = best
    while hi - lo + 1 < max_sentences:
        options = []
        for j in (lo - 1, hi + 1):
            if 0 <= j < len(spans) and paragraphs[j] == paragraphs[best]:
                first, last = min(lo, j), max(hi, j)
                if spans[last].end - spans[first].start <= max_chars:
                    options.append((float(scores[j]), j < lo, j))
        if not options:
            break
        _, _, j = max(options)
        lo, hi = min(lo, j), max(hi, j)
    return Span(spans[lo].start, spans[hi].end)


@dataclass(frozen=True, slots=True)
class Pick:
    """The ranker's choice in one article: the excerpt, its answering sentence, its score."""

    window: Span
    sentence: Span
    score: float


def pick(
    model: RankerModel,
    question: str,
    query_vector: np.ndarray,
    weights: dict[str, float],
    article: ArticleSentences,
    max_chars: int,
    max_sentences: int,
) -> Pick:
    """The best sentence of an article and the excerpt around it."""
    scores = model.scores(features(question, query_vector, weights, article))
    best = int(np.argmax(scores))  # ties: the first
    window = window_around(article, best, scores, max_chars, max_sentences)
    return Pick(window, article.spans[best], float(scores[best]))


def softmax_fit(
    lists: Sequence[tuple[np.ndarray, np.ndarray]],
    l2: float = 0.01,
    steps: int = 400,
    rate: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a listwise softmax model: each list is (features, 0/1 labels of answering rows).

    Full-batch gradient descent from zero, so the same lists give the same weights.
    Returns (mean, std, weights).
    """
    stacked = np.concatenate([x for x, _ in lists]).astype(np.float64)
    mean = stacked.mean(0)
    std = stacked.std(0) + 1e-6
    prepared = [((x - mean) / std, y / y.sum()) for x, y in lists]
    w = np.zeros(stacked.shape[1])
    for _ in range(steps):
        grad = np.zeros_like(w)
        for x, target in prepared:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += x.T @ (p - target)
        w -= rate * (grad / len(prepared) + l2 * w)
    return mean, std, w
