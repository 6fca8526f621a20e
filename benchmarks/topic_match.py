"""Topic matching on the fixture table: words, meaning and both, over a sweep of thresholds.

    python benchmarks/topic_match.py [--data-dir DIR] [--table benchmarks/topics/sample.jsonl]

Indexes the sample coverage and tests/fixtures/topics/ (nothing is embedded again when
--data-dir already holds them), matches every topic of the table against every article and
prints: precision/recall/F1 micro-averaged over topic-article pairs for words only, meaning
only and both, for each meaning threshold and each words span; per-topic rows; and the
threshold chosen. The choice is leave-one-topic-out: for each topic, the threshold with the
best combined F1 on the other topics (the middle one when several tie); the default is the
median of those, so no single topic sets it. Figures, never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from index.articles import Article
from index.coverage import CoverageIndex
from index.importers import read_paths
from index.topics import TopicSettings, match_topics

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = [ROOT / "index" / "sample" / "articles.jsonl", ROOT / "tests" / "fixtures" / "topics"]
TABLE = ROOT / "benchmarks" / "topics" / "sample.jsonl"
# Relative scores (the default) sit lower than raw cosines: one sweep for each.
SWEEPS = {
    "relative": [round(-0.05 + 0.01 * i, 2) for i in range(51)],
    "raw cosine": [round(0.20 + 0.01 * i, 2) for i in range(51)],
}
SPANS: list[int | None] = [2, 4, 8, 16, 32, None]


@dataclass(frozen=True, slots=True)
class Row:
    """One topic of the table and the articles judged to match it."""

    topic: str
    kind: str
    expected: frozenset[str]


@dataclass(frozen=True, slots=True)
class Scored:
    """What matching said about one topic: articles found by words, and every similarity."""

    words: frozenset[str]
    similarity: dict[str, float]

    def meaning(self, threshold: float) -> set[str]:
        return {url for url, s in self.similarity.items() if s >= threshold}

    def combined(self, threshold: float) -> set[str]:
        return self.words | self.meaning(threshold)


@dataclass(slots=True)
class Counts:
    """True/false positives and misses, summed over topic-article pairs."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, expected: Iterable[str], found: Iterable[str]) -> Counts:
        want, got = set(expected), set(found)
        self.tp += len(want & got)
        self.fp += len(got - want)
        self.fn += len(want - got)
        return self

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def line(self) -> str:
        return (
            f"P {100 * self.precision:5.1f}  R {100 * self.recall:5.1f}  F1 {100 * self.f1:5.1f}"
            f"  (tp {self.tp}, fp {self.fp}, fn {self.fn})"
        )


def load_table(path: Path) -> list[Row]:
    """The fixture table: one JSON object per line with topic, kind and expected urls."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            rows.append(Row(item["topic"], item.get("kind", ""), frozenset(item["expected"])))
    return rows


def score_all(index: CoverageIndex, rows: Sequence[Row], settings: TopicSettings) -> list[Scored]:
    """Match with a threshold no score falls below, so every article's score is reported."""
    articles = index.arrivals(datetime(1970, 1, 1, tzinfo=UTC))
    found = match_topics(
        index, [r.topic for r in rows], articles, replace(settings, meaning_threshold=-2.0)
    )
    return [
        Scored(
            frozenset(m.url for m in found[r.topic] if m.how == "words"),
            {m.url: m.score for m in found[r.topic]},
        )
        for r in rows
    ]


def total(rows: Sequence[Row], found: Sequence[Iterable[str]]) -> Counts:
    """Counts summed over the rows; `found[i]` is what was found for row i."""
    counts = Counts()
    for row, urls in zip(rows, found, strict=True):
        counts.add(row.expected, urls)
    return counts


