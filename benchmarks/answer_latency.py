"""Answer latency: the full `ask` pipeline per question against raw single-query encoding.

    python benchmarks/answer_latency.py --source /tmp/bbc-bench2 [--sizes 10000 100000]
        [--rounds 3] [--encoder onnx|torch] [--work-dir DIR]

For each index size (built once by `_common.prepare_index` and cached under --work-dir), every
question of benchmarks/questions/bbc.jsonl is timed in the same process, in alternating
blocks of BLOCK questions per kind of call, as

- raw: sentence-transformers `model.encode([question])`, normalised (the baseline);
- ask: `CoverageIndex.ask(question)`, the whole pipeline the bot runs per question;
- ask-hand: the same with the hand-weighted excerpt choice (`excerpt_mode = "window"`), on the
  same index in the same blocks: what the learned excerpt ranker costs;
- and its stages, each timed alone: encode (`Embedder.encode_query`, with the index's
  encoder: ONNX Runtime by default, or torch with --encoder torch), dense (the Chroma query),
  lexical (tokenize, BM25 scores, top k), search (`CoverageIndex.search` given the vector:
  dense + lexical + fusion + passage and article reads), sentences (`CoverageIndex.ranking`:
  the quoted articles' sentence vectors read from the store), answer (`build_answer`:
  confidence and excerpts, the learned ranker's features and scores included).

Prints p50/p95 in milliseconds and each p50 as a ratio of the raw encode's p50 and of the
pipeline's own encode p50, so the figures stay comparable when other processes load the
machine. Figures, never pass/fail; the target of issue 6 is ask p50 <= 1.3x raw at 100k.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from _common import add_index_options, load_questions, p50_p95, prepare_index, size_label, table

from index.answer import build_answer
from index.coverage import CoverageIndex, IndexSettings
from index.lexical import tokenize

T = TypeVar("T")
# Questions per block. Each kind of call runs in blocks of its own, so that each sees the
# steady state of a process doing only that (torch's and ONNX Runtime's worker threads slow
# each other down when one library runs right after the other: raw encodes right after an
# ONNX encode took 72 ms against 34 ms alone); blocks alternate, so they share the load.
BLOCK = 15
STAGES = ("raw", "ask", "ask-hand", "encode", "dense", "lexical", "search", "sentences", "answer")


class Timer:
    """Seconds per call, by stage name."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)

    def __call__(self, name: str, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        result = fn()
        self.times[name].append(time.perf_counter() - t0)
        return result


def measure(
    index: CoverageIndex, hand: CoverageIndex, questions: list[str], rounds: int
) -> dict[str, list[float]]:
    """Seconds per question for the raw encode, the full ask (learned excerpts, and
    hand-weighted ones on the same index: `hand`) and each stage."""
    model = index.embedder.model
    retrieval, answer = index.settings.retrieval, index.settings.answer
    lexical = index.lexical
    timed = Timer()

    def raw(question: str) -> object:
        return model.encode(
            [question], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def stages(q: str) -> None:
        vector = timed("encode", lambda: index.embedder.encode_query(q))
        timed("dense", lambda: index.vectors.query(vector, retrieval.dense_k))
        timed("lexical", lambda: lexical.top(lexical.scores(tokenize(q)), retrieval.lexical_k))
        terms, hits = timed("search", lambda: index.search(q, vector, lexical))
        ranking = timed("sentences", lambda: index.ranking(vector, hits))
        timed("answer", lambda: build_answer(q, hits, terms, lexical, answer, ranking))

    def blocks(chunk: list[str], raw_first: bool) -> None:
        raw_block: list[tuple[str, Callable[[], object]]] = [
            ("raw", partial(raw, q)) for q in chunk
        ]
        ask_block: list[tuple[str, Callable[[], object]]] = []
        for name, system in (("ask", index), ("ask-hand", hand)):
            ask_block += [(name, partial(system.ask, q)) for q in chunk]
        for name, fn in raw_block + ask_block if raw_first else ask_block + raw_block:
            timed(name, fn)
        for q in chunk:
            stages(q)

    rng = random.Random(1)
    for _ in range(rounds):
        order = list(questions)
        rng.shuffle(order)
        for i in range(0, len(order), BLOCK):
            blocks(order[i : i + BLOCK], raw_first=(i // BLOCK) % 2 == 0)
    return timed.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_index_options(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions")
    parser.add_argument(
        "--encoder", choices=["onnx", "torch"], default=None, help="default: the index's default"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    questions = load_questions()
    print(
        f"{len(questions)} questions x {args.rounds} rounds; load average at start "
        f"{os.getloadavg()[0]:.2f}"
    )
    for size in args.sizes:
        bench = prepare_index(size, args.work_dir, args.source, args.corpus)
        settings = IndexSettings(encoder=args.encoder) if args.encoder else None
        index = CoverageIndex(bench.data_dir, settings)
        base = index.settings
        hand = CoverageIndex(
            bench.data_dir,
            dataclasses.replace(
                base, answer=dataclasses.replace(base.answer, excerpt_mode="window")
            ),
            embedder=index.embedder,
        )
        for question in questions[:20]:  # load the model, Chroma, BM25; warm the caches
            index.ask(question)
            hand.ask(question)
        times = measure(index, hand, questions, args.rounds)
        raw_p50, encode_p50 = p50_p95(times["raw"])[0], p50_p95(times["encode"])[0]
        rows = []
        for name in STAGES:
            p50, p95 = p50_p95(times[name])
            rows.append(
                [
                    name,
                    f"{p50 * 1000:.1f}",
                    f"{p95 * 1000:.1f}",
                    f"{p50 / raw_p50:.2f}x",
                    f"{p50 / encode_p50:.2f}x",
                ]
            )
        print(f"\n{size_label(size)} passages: {bench.describe()}")
        print(f"encoder: {index.embedder.encoder}; raw = sentence-transformers (torch)")
        print(table(["stage", "p50 ms", "p95 ms", "p50 / raw p50", "p50 / encode p50"], rows))
        hand.close()
        index.close()


if __name__ == "__main__":
    main()
