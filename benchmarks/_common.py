"""Shared by the speed benchmarks: indexes of a chosen size, the questions, percentiles, tables.

    python benchmarks/_common.py --source /tmp/bbc-bench2 --sizes 10000 100000

builds (or finds, cached under --work-dir) the benchmark indexes and prints how realistic their
vectors are. The scripts `answer_latency.py`, `cold_start.py` and `bot_throughput.py` call the
same `prepare_index` with the same options.

Where the passages come from. Encoding runs at ~30 passages/s (torch) on the benchmark
machine, so 100k really encoded passages would take an hour. A benchmark index is therefore
built from a real coverbot index (`--source`, a data dir; built from `--corpus` first when it
holds no index), copied and never modified:

- up to the source's size, whole real articles with their real passages and real vectors;
- beyond it, derived articles. A derived article takes a real article A and a real article B
  of the same category; paragraph j is the first half of the sentences of A's passage j
  followed by the second half of B's passage j (cycling through B). Its title is A's title.
  Its passages are cut by the real passage code. A passage's vector mixes, by characters,
  the real vectors of the passages its sentences came from, plus as much again of A's
  centroid (the headline is part of every embedded passage), normalised; then a perturbation
  of PERTURB times a random real vector of the same category is added and it is normalised
  again, so no two vectors coincide and derived vectors sit about as far from their nearest
  real neighbour as real encodings of the same texts do (without the perturbation they sat
  closer: 0.87 against 0.82 on 3,000 derived passages).

Checks stored with each built index and printed: HNSW recall@10 against exact search for the
encoded benchmark questions; for a sample of derived passages encoded with the model, the
cosine between derived vectors and the real encodings of their texts, and the similarity of
each to its nearest real passage.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index import layout
from index.articles import Article
from index.coverage import CoverageIndex
from index.importers import read_paths
from index.passages import Passage, embed_text, make_passages
from index.store import StoredArticle

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "benchmarks" / "questions" / "bbc.jsonl"
DEFAULT_WORK_DIR = Path(tempfile.gettempdir()) / "coverbot-bench"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "bbc-news" / "articles.jsonl"
# Bump when the way benchmark indexes are built changes, so cached ones are rebuilt.
BUILD_FORMAT = 2  # 2: sentence vectors (schema 3)
# Weight of the random real vector added to a derived vector's mixture (see the docstring).
PERTURB = 0.35
SEED = 7
_WRITE_ARTICLES = 256
_CHECK_SAMPLE = 200

log = logging.getLogger("benchmarks")


@dataclass(frozen=True, slots=True)
class BenchIndex:
    """A built benchmark index and what it holds."""

    data_dir: Path
    target: int
    passages: int
    articles: int
    real_passages: int
    derived_passages: int
    build_seconds: float
    recall_at_10: float
    derived_cosine_mean: float | None
    derived_cosine_p5: float | None
    derived_nearest_real: float | None
    encoded_nearest_real: float | None

    def describe(self) -> str:
        """One line for the benchmark's header."""
        derived = (
            f"; derived vectors: cosine to the real encoding of their text "
            f"{self.derived_cosine_mean:.3f} (p5 {self.derived_cosine_p5:.3f}), similarity to "
            f"the nearest real passage {self.derived_nearest_real:.3f} (real encodings "
            f"{self.encoded_nearest_real:.3f})"
            if self.derived_cosine_mean is not None
            else ""
        )
        return (
            f"{self.passages:,} passages ({self.real_passages:,} real, "
            f"{self.derived_passages:,} derived) in {self.articles:,} articles; "
            f"HNSW recall@10 vs exact {self.recall_at_10:.3f}{derived}"
        )


# -- questions, percentiles, tables ---------------------------------------------------


def load_questions(path: Path = QUESTIONS) -> list[str]:
    """The question texts of a JSONL question set."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh if line.strip()]


def p50_p95(values: Sequence[float]) -> tuple[float, float]:
    """Median and 95th percentile (linear interpolation)."""
    arr = np.asarray(values, dtype=np.float64)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table, ready to paste into BENCHMARKS.md."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def size_label(size: int) -> str:
    """10000 -> '10k'."""
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def add_index_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark needs to find or build its indexes."""
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help=f"where built indexes are cached (default {DEFAULT_WORK_DIR})",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="a coverbot data dir with real passages and vectors, read and never modified "
        "(default: WORK_DIR/source, built from --corpus when absent)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="articles to encode when the source holds no index (slow: ~30 passages/s)",
    )


