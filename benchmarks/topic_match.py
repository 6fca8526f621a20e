"""Topic matching: words, meaning and both, over a sweep of meaning thresholds.

    python benchmarks/topic_match.py [--data-dir DIR] [--table benchmarks/topics/sample.jsonl]
        [--negatives ../shared/corpus/bbc-news/articles.jsonl --negatives-data-dir DIR2]

Indexes the sample coverage and tests/fixtures/topics/ (nothing is embedded again when
--data-dir already holds them), matches every topic of the table against every article and
prints precision/recall/F1 micro-averaged over topic-article pairs for words only, meaning
only and both, for each threshold and words span, then per-topic rows.

The table is rich in positives (one pair in thirteen matches), so its best F1 says little
about how often a digest would carry a wrong article. With --negatives, a large corpus is
indexed too and the topics of --absent (which that corpus does not cover) are matched
against all of it: every meaning match there is a false one, counted per 1,000 articles per
topic. The threshold chosen is the lowest that keeps that rate within --budget, and never
below the table's own choice (leave-one-topic-out: for each topic the best combined F1 on
the others, the middle one of ties; their median), so no single topic sets it; the budget's
threshold is likewise the median over leaving each absent topic out. The words span is the
one with the best words-only F1 on the table (the wider of equals). The corpora are read
from their paths, never copied. Figures, never pass/fail.
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
from index.store import StoredArticle
from index.topics import TopicSettings, match_topics

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = [ROOT / "index" / "sample" / "articles.jsonl", ROOT / "tests" / "fixtures" / "topics"]
TABLE = ROOT / "benchmarks" / "topics" / "sample.jsonl"
ABSENT = ROOT / "benchmarks" / "topics" / "absent-bbc.jsonl"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
        return self.meaning(threshold) | self.words


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
            rows.append(
                Row(item["topic"], item.get("kind", ""), frozenset(item.get("expected", ())))
            )
    return rows


def score_all(
    index: CoverageIndex,
    rows: Sequence[Row],
    settings: TopicSettings,
    articles: Sequence[StoredArticle] | None = None,
) -> list[Scored]:
    """Match with a threshold no score falls below, so every article's score is reported."""
    if articles is None:
        articles = index.arrivals(EPOCH)
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


@dataclass(frozen=True, slots=True)
class Negatives:
    """Meaning scores of topics a large corpus does not cover, against all of its articles."""

    scored: list[Scored]
    articles: int

    @property
    def by_words(self) -> int:
        """False matches by words (whatever the threshold)."""
        return sum(len(s.words) for s in self.scored)

    def rate(self, threshold: float, skip: int | None = None) -> float:
        """False matches by meaning per 1,000 articles per topic (leaving out topic `skip`)."""
        kept = [s for i, s in enumerate(self.scored) if i != skip]
        false = sum(len(s.meaning(threshold) - s.words) for s in kept)
        return 1000 * false / (len(kept) * self.articles)

    def lowest_within(
        self, budget: float, sweep: Sequence[float], skip: int | None = None
    ) -> float:
        """The lowest threshold whose false-match rate is within the budget."""
        return next((t for t in sweep if self.rate(t, skip) <= budget), sweep[-1])


def score_negatives(
    index: CoverageIndex, topics: Sequence[str], urls: set[str], settings: TopicSettings
) -> Negatives:
    """Every topic against every article of `urls` (the negatives corpus) in the index."""
    articles = [a for a in index.arrivals(EPOCH) if a.article.url in urls]
    rows = [Row(t, "absent", frozenset()) for t in topics]
    return Negatives(score_all(index, rows, settings, articles), len(articles))


def print_sweep(
    rows: Sequence[Row],
    scored: Sequence[Scored],
    sweep: Sequence[float],
    negatives: Negatives | None,
) -> None:
    print(
        "  thresh | meaning only"
        + " " * 31
        + "| words + meaning"
        + (" " * 29 + "| false/1000" if negatives else "")
    )
    for t in sweep[::2]:
        meaning = total(rows, [s.meaning(t) for s in scored])
        both = total(rows, [s.combined(t) for s in scored])
        rate = f" | {negatives.rate(t):6.2f}" if negatives else ""
        print(f"  {t:5.2f}  | {meaning.line():42} | {both.line():43}{rate}")


def print_topics(rows: Sequence[Row], scored: Sequence[Scored], threshold: float) -> None:
    print(f"\nper topic at {threshold:.2f} (words / meaning / both: tp fp fn):")
    for i, row in enumerate(rows):
        s = scored[i]
        both = s.combined(threshold)
        cells = "   ".join(
            f"{c.tp} {c.fp} {c.fn}"
            for c in (Counts().add(row.expected, f) for f in (s.words, s.meaning(threshold), both))
        )
        print(f"  {row.kind:6} {row.topic[:33]:33} {cells}")
        if row.expected - both:
            print("           missed:", ", ".join(short(u) for u in sorted(row.expected - both)))
        if both - row.expected:
            print("           extra: ", ", ".join(short(u) for u in sorted(both - row.expected)))
    print(f"\nwords + meaning at {threshold:.2f}, by kind:")
    for kind in dict.fromkeys(r.kind for r in rows):
        keep = [i for i, r in enumerate(rows) if r.kind == kind]
        counts = total([rows[i] for i in keep], [scored[i].combined(threshold) for i in keep])
        if counts.tp + counts.fn:
            print(f"  {kind:6} ({len(keep):2} topics): {counts.line()}")
        else:
            print(f"  {kind:6} ({len(keep):2} topics): {counts.fp} false matches")


