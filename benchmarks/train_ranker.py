"""Fit the excerpt ranker (index/excerpts.py) and write index/ranker.json: the recipe.

    python benchmarks/train_ranker.py --data-dir INDEX \\
        --questions benchmarks/questions/bbc.jsonl --questions benchmarks/questions/pool.jsonl \\
        --questions benchmarks/questions/train.jsonl [--out index/ranker.json] [--check]

INDEX is a coverbot data dir (schema 3: with sentence vectors) holding the questions'
articles, e.g. the evaluation pool (seed + BBC + VOA) of benchmarks/README.md. Every
answerable question whose split is "dev" or "train" becomes one list: the sentences of its
gold article, labelled 1 where a sentence overlaps one of the question's `any_of` phrases.
Test questions are never read. The model is a linear listwise softmax over FEATURES, fitted
by full-batch gradient descent from zero: the same index and questions give the same
weights (`--check` refits and compares with the shipped file instead of writing it).

Prints, per fold of a 5-fold cross-validation grouped by article: the share of lists whose
best sentence answers, and whose excerpt (best sentence and neighbours) holds the answer,
against the question-sentence similarity alone and the question's IDF share alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.coverage import CoverageIndex, IndexSettings
from index.evaluation import Question, load_questions
from index.excerpts import (
    FEATURES,
    MODEL_PATH,
    ArticleSentences,
    RankerModel,
    features,
    softmax_fit,
    term_weights,
    window_around,
)
from index.lexical import tokenize

TRAIN_SPLITS = ("dev", "train")
L2, STEPS, RATE = 0.01, 400, 0.1
EXCERPT_CHARS, MAX_SENTENCES = 400, 3  # AnswerSettings' defaults


@dataclass
class TrainingList:
    question: Question
    article: ArticleSentences
    features: np.ndarray
    labels: np.ndarray
    phrases: tuple[str, ...]


def answering(article: ArticleSentences, phrases: tuple[str, ...]) -> np.ndarray:
    """1 for each sentence that overlaps an occurrence of one of the phrases."""
    spans = []
    for phrase in phrases:
        at = article.body.find(phrase)
        while at >= 0:
            spans.append((at, at + len(phrase)))
            at = article.body.find(phrase, at + 1)
    return np.asarray(
        [any(s.start < b and a < s.end for a, b in spans) for s in article.spans], np.float64
    )


def build_lists(index: CoverageIndex, questions: list[Question]) -> tuple[list[TrainingList], int]:
    """One list per usable question; also the count of questions skipped."""
    by_url = {}
    for key, stored in index.store.get_many(index.store.all_article_keys()).items():
        by_url[stored.article.url] = (key, stored.article.body)
    vectors = index.embedder.encode([q.question for q in questions])
    found = index.store.sentence_vectors(by_url[q.url][0] for q in questions if q.url in by_url)
    lists, skipped = [], 0
    for q, qv in zip(questions, vectors, strict=True):
        if q.url not in by_url or by_url[q.url][0] not in found:
            skipped += 1
            continue
        key, body = by_url[q.url]
        spans, sentence_vectors = found[key]
        article = ArticleSentences.of(body, spans, sentence_vectors)
        labels = answering(article, q.any_of)
        if not labels.any():
            skipped += 1
            continue
        weights = term_weights(tokenize(q.question), index.lexical)
        x = features(q.question, qv, weights, article)
        lists.append(TrainingList(q, article, x, labels, q.any_of))
    return lists, skipped


def fit(lists: list[TrainingList], meta: dict) -> RankerModel:
    mean, std, w = softmax_fit([(t.features, t.labels) for t in lists], L2, STEPS, RATE)
    return RankerModel(mean.astype(np.float32), std.astype(np.float32), w.astype(np.float32), meta)


def hits(model: RankerModel, lists: list[TrainingList]) -> tuple[float, float]:
    """Shares of lists whose best sentence answers, and whose excerpt holds a phrase."""
    sentence = excerpt = 0
    for t in lists:
        scores = model.scores(t.features)
        best = int(np.argmax(scores))  # ties: the first, as index.excerpts.pick
        sentence += int(t.labels[best] > 0)
        span = window_around(t.article, best, scores, EXCERPT_CHARS, MAX_SENTENCES)
        excerpt += any(p in t.article.body[span.start : span.end] for p in t.phrases)
    return sentence / max(len(lists), 1), excerpt / max(len(lists), 1)


def single_feature(lists: list[TrainingList], column: str) -> float:
    i = FEATURES.index(column)
    return float(np.mean([t.labels[int(np.argmax(t.features[:, i]))] > 0 for t in lists]))


def cross_validate(lists: list[TrainingList], folds: int = 5) -> list[tuple[int, float, float]]:
    """Folds grouped by article: no article's questions are both fitted and scored."""
    articles = sorted({t.question.url or "" for t in lists})
    random.Random(0).shuffle(articles)
    fold_of = {a: i % folds for i, a in enumerate(articles)}
    out = []
    for k in range(folds):
        train = [t for t in lists if fold_of[t.question.url or ""] != k]
        held = [t for t in lists if fold_of[t.question.url or ""] == k]
        out.append((len(held), *hits(fit(train, {}), held)))
    return out


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--questions", type=Path, action="append", required=True)
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--check", action="store_true", help="refit and compare with --out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    questions = [
        q
        for path in args.questions
        for q in load_questions(path)
        if q.url and q.split in TRAIN_SPLITS
    ]
    index = CoverageIndex(args.data_dir, IndexSettings())
    lists, skipped = build_lists(index, questions)
    t_lists = time.perf_counter() - t0
    print(
        f"{len(lists)} lists ({sum(len(t.labels) for t in lists)} sentences) from "
        f"{len(questions)} dev/train questions; {skipped} skipped (article or vectors missing)"
    )
    print(
        f"similarity alone: best sentence answers {100 * single_feature(lists, 'similarity'):.1f}%;"
        f" IDF share alone: {100 * single_feature(lists, 'coverage'):.1f}%"
    )
    rows = cross_validate(lists)
    n = sum(r[0] for r in rows)
    for k, (m, s, e) in enumerate(rows):
        print(
            f"fold {k}: {m} lists, best sentence answers {100 * s:.1f}%, "
            f"excerpt holds it {100 * e:.1f}%"
        )
    print(
        "5-fold CV (grouped by article): best sentence "
        f"{100 * sum(r[0] * r[1] for r in rows) / n:.1f}%, "
        f"excerpt {100 * sum(r[0] * r[2] for r in rows) / n:.1f}%"
    )
    t1 = time.perf_counter()
    meta = {
        "recipe": "python benchmarks/train_ranker.py --data-dir INDEX "
        + " ".join(f"--questions {p.as_posix()}" for p in args.questions),
        "questions": {p.name: digest(p) for p in args.questions},
        "splits": list(TRAIN_SPLITS),
        "lists": len(lists),
        "l2": L2,
        "steps": STEPS,
        "rate": RATE,
    }
    model = fit(lists, meta)
    fit_seconds = time.perf_counter() - t1
    s, e = hits(model, lists)
    print(
        f"fitted on all {len(lists)} lists in {fit_seconds:.1f} s "
        f"(lists built in {t_lists:.1f} s): "
        f"training best sentence {100 * s:.1f}%, excerpt {100 * e:.1f}%"
    )
    for name, w in zip(FEATURES, model.weights, strict=True):
        print(f"  {name:18s} {w:+.3f}")
    data = model.to_json()
    if args.check:
        shipped = json.loads(args.out.read_text(encoding="utf-8"))
        diff = max(abs(a - b) for a, b in zip(shipped["weights"], data["weights"], strict=True))
        print(f"largest weight difference from {args.out}: {diff:.2e}")
        return 0 if diff < 1e-4 else 1
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
