"""Scoring answers against a question set: right fact in excerpt 1, 1-3, MRR, declines."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .answer import Answer

if TYPE_CHECKING:
    from .coverage import CoverageIndex


@dataclass(frozen=True, slots=True)
class Question:
    """One evaluation question; `url` is None when the corpus cannot answer it."""

    id: str
    question: str
    url: str | None
    any_of: tuple[str, ...] = ()
    style: str | None = None
    split: str | None = None


def load_questions(path: Path) -> list[Question]:
    """Question lines {"id", "question", "url", "any_of", ...}; other fields are ignored."""
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            out.append(
                Question(
                    id=str(r["id"]),
                    question=r["question"],
                    url=r.get("url"),
                    any_of=tuple(r.get("any_of") or ()),
                    style=r.get("style"),
                    split=r.get("split"),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: bad question line: {exc}") from exc
    return out


class GoldMatcher:
    """Knows each article's text, so duplicates count as the gold article too."""

    def __init__(self, articles: Iterable[tuple[str, str]]):
        self.body: dict[str, str] = {}
        by_hash: dict[str, set[str]] = {}
        for url, body in articles:
            self.body[url] = body
            h = hashlib.sha1(" ".join(body.split()).encode()).hexdigest()
            by_hash.setdefault(h, set()).add(url)
        self.same: dict[str, set[str]] = {u: urls for urls in by_hash.values() for u in urls}

    def is_gold(self, q: Question, url: str) -> bool:
        """The excerpt's article is the gold one or a copy of it."""
        return q.url is not None and url in self.same.get(q.url, {q.url})

    def missing(self, questions: Sequence[Question]) -> list[Question]:
        """Answerable questions whose gold article is not in the index; scoring them would
        measure the import, not the answers."""
        return [q for q in questions if q.url is not None and q.url not in self.body]

    def is_verbatim(self, url: str, text: str) -> bool:
        """The excerpt is an exact substring of its article's body."""
        return url in self.body and text in self.body[url]


def has_fact(q: Question, text: str) -> bool:
    """The excerpt contains one of the question's answer phrases."""
    low = text.lower()
    return any(p.lower() in low for p in q.any_of)


@dataclass(slots=True)
class Scores:
    """Metrics of one system on one question set (shares in 0..1)."""

    answerable: int = 0
    unanswerable: int = 0
    fact_at_1: float = 0.0
    fact_at_3: float = 0.0
    mrr_at_10: float = 0.0
    article_at_1: float = 0.0
    answered: float = 0.0
    decline_recall: float = 0.0
    decline_precision: float = 0.0
    verbatim: float = 1.0
    excerpts: int = 0
    by_style: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """Rounded percentages for a table."""
        pct = lambda x: round(100 * x, 1)  # noqa: E731
        return {
            "fact@1": pct(self.fact_at_1),
            "fact@1-3": pct(self.fact_at_3),
            "MRR@10": round(self.mrr_at_10, 3),
            "article@1": pct(self.article_at_1),
            "answered": pct(self.answered),
            "declined(unans)": pct(self.decline_recall),
            "decline precision": pct(self.decline_precision),
            "verbatim": pct(self.verbatim),
        }


def score(questions: Sequence[Question], answers: Sequence[Answer], gold: GoldMatcher) -> Scores:
    """Score answers (in question order) against their questions."""
    s = Scores()
    rr_sum = f1 = f3 = a1 = answered = 0.0
    declined_unans = declined_all = verbatim = 0
    style_hits: dict[str, list[int]] = {}
    for q, a in zip(questions, answers, strict=True):
        if not a.answered:
            declined_all += 1
        for ex in a.excerpts:
            s.excerpts += 1
            verbatim += gold.is_verbatim(ex.url, ex.text)
        if q.url is None:
            s.unanswerable += 1
            declined_unans += not a.answered
            continue
        s.answerable += 1
        answered += a.answered
        ranks = [
            i
            for i, ex in enumerate(a.excerpts[:10])
            if gold.is_gold(q, ex.url) and has_fact(q, ex.text)
        ]
        first = ranks[0] if ranks else None
        f1 += first == 0
        f3 += first is not None and first < 3
        rr_sum += 0 if first is None else 1 / (first + 1)
        a1 += bool(a.excerpts) and gold.is_gold(q, a.excerpts[0].url)
        style_hits.setdefault(q.style or "-", []).append(int(first == 0))
    n = max(s.answerable, 1)
    s.fact_at_1, s.fact_at_3, s.mrr_at_10 = f1 / n, f3 / n, rr_sum / n
    s.article_at_1, s.answered = a1 / n, answered / n
    s.decline_recall = declined_unans / max(s.unanswerable, 1)
    s.decline_precision = declined_unans / declined_all if declined_all else 1.0
    s.verbatim = verbatim / s.excerpts if s.excerpts else 1.0
    s.by_style = {k: sum(v) / len(v) for k, v in sorted(style_hits.items())}
    return s