def import_into(data_dir: Path, paths: Sequence[Path]) -> tuple[CoverageIndex, set[str]]:
    """An index of the articles in `paths` under `data_dir`, and their urls."""
    articles = [a for a in read_paths(paths) if isinstance(a, Article)]
    index = CoverageIndex(data_dir)
    report = index.import_articles(articles)
    print(f"{data_dir}: {report.summary()}")
    return index, {a.url for a in articles}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--negatives", type=Path, action="append", default=[])
    parser.add_argument("--negatives-data-dir", type=Path, default=None)
    parser.add_argument("--absent", type=Path, default=ABSENT)
    parser.add_argument(
        "--budget", type=float, default=1.0, help="false matches per 1,000 articles per topic"
    )
    args = parser.parse_args()
    rows = load_table(args.table)
    index, _ = import_into(
        args.data_dir or Path(tempfile.mkdtemp(prefix="coverbot-topics-")), ARTICLES
    )
    print(
        f"table {args.table.name}: {len(rows)} topics, "
        f"{sum(len(r.expected) for r in rows)} expected topic-article pairs, "
        f"{index.stats(with_vectors=False).articles} articles"
    )
    negatives_index = negatives_urls = absent = None
    if args.negatives:
        negatives_index, negatives_urls = import_into(
            args.negatives_data_dir or Path(tempfile.mkdtemp(prefix="coverbot-negatives-")),
            args.negatives,
        )
        absent = [r.topic for r in load_table(args.absent)]
        print(f"absent topics ({args.absent.name}): {', '.join(absent)}")

    default = TopicSettings()
    modes = {"relative": default, "raw cosine": replace(default, baseline_passages=0)}
    chosen: dict[str, float] = {}
    for mode, settings in modes.items():
        sweep = SWEEPS[mode]
        scored = score_all(index, rows, settings)
        negatives = None
        if negatives_index and negatives_urls and absent:
            negatives = score_negatives(negatives_index, absent, negatives_urls, settings)
        print(f"\n{mode} scores, words_span {settings.words_span}:")
        print_sweep(rows, scored, sweep, negatives)
        folds, held_out = leave_one_topic_out(rows, scored, sweep)
        table_choice = round(statistics.median(folds), 2)
        print(
            f"  table: leave-one-topic-out thresholds min {min(folds):.2f}, median "
            f"{table_choice:.2f}, max {max(folds):.2f}; held out: {held_out.line()}"
        )
        chosen[mode] = table_choice
        if negatives:
            # Each absent topic left out in turn, so no one of them sets the threshold either.
            lowest = [
                negatives.lowest_within(args.budget, sweep, skip)
                for skip in range(len(negatives.scored))
            ]
            budget_choice = round(statistics.median(lowest), 2)
            print(
                f"  negatives: {negatives.articles} articles, {negatives.by_words} false matches "
                f"by words; lowest threshold within {args.budget:g} false/1000: "
                f"{negatives.lowest_within(args.budget, sweep):.2f} (one absent topic left out: "
                f"min {min(lowest):.2f}, median {budget_choice:.2f}, max {max(lowest):.2f})"
            )
            chosen[mode] = max(table_choice, budget_choice)
        at = total(rows, [s.combined(chosen[mode]) for s in scored])
        rate = f"; false/1000 {negatives.rate(chosen[mode]):.2f}" if negatives else ""
        print(f"  chosen {chosen[mode]:.2f}: table words + meaning {at.line()}{rate}")

    threshold = chosen["relative"]
    relative = replace(default, meaning_threshold=threshold)
    print(f"\nby words_span, at meaning_threshold {threshold:.2f}:")
    best_span: tuple[float, int | None] = (-1.0, None)
    for span in SPANS:
        scored = score_all(index, rows, replace(relative, words_span=span))
        words = total(rows, [s.words for s in scored])
        both = total(rows, [s.combined(threshold) for s in scored])
        print(f"  span {span!s:>4}: words {words.line():42} | both {both.line()}")
        if words.f1 >= best_span[0]:
            best_span = (words.f1, span)
    print(f"  best words-only F1 (the wider span of equals): {best_span[1]}")

    print_topics(rows, score_all(index, rows, default), threshold)

    # The real call with the chosen threshold must agree with the sweep; it also shows the cost.
    topics = [r.topic for r in rows]
    articles = index.arrivals(EPOCH)
    t0 = time.perf_counter()
    index.embedder.encode(topics)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = match_topics(index, topics, articles, relative)
    seconds = time.perf_counter() - t0
    real = total(rows, [{m.url for m in found[t]} for t in topics])
    print(
        f"\nchosen meaning_threshold = {threshold:.2f} (TopicSettings default: "
        f"{default.meaning_threshold:.2f}); match_topics with it: {real.line()}"
    )
    print(
        f"{len(topics)} topics x {len(articles)} articles: {seconds:.2f} s, of which "
        f"encoding the topics ~{encode_s:.2f} s"
    )


if __name__ == "__main__":
    main()