# -- the source: real articles, passages and vectors ------------------------------------


@dataclass(frozen=True, slots=True)
class RealArticle:
    """A source article with its passages and their vectors (rows of `SourceData.vectors`)."""

    stored: StoredArticle
    passages: tuple[Passage, ...]
    rows: tuple[int, ...]
    # Each passage's sentence vectors, as the source stored them.
    sentences: tuple[np.ndarray, ...]

    @property
    def category(self) -> str:
        art = self.stored.article
        return art.category or art.url.rstrip("/").rsplit("/", 2)[-2]


@dataclass(frozen=True, slots=True)
class SourceData:
    """Everything read from the source index."""

    articles: list[RealArticle]
    vectors: np.ndarray
    fingerprint: str
    # The encoder of the source's vectors (indexes that do not record it were built with torch).
    encoder: str


def _source_dir(source: Path | None, work_dir: Path, corpus: Path) -> Path:
    """A private copy of the source index, built from the corpus when there is none."""
    if source is None:
        source = work_dir / "source"
    generation = layout.serving_generation(source)
    if generation is None or not (source / generation).is_dir():
        if not corpus.is_file():
            sys.exit(f"no index in {source} and no corpus at {corpus}")
        log.warning("encoding %s into %s (slow: ~30 passages/s)", corpus, source)
        articles = [a for a in read_paths([corpus]) if isinstance(a, Article)]
        built = CoverageIndex(source)
        print(built.import_articles(articles).summary(), file=sys.stderr)
        built.close()
        generation = layout.serving_generation(source)
        assert generation is not None
    copy = work_dir / "source-copy"
    marker = copy / "COPIED_FROM"
    origin = f"{source.resolve()}/{generation}"
    if not (marker.is_file() and marker.read_text() == origin):
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir(parents=True)
        shutil.copytree(source / generation, copy / generation)
        layout.switch_to(copy, generation)
        marker.write_text(origin)
    return copy


def read_source(source: Path | None, work_dir: Path, corpus: Path) -> SourceData:
    """Real articles, passages and vectors of the source index (from a private copy)."""
    index = CoverageIndex(_source_dir(source, work_dir, corpus))
    articles: list[RealArticle] = []
    chunks: list[np.ndarray] = []
    row = 0
    batch: list[tuple[StoredArticle, list[Passage]]] = []

    def flush() -> None:
        nonlocal row
        ids = [p.id for _, passages in batch for p in passages]
        found = index.vectors.get_vectors(ids)
        sentence_vectors = index.store.passage_sentence_vectors(ids)
        for stored, passages in batch:
            kept = [p for p in passages if p.id in found and p.id in sentence_vectors]
            if not kept:
                continue
            chunks.append(np.vstack([found[p.id] for p in kept]))
            rows = tuple(range(row, row + len(kept)))
            row += len(kept)
            sentences = tuple(sentence_vectors[p.id] for p in kept)
            articles.append(RealArticle(stored, tuple(kept), rows, sentences))
        batch.clear()

    for stored in index.store.iter_articles():
        batch.append((stored, index.store.article_passages(stored.key)))
        if len(batch) >= _WRITE_ARTICLES:
            flush()
    if batch:
        flush()
    fingerprint = f"{index.generation}/rev{index.store.revision}/{row}"
    encoder = index.store.get_meta("encoder") or "torch"
    index.close()
    return SourceData(articles, np.vstack(chunks).astype(np.float32), fingerprint, encoder)


# -- derived articles -------------------------------------------------------------------