def with_threshold(answer: Answer, threshold: float) -> Answer:
    """The answer as it would be with another decline threshold."""
    if answer.answered and answer.confidence < threshold:
        return Answer(answer.question, False, (), answer.confidence)
    return answer


def calibrate_threshold(
    questions: Sequence[Question], answers: Sequence[Answer], min_answered: float = 0.95
) -> float:
    """The highest threshold that still answers `min_answered` of answerable questions.

    Answers must come from a run that never declines. Raising the threshold only adds
    declines, so the highest threshold that keeps the answer rate declines the most
    unanswerable questions for that price.
    """
    conf = sorted(a.confidence for q, a in zip(questions, answers, strict=True) if q.url)
    if not conf:
        return 0.0
    allowed_misses = int(len(conf) * (1 - min_answered))
    return conf[allowed_misses] - 1e-6


NEVER_DECLINE = -1e9


def baseline_settings(name: str) -> tuple[Any, Any]:
    """Retrieval and answer settings of a plain baseline: "bm25" or "dense" alone."""
    from .answer import AnswerSettings
    from .retrieval import RetrievalSettings

    weights = {"bm25": 0.0, "dense": 1.0}
    return (
        RetrievalSettings(dense_weight=weights[name]),
        AnswerSettings(excerpt_mode="passage", confidence_mode="fused"),
    )


@dataclass(slots=True)
class SystemRun:
    """One system's answers to every question, and the decline threshold it used."""

    name: str
    threshold: float
    answers: list[Answer]


def run_system(
    index: Any,
    name: str,
    questions: Sequence[Question],
    vectors: Any,
    calibrate_on: Sequence[int] | None,
    settings: Any = None,
) -> SystemRun:
    """Answer all questions without declining, then apply the system's threshold.

    `settings` (default: the index's own) are the system's; `calibrate_on` (indices of
    development questions) sets the threshold by `calibrate_threshold`; None keeps the
    threshold the settings are configured with.
    """
    import dataclasses

    settings = settings or index.settings
    configured = settings.answer.decline_below
    open_settings = dataclasses.replace(
        settings, answer=dataclasses.replace(settings.answer, decline_below=NEVER_DECLINE)
    )
    runner = type(index)(index.data_dir, open_settings, embedder=index.embedder)
    raw = [runner.ask(q.question, v) for q, v in zip(questions, vectors, strict=True)]
    if calibrate_on is None:
        threshold = configured
    else:
        threshold = calibrate_threshold(
            [questions[i] for i in calibrate_on], [raw[i] for i in calibrate_on]
        )
    return SystemRun(name, threshold, [with_threshold(a, threshold) for a in raw])


def gold_of(index: CoverageIndex) -> GoldMatcher:
    """A gold matcher over every article stored in ``index``."""
    store = index.store
    return GoldMatcher(
        (s.article.url, s.article.body) for s in store.get_many(store.all_article_keys()).values()
    )


def evaluate(
    index: CoverageIndex, questions: Sequence[Question], *, baselines: bool, calibrate: bool
) -> list[SystemRun]:
    """coverbot's answers to ``questions`` and, with ``baselines``, the hand-weighted excerpt
    choice, BM25 alone and dense alone.

    Baselines calibrate their decline threshold on the dev questions (all of them when none
    is marked dev); coverbot does too with ``calibrate``, else keeps its configured one.
    """
    import dataclasses

    vectors = index.embedder.encode([q.question for q in questions])
    dev = [i for i, q in enumerate(questions) if q.split == "dev"] or list(range(len(questions)))
    own = dev if calibrate else None
    runs = [run_system(index, "coverbot", questions, vectors, own)]
    if baselines and index.settings.answer.excerpt_mode == "learned":
        # The same retrieval and declines with the hand-weighted excerpt choice: what the
        # learned ranker (index/excerpts.py) changes.
        hand = dataclasses.replace(index.settings.answer, excerpt_mode="window")
        settings = dataclasses.replace(index.settings, answer=hand)
        runs.append(run_system(index, "hand-weighted", questions, vectors, own, settings))
    for name in ("bm25", "dense") if baselines else ():
        retrieval, answer = baseline_settings(name)
        settings = dataclasses.replace(index.settings, retrieval=retrieval, answer=answer)
        runs.append(run_system(index, name, questions, vectors, dev, settings))
    return runs
