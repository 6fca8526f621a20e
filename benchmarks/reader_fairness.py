"""A second reader's wait while one reader floods the bot, and while a refresh imports.

    python benchmarks/reader_fairness.py [--work-dir DIR] [--flood 300] [--articles 400]

The real bot (`open_services`, `build_application`, `serve`, with its default rate
limiter) polls a Bot API sandbox on the same event loop, over the sample coverage. Reader B
asks one question after another (each waits for its reply, then B pauses `--think`
seconds, within the default allowance of 20 a minute) and its latencies, from
injecting the update to the reply reaching the sandbox, are measured:

- alone, as a baseline;
- flood: right after reader A sent `--flood` questions at once;
- refresh: while a refresh imports `--articles` BBC articles (a folder source) into the
  same index.

It prints p50/p95/max per scenario. Run it once with this checkout and once with another
(PYTHONPATH=... for the code before a change) to compare; issue 12 item 7 observed 16.9 s
(flood of 300) and 21.8 s (refresh of 400) for B's first question before.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

from bot.config import Config, IndexSection, TelegramSection
from bot.sandbox import BotApiSandbox
from bot.sources.refresh import refresh
from bot.telegram.app import build_application, open_services, serve
from index import Article, CoverageIndex, read_paths

BBC = ROOT.parent / "shared" / "corpus" / "bbc-news" / "articles.jsonl"
SAMPLE = ROOT / "index" / "sample" / "articles.jsonl"
QUESTIONS = [
    "What did Witkoff urge?",
    "How many trucks entered Gaza on the first day of the truce?",
    "What did UNRWA warn about flour?",
    "What did the Arab summit in Cairo endorse?",
]


async def ask(sandbox: BotApiSandbox, chat: object, user: object, question: str) -> float:
    """Seconds from the question to the bot's reply in that chat."""
    before = sandbox.sent_count(chat.id)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    await sandbox.inject_message(chat, user, question)  # type: ignore[arg-type]
    await sandbox.wait_for(before + 1, chat_id=chat.id, timeout=300)  # type: ignore[attr-defined]
    return time.perf_counter() - t0


def summary(name: str, measured: list[float]) -> str:
    values = sorted(measured)
    p95 = (
        statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
    )
    return (
        f"{name:8} n={len(values):3}  first {measured[0]:.2f}s  "
        f"p50 {statistics.median(values):.2f}s  p95 {p95:.2f}s  max {values[-1]:.2f}s"
    )


async def main(args: argparse.Namespace) -> None:
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="coverbot-fairness-"))
    data = work / "data"
    index = CoverageIndex(data)
    if index.stats(with_vectors=False).articles == 0:
        index.import_articles(a for a in read_paths([SAMPLE]) if isinstance(a, Article))
    folder = work / "incoming"
    folder.mkdir(exist_ok=True)
    rows = BBC.read_text().splitlines()[1000 : 1000 + args.articles]
    (folder / "bbc.jsonl").write_text("\n".join(rows) + "\n")
    sandbox = BotApiSandbox(auto_chats=False)
    await sandbox.start()
    settings = TelegramSection(token=sandbox.token, api_base_url=sandbox.base_url)
    config = Config(index=IndexSection(data_dir=str(data)), telegram=settings)
    services = open_services(config, index=index)
    app = build_application(services)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, stop))
    while sandbox.bot_state().poll_generation == 0:
        await asyncio.sleep(0.05)
    flooder, reader = sandbox.user("Flooder"), sandbox.user("Reader B")
    flood_chat, chat = sandbox.chat(flooder), sandbox.chat(reader)
    results: dict[str, list[float]] = {}

    async def series(n: int) -> list[float]:
        # Reader B paces itself within the default allowance (20 a minute).
        found = []
        for i in range(n):
            found.append(await ask(sandbox, chat, reader, QUESTIONS[i % len(QUESTIONS)]))
            await asyncio.sleep(args.think)
        return found

    results["alone"] = await series(6)
    for _ in range(args.flood):
        await sandbox.inject_message(flood_chat, flooder, QUESTIONS[0])
    results["flood"] = await series(6)
    await sandbox.wait_for(lambda sent: len(sent) >= 1, chat_id=flood_chat.id, timeout=300)
    await asyncio.sleep(2)
    services.state.sources.add("folder", str(folder))
    refreshing = asyncio.create_task(refresh(services))
    await asyncio.sleep(1.0)  # the import is under way
    during: list[float] = []
    while not refreshing.done():
        during.append(await ask(sandbox, chat, reader, QUESTIONS[len(during) % 4]))
        await asyncio.sleep(args.think)
    report = await refreshing
    results["refresh"] = during or [float("nan")]
    stop.set()
    await task
    await sandbox.stop()
    print(f"code: {sys.modules['bot'].__file__}")
    print(f"refresh: {report.added} articles added in {report.seconds:.0f}s")
    for name, values in results.items():
        print(summary(name, values))
    print(json.dumps({k: [round(v, 3) for v in vals] for k, vals in results.items()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", help="where the index and the source folder go")
    parser.add_argument("--flood", type=int, default=300)
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--think", type=float, default=3.1, help="reader B's pause, seconds")
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