def _sentences(art: RealArticle, passage: Passage) -> list[str]:
    body = art.stored.article.body
    return [body[s.start : s.end] for s in passage.sentences]


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def derive_article(
    number: int,
    a: RealArticle,
    b: RealArticle,
    src: SourceData,
    perturb_rows: np.ndarray,
) -> tuple[Article, list[Passage], np.ndarray, dict[str, np.ndarray]]:
    """A derived article from real articles `a` and `b`, its passages, their vectors and
    their sentences' vectors;
    `perturb_rows` are rows of real vectors to perturb them with, one per passage at least."""
    paragraphs: list[list[tuple[str, int]]] = []  # (sentence, row of its source vector)
    for j, pa in enumerate(a.passages):
        k = j % len(b.passages)
        pb = b.passages[k]
        sa, sb = _sentences(a, pa), _sentences(b, pb)
        paragraphs.append(
            [(s, a.rows[j]) for s in sa[: (len(sa) + 1) // 2]]
            + [(s, b.rows[k]) for s in sb[len(sb) // 2 :]]
        )
    body_parts: list[str] = []
    spans: list[tuple[int, int, int]] = []  # (start, end, source row) of each sentence
    pos = 0
    for p_index, paragraph in enumerate(paragraphs):
        if p_index:
            body_parts.append("\n\n")
            pos += 2
        for s_index, (sentence, source_row) in enumerate(paragraph):
            if s_index:
                body_parts.append(" ")
                pos += 1
            body_parts.append(sentence)
            spans.append((pos, pos + len(sentence), source_row))
            pos += len(sentence)
    real = a.stored.article
    article = Article(
        url=f"{real.url.rstrip('/')}/derived-{number}",
        title=real.title,
        body="".join(body_parts),
        published_at=real.published_at,
        category=real.category,
        id=f"derived-{number}",
    )
    passages = make_passages(article.key, article.title, article.body, 400)
    centroid = _unit(src.vectors[list(a.rows)].mean(axis=0))
    vectors = np.zeros((len(passages), src.vectors.shape[1]), dtype=np.float32)
    for i, passage in enumerate(passages):
        vectors[i] = (passage.end - passage.start) * centroid
        for start, end, source_row in spans:
            overlap = min(end, passage.end) - max(start, passage.start)
            if overlap > 0:
                vectors[i] += overlap * src.vectors[source_row]
    vectors = _unit(_unit(vectors) + PERTURB * src.vectors[np.resize(perturb_rows, len(passages))])
    # Sentence vectors: each sentence's source passage vector, perturbed the same way (their
    # values only feed the excerpt ranker's dot products; their count is what costs time).
    sentences = {}
    for i, passage in enumerate(passages):
        rows = [next(r for st, en, r in spans if st <= s.start < en) for s in passage.sentences]
        noise = src.vectors[np.resize(np.roll(perturb_rows, i + 1), len(rows))]
        sentences[passage.id] = _unit(_unit(src.vectors[rows]) + PERTURB * noise).astype(np.float32)
    return article, passages, vectors.astype(np.float32), sentences


def _plan(
    src: SourceData, target: int, seed: int
) -> Iterator[tuple[Article, list[Passage], np.ndarray, dict[str, np.ndarray], bool]]:
    """Articles for an index of at least `target` passages: real ones first, then derived."""
    order = list(src.articles)
    random.Random(seed).shuffle(order)
    total = 0
    for art in order:
        if total >= target:
            return
        rows = np.asarray(art.rows)
        sentences = {p.id: v for p, v in zip(art.passages, art.sentences, strict=True)}
        yield art.stored.article, list(art.passages), src.vectors[rows], sentences, True
        total += len(art.passages)
    by_category: dict[str, list[RealArticle]] = defaultdict(list)
    for art in order:
        by_category[art.category].append(art)
    category_rows = {
        name: np.asarray([row for art in arts for row in art.rows])
        for name, arts in by_category.items()
    }
    pick = random.Random(seed + 1)
    rng = np.random.default_rng(seed)
    number = 0
    while total < target:
        a = order[number % len(order)]
        peers = by_category[a.category]
        b = pick.choice(peers) if len(peers) > 1 else pick.choice(order)
        while b is a:
            b = pick.choice(order)
        # More rows than the passages A yields: long paragraphs can split into two passages.
        rows = rng.choice(category_rows[a.category], 2 * len(a.passages) + 2)
        article, passages, vectors, sentences = derive_article(number, a, b, src, rows)
        number += 1
        yield article, passages, vectors, sentences, False
        total += len(passages)


# -- building and caching -------------------------------------------------------------


def prepare_index(
    target: int,
    work_dir: Path,
    source: Path | None = None,
    corpus: Path = DEFAULT_CORPUS,
    seed: int = SEED,
) -> BenchIndex:
    """The benchmark index of about `target` passages under `work_dir`, built once."""
    data_dir = work_dir / f"index-{size_label(target)}"
    marker = data_dir / "bench.json"
    if marker.is_file():
        meta = json.loads(marker.read_text())
        if meta.pop("format", None) == BUILD_FORMAT and meta.pop("seed", None) == seed:
            meta.pop("source", None)
            return BenchIndex(data_dir=data_dir, **meta)
    src = read_source(source, work_dir, corpus)
    shutil.rmtree(data_dir, ignore_errors=True)
    t0 = time.perf_counter()
    index = CoverageIndex(data_dir)
    index.store.set_meta("encoder", src.encoder)  # its vectors are the source's
    all_vectors: list[np.ndarray] = []
    all_ids: list[str] = []
    derived: list[tuple[Article, Passage, np.ndarray]] = []
    counts = {"articles": 0, "real": 0, "derived": 0}
    batch: list[tuple[Article, list[Passage], np.ndarray, dict[str, np.ndarray]]] = []

    def write() -> None:
        ids = [p.id for _, passages, _, _ in batch for p in passages]
        vectors = np.vstack([v for _, _, v, _ in batch])
        index.vectors.upsert(ids, vectors)  # vectors first, as import_articles does
        sentences = {pid: v for _, _, _, per in batch for pid, v in per.items()}
        index.store.save_articles([(a, p) for a, p, _, _ in batch], sentences)
        all_vectors.append(vectors)
        all_ids.extend(ids)
        batch.clear()

    for article, passages, vectors, sentences, is_real in _plan(src, target, seed):
        batch.append((article, passages, vectors, sentences))
        counts["articles"] += 1
        counts["real" if is_real else "derived"] += len(passages)
        if not is_real and len(derived) < _CHECK_SAMPLE * 20:
            derived.extend(zip([article] * len(passages), passages, vectors, strict=True))
        if len(batch) >= _WRITE_ARTICLES:
            write()
    if batch:
        write()
    index.lexical  # noqa: B018 - build and save BM25 now, not at the first question
    build_seconds = time.perf_counter() - t0
    recall = hnsw_recall(index, all_ids, np.vstack(all_vectors))
    checks = _derived_checks(index, derived, src.vectors, seed)
    index.close()
    bench = BenchIndex(
        data_dir=data_dir,
        target=target,
        passages=counts["real"] + counts["derived"],
        articles=counts["articles"],
        real_passages=counts["real"],
        derived_passages=counts["derived"],
        build_seconds=round(build_seconds, 1),
        recall_at_10=round(recall, 4),
        **checks,
    )
    meta = asdict(bench) | {"format": BUILD_FORMAT, "seed": seed, "source": src.fingerprint}
    meta.pop("data_dir")
    marker.write_text(json.dumps(meta, indent=1))
    return bench


def hnsw_recall(
    index: CoverageIndex, ids: Sequence[str], vectors: np.ndarray, k: int = 10
) -> float:
    """Mean share of the exact top-k (brute force over `vectors`, the rows of `ids`) that
    Chroma's HNSW returns, for the encoded benchmark questions."""
    queries = index.embedder.encode(load_questions())
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    found = []
    for query, top in zip(queries, exact, strict=True):
        want = {ids[i] for i in top}
        got = {h.passage_id for h in index.vectors.query(query, k)}
        found.append(len(want & got) / k)
    return float(np.mean(found))


def _derived_checks(
    index: CoverageIndex,
    derived: list[tuple[Article, Passage, np.ndarray]],
    real: np.ndarray,
    seed: int,
) -> dict[str, float | None]:
    """How derived vectors compare with the model's encodings of the same texts."""
    names = (
        "derived_cosine_mean",
        "derived_cosine_p5",
        "derived_nearest_real",
        "encoded_nearest_real",
    )
    if not derived:
        return dict.fromkeys(names)
    sample = random.Random(seed).sample(derived, min(_CHECK_SAMPLE, len(derived)))
    vectors = np.vstack([v for _, _, v in sample])
    encoded = index.embedder.encode([embed_text(a.title, p.text(a.body)) for a, p, _ in sample])
    cosines = np.sum(vectors * encoded, axis=1)
    values = (
        statistics.fmean(cosines),
        np.percentile(cosines, 5),
        np.max(vectors @ real.T, axis=1).mean(),
        np.max(encoded @ real.T, axis=1).mean(),
    )
    return {name: round(float(v), 4) for name, v in zip(names, values, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_index_options(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for size in args.sizes:
        bench = prepare_index(size, args.work_dir, args.source, args.corpus)
        print(f"{size_label(size)}: {bench.data_dir}: {bench.describe()}")


if __name__ == "__main__":
    main()
