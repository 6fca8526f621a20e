"""What the CLI commands share: logging, the index, imports with a progress bar, services."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from bot.config import Config
from bot.ops.privacy import protect_data_dir, redact_logs
from index import (
    Article,
    CoverageIndex,
    EncoderMismatch,
    ImportReport,
    Rejected,
    read_paths,
    serving_generation,
)

if TYPE_CHECKING:
    from tqdm import tqdm

    from bot.services import Services
    from bot.state import StateDB

T = TypeVar("T")
Progress = Callable[[int, int], None]


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Configure logging once, for the process, from the entry point; ``secrets`` (the bot
    token) and anything shaped like a bot token never reach the log, at any level."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact_logs(secrets)
    for noisy in ("httpx", "chromadb", "sentence_transformers", "bm25s", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def protect_files(config: Config) -> None:
    """The data dir (and a SQLite state database kept elsewhere) for the owner only: new
    files from now on, existing ones tightened."""
    others = []
    # As StateDB reads it; any other URL (a server, or one the command will reject) is not
    # a file of ours.
    if config.state_url.startswith("sqlite:///"):
        database = Path(config.state_url.removeprefix("sqlite:///").split("?")[0])
        others = [database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))]
    protect_data_dir(config.data_dir, *others)


def sample_path() -> Path:
    """The bundled sample coverage."""
    return Path(str(resources.files("index") / "sample" / "articles.jsonl"))


def open_index(config: Config) -> CoverageIndex:
    """The coverage index for a configuration (created on first use, for commands that
    write it)."""
    return CoverageIndex(config.data_dir, config.index_settings())


def open_serving_index(config: Config, *, with_articles: bool = False) -> CoverageIndex:
    """The index for commands that only read it. Refuses, creating nothing, when the data
    dir holds none (a mistyped --data-dir would otherwise answer from a new, empty index)
    and, with ``with_articles``, when it holds no article."""
    if serving_generation(config.data_dir) is None:
        raise click.ClickException(
            f"no index in {config.data_dir}: import articles first (coverbot import FILE), "
            "or check --data-dir / COVERBOT_DATA_DIR"
        )
    index = open_index(config)
    if with_articles and index.stats(with_vectors=False).articles == 0:
        raise click.ClickException(
            f"the index in {config.data_dir} holds no articles: import some first "
            "(coverbot import FILE)"
        )
    return index


def progress_bar(desc: str) -> tuple[tqdm[None], Progress]:
    """A progress bar on stderr and the ``(done, total)`` callback that moves it."""
    from tqdm import tqdm

    bar: tqdm[None] = tqdm(total=0, desc=desc, unit="passage", file=sys.stderr, disable=None)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def run_import(
    config: Config,
    paths: list[Path],
    show: bool = True,
    index: CoverageIndex | None = None,
    base_url: str | None = None,
) -> ImportReport:
    """Import files into the index (opened from the config unless given), printing rejected
    records and the files of other types in folders; returns the report."""
    index = index or open_index(config)
    rejected: list[str] = []

    def articles() -> Iterator[Article]:
        for item in read_paths(paths, base_url=base_url):
            if isinstance(item, Article):
                yield item
            elif isinstance(item, Rejected) and item.skipped:
                click.echo(f"note: {item}", err=True)
            else:
                rejected.append(str(item))
                click.echo(f"skipped {item}", err=True)

    bar, update = progress_bar("embedding") if show else (None, None)
    try:
        report = index.import_articles(articles(), progress=update)
    except EncoderMismatch as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    report.failed += len(rejected)
    report.errors.extend(rejected)
    return report


def read_state(config: Config, read: Callable[[StateDB], T]) -> T:
    """``read(state)`` on the state database alone (no index, no model), then close it."""
    from bot.state import StateDB

    state = StateDB(config.state_url)
    try:
        return read(state)
    finally:
        state.close()


def with_services(config: Config, work: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``work(services)`` on a fresh event loop, then release the services."""
    from bot.telegram.app import open_services

    services = open_services(config)

    async def run() -> T:
        try:
            return await work(services)
        finally:
            await services.batcher.stop()
            services.state.close()

    return asyncio.run(run())
