"""Import throughput per encoder against raw sentence-transformers encode, in one run.

    python benchmarks/import_throughput.py [--articles 300] [--encoders torch,onnx]

Imports the first N BBC articles into a fresh index per encoder (the model loaded and warm
beforehand, so the figure is the import itself: passages, encode, Chroma, SQLite), then
encodes the very same passage texts with sentence-transformers `encode` (fp32 torch, one
call, its own length sorting), before and after the imports, since other work on the
machine moves the figures. Prints passages/s and each import's ratio to the mean raw
rate, and passages per CPU-second of this process, which moves less when other processes
share the cores (ONNX Runtime's thread pool copes with a busy machine better than torch's
OpenMP, so wall-clock ratios there overstate the gain on an idle one). Figures, never
pass/fail. The corpus is read from ../shared and never copied.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from index.articles import Article
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import ENCODERS, Embedder
from index.importers import read_paths
from index.passages import embed_text, make_passages

ROOT = Path(__file__).resolve().parent.parent


def passage_texts(articles: list[Article], passage_chars: int) -> list[str]:
    """The texts an import embeds for these articles."""
    return [
        embed_text(a.title, p.text(a.body))
        for a in articles
        for p in make_passages(a.key, a.title, a.body, passage_chars)
    ]


class Rate(NamedTuple):
    """Passages per wall-clock second and per CPU-second of this process."""

    wall: float
    cpu: float


def raw_rate(embedder: Embedder, texts: list[str]) -> Rate:
    """Plain sentence-transformers encode (the baseline)."""
    t0, c0 = time.perf_counter(), time.process_time()
    embedder.model.encode(
        texts,
        batch_size=embedder.batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return Rate(len(texts) / (time.perf_counter() - t0), len(texts) / (time.process_time() - c0))


def import_rate(encoder: str, articles: list[Article], work: Path) -> tuple[Rate, int]:
    """A real import into a fresh index with this encoder, the model already warm."""
    embedder = Embedder(encoder=encoder)
    embedder.encode(["warm up"])
    index = CoverageIndex(work / encoder, IndexSettings(encoder=encoder), embedder=embedder)
    index.vectors.count()  # open Chroma before the clock starts, as a running bot has
    c0 = time.process_time()
    report = index.import_articles(articles)
    done = report.passages_embedded
    return Rate(done / report.seconds, done / (time.process_time() - c0)), done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=300, help="BBC articles imported")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = parser.parse_args()
    corpus = args.shared / "corpus" / "bbc-news" / "articles.jsonl"
    articles = [a for a in read_paths([corpus]) if isinstance(a, Article)][: args.articles]
    texts = passage_texts(articles, IndexSettings().passage_chars)
    torch = Embedder(encoder="torch")
    torch.encode(["warm up"])

    raw = [raw_rate(torch, texts)]
    imports: dict[str, tuple[Rate, int]] = {}
    with tempfile.TemporaryDirectory(prefix="coverbot-throughput-") as work:
        for encoder in args.encoders.split(","):
            imports[encoder] = import_rate(encoder, articles, Path(work))
    raw.append(raw_rate(torch, texts))
    wall = sum(r.wall for r in raw) / len(raw)
    cpu = sum(r.cpu for r in raw) / len(raw)

    print(f"articles: {len(articles)}  passages: {len(texts)}")
    print(
        f"raw sentence-transformers encode (fp32 torch): {raw[0].wall:.1f} passages/s before, "
        f"{raw[1].wall:.1f} after, mean {wall:.1f}; {cpu:.1f} passages per CPU-second"
    )
    for encoder, (rate, embedded) in imports.items():
        print(
            f"import with {encoder:>5}: {rate.wall:6.1f} passages/s, import/raw = "
            f"{rate.wall / wall:.2f}; {rate.cpu:5.1f} per CPU-second, import/raw = "
            f"{rate.cpu / cpu:.2f} ({embedded} embedded)"
        )


if __name__ == "__main__":
    main()
