"""Import the seed article and the BBC corpus, re-import, ask, and evaluate; print figures.

    python benchmarks/bbc_import_eval.py [--data-dir DIR] [--shared ../shared]

Prints import wall time, passages and passages/s; the second (unchanged) import as a ratio
of the first; raw encode throughput of the same passages in the same process (the baseline
for import speed); the Witkoff answer; and the evaluation table (coverbot, BM25 alone, dense
alone) on the BBC question set. Figures, never pass/fail. The corpora are read from
../shared and never copied.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from index.articles import Article
from index.coverage import CoverageIndex
from index.importers import read_paths
from index.passages import embed_text, make_passages

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument(
        "--raw-sample",
        type=int,
        default=2000,
        help="passages encoded raw for the throughput baseline",
    )
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="coverbot-bbc-"))
    seed = args.shared / "seed" / "daysofpalestine-61125.json"
    bbc = args.shared / "corpus" / "bbc-news" / "articles.jsonl"
    articles = [a for a in read_paths([seed, bbc]) if isinstance(a, Article)]

    index = CoverageIndex(data_dir)
    t0 = time.perf_counter()
    first = index.import_articles(articles)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = index.import_articles(articles)
    second_s = time.perf_counter() - t0

    texts = [
        embed_text(a.title, p.text(a.body))
        for a in articles
        for p in make_passages(a.key, a.title, a.body, index.settings.passage_chars)
    ]
    sample = texts[: args.raw_sample]
    t0 = time.perf_counter()
    index.embedder.encode(sample)
    raw_rate = len(sample) / (time.perf_counter() - t0)

    print(f"data dir: {data_dir}")
    print(f"articles: {len(articles)}  passages: {first.passages_embedded}")
    print(
        f"first import: {first_s:.1f} s, {first.passages_embedded / first_s:.1f} passages/s "
        f"({first.summary()})"
    )
    print(
        f"raw encode of {len(sample)} of the same passages: {raw_rate:.1f} passages/s; "
        f"import/raw = {first.passages_embedded / first_s / raw_rate:.2f}"
    )
    print(
        f"second import: {second_s:.2f} s, embedded {second.passages_embedded}; "
        f"ratio to first = {second_s / first_s:.4f}"
    )
    answer = index.ask("What did Witkoff urge?")
    print("ask 'What did Witkoff urge?':", json.dumps(answer.to_dict()["excerpts"][:1], indent=1))
    for split in ("dev", "test", "all"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "--data-dir",
                str(data_dir),
                "eval",
                "--questions",
                str(ROOT / "benchmarks" / "questions" / "bbc.jsonl"),
                "--baselines",
                "--split",
                split,
            ],
            check=True,
        )


if __name__ == "__main__":
    main()