def best_threshold(
    rows: Sequence[Row], scored: Sequence[Scored], keep: Sequence[int], sweep: Sequence[float]
) -> float:
    """The threshold with the best combined F1 over the topics `keep`; the middle of ties."""
    f1 = {
        t: total([rows[i] for i in keep], [scored[i].combined(t) for i in keep]).f1 for t in sweep
    }
    top = max(f1.values())
    tied = [t for t in sweep if f1[t] >= top - 1e-9]
    return tied[len(tied) // 2]


def leave_one_topic_out(
    rows: Sequence[Row], scored: Sequence[Scored], sweep: Sequence[float]
) -> tuple[list[float], Counts]:
    """Each topic's threshold chosen on the others, and the counts of those held-out choices."""
    everyone = range(len(rows))
    folds = [best_threshold(rows, scored, [j for j in everyone if j != i], sweep) for i in everyone]
    return folds, total(rows, [s.combined(f) for s, f in zip(scored, folds, strict=True)])


def short(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1][:30]


def print_sweep(rows: Sequence[Row], scored: Sequence[Scored], sweep: Sequence[float]) -> None:
    print("  thresh | meaning only                                | words + meaning")
    for t in sweep[::2]:
        meaning = total(rows, [s.meaning(t) for s in scored])
        both = total(rows, [s.combined(t) for s in scored])
        print(f"  {t:5.2f}  | {meaning.line():43} | {both.line()}")


def print_topics(rows: Sequence[Row], scored: Sequence[Scored], threshold: float) -> None:
    print(f"\nper topic at {threshold:.2f} (words / meaning / both: tp fp fn):")
    for i, row in enumerate(rows):
        s = scored[i]
        both = s.combined(threshold)
        counts = [Counts().add(row.expected, f) for f in (s.words, s.meaning(threshold), both)]
        cells = "   ".join(f"{c.tp} {c.fp} {c.fn}" for c in counts)
        print(f"  {row.kind:6} {row.topic[:33]:33} {cells}")
        if row.expected - both:
            print("           missed:", ", ".join(short(u) for u in sorted(row.expected - both)))
        if both - row.expected:
            print("           extra: ", ", ".join(short(u) for u in sorted(both - row.expected)))
    print(f"\nwords + meaning at {threshold:.2f}, by kind:")
    for kind in dict.fromkeys(r.kind for r in rows):
        keep = [i for i, r in enumerate(rows) if r.kind == kind]
        counts = total([rows[i] for i in keep], [scored[i].combined(threshold) for i in keep])
        print(f"  {kind:6} ({len(keep):2} topics): {counts.line()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--table", type=Path, default=TABLE)
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="coverbot-topics-"))
    rows = load_table(args.table)

    index = CoverageIndex(data_dir)
    report = index.import_articles(a for a in read_paths(ARTICLES) if isinstance(a, Article))
    print(f"data dir: {data_dir}; {report.summary()}")
    print(
        f"table {args.table.name}: {len(rows)} topics, "
        f"{sum(len(r.expected) for r in rows)} expected topic-article pairs, "
        f"{index.stats(with_vectors=False).articles} articles"
    )
    default = TopicSettings()
    modes = {
        "relative": default,
        "raw cosine": replace(default, baseline_passages=0),
    }
    chosen: dict[str, float] = {}
    scored_by_mode = {}
    for mode, settings in modes.items():
        sweep = SWEEPS[mode]
        scored = scored_by_mode[mode] = score_all(index, rows, settings)
        print(f"\n{mode} scores, words_span {settings.words_span}:")
        print_sweep(rows, scored, sweep)
        folds, held_out = leave_one_topic_out(rows, scored, sweep)
        chosen[mode] = round(statistics.median(folds), 2)
        best = best_threshold(rows, scored, range(len(rows)), sweep)
        print(
            f"  leave-one-topic-out thresholds: min {min(folds):.2f}, median {chosen[mode]:.2f}, "
            f"max {max(folds):.2f}; held out: {held_out.line()}"
        )
        at_best = total(rows, [s.combined(best) for s in scored])
        print(f"  best on all topics: {best:.2f}: {at_best.line()}")

    threshold = chosen["relative"]
    print(f"\nby words_span, at meaning_threshold {threshold:.2f}:")
    for span in SPANS:
        scored = score_all(index, rows, replace(default, words_span=span))
        words = total(rows, [s.words for s in scored])
        both = total(rows, [s.combined(threshold) for s in scored])
        print(f"  span {span!s:>4}: words {words.line():43} | both {both.line()}")

    print_topics(rows, scored_by_mode["relative"], threshold)

    # The real call with the chosen threshold must agree with the sweep; it also shows the cost.
    topics = [r.topic for r in rows]
    articles = index.arrivals(datetime(1970, 1, 1, tzinfo=UTC))
    t0 = time.perf_counter()
    index.embedder.encode(topics)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = match_topics(index, topics, articles, replace(default, meaning_threshold=threshold))
    seconds = time.perf_counter() - t0
    real = total(rows, [{m.url for m in found[t]} for t in topics])
    print(
        f"\nchosen meaning_threshold = {threshold:.2f} (default in TopicSettings: "
        f"{default.meaning_threshold:.2f}); match_topics with it: {real.line()}"
    )
    print(
        f"{len(topics)} topics x {len(articles)} articles: {seconds:.2f} s, of which "
        f"encoding the topics ~{encode_s:.2f} s"
    )


if __name__ == "__main__":
    main()
