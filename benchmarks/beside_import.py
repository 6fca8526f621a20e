"""Issue 12 item 1 as an operator sees it: the bot serves while `coverbot import` runs beside it.

    python benchmarks/beside_import.py [--work-dir DIR] [--articles 300]

The real bot polls a Bot API sandbox (as in reader_fairness.py) over a data dir holding the
seed article (../shared/seed). While it runs, `coverbot import` of `--articles` BBC articles
runs as another process on the same data dir; a reader keeps asking the seed question
meanwhile. Then the reader asks the seed question and a question about a new article. It
prints what the reader got, and how many answers during the import were not answers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT

from bot.config import Config, IndexSection, TelegramSection
from bot.sandbox import BotApiSandbox
from bot.telegram.app import build_application, open_services, serve
from index import Article, CoverageIndex, read_paths

SEED = ROOT.parent / "shared" / "seed" / "daysofpalestine-61125.json"
BBC = ROOT.parent / "shared" / "corpus" / "bbc-news" / "articles.jsonl"
SEED_QUESTION = "What did Witkoff urge?"
NEW_QUESTION = "How much did Time Warner's quarterly profits jump?"


async def ask(sandbox: BotApiSandbox, chat: object, user: object, question: str) -> str:
    before = sandbox.sent_count(chat.id)  # type: ignore[attr-defined]
    await sandbox.inject_message(chat, user, question)  # type: ignore[arg-type]
    sent = await sandbox.wait_for(before + 1, chat_id=chat.id, timeout=120)  # type: ignore[attr-defined]
    return str(sent[-1].get("text", ""))


async def main(args: argparse.Namespace) -> None:
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="coverbot-beside-"))
    data = work / "data"
    index = CoverageIndex(data)
    index.import_articles(a for a in read_paths([SEED]) if isinstance(a, Article))
    articles = work / "bbc.jsonl"
    articles.write_text("\n".join(BBC.read_text().splitlines()[: args.articles]) + "\n")
    sandbox = BotApiSandbox(auto_chats=False)
    await sandbox.start()
    settings = (
        TelegramSection(token=sandbox.token, api_base_url=sandbox.base_url, questions_per_minute=0)
        if "questions_per_minute" in TelegramSection.__dataclass_fields__
        else TelegramSection(token=sandbox.token, api_base_url=sandbox.base_url)
    )
    services = open_services(
        Config(index=IndexSection(data_dir=str(data)), telegram=settings), index
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(build_application(services), stop))
    while sandbox.bot_state().poll_generation == 0:
        await asyncio.sleep(0.05)
    reader = sandbox.user("Reader")
    chat = sandbox.chat(reader)
    print("before the import:", (await ask(sandbox, chat, reader, SEED_QUESTION))[:90])
    command = [sys.executable, "-m", "bot.cli", "--data-dir", str(data), "import", str(articles)]
    t0 = time.perf_counter()
    importer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    during, bad = 0, 0
    while importer.poll() is None:
        reply = await ask(sandbox, chat, reader, SEED_QUESTION)
        during += 1
        bad += "Witkoff" not in reply
        await asyncio.sleep(1.0)
    out, err = importer.communicate()
    seconds = time.perf_counter() - t0
    print(f"coverbot import (exit {importer.returncode}, {seconds:.0f}s): {out.strip()}")
    if importer.returncode:
        print(err[-1500:])
    print(f"during the import: {during} questions, {bad} not answered with the seed article")
    print("seed question after:", (await ask(sandbox, chat, reader, SEED_QUESTION))[:90])
    print("new article after:  ", (await ask(sandbox, chat, reader, NEW_QUESTION))[:90])
    stop.set()
    await task
    await sandbox.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir")
    parser.add_argument("--articles", type=int, default=300)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parser.parse_args()))
