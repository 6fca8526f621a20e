"""Bot throughput: simulated readers asking the real bot through the Bot API sandbox.

    python benchmarks/bot_throughput.py --source /tmp/bbc-bench2 [--size 10000]
        [--scenarios 1 10 100 100:2.25] [--seconds 20] [--limiter both|on|off] [--quick]
        [--work-dir DIR]

The bot runs as its own process, as `coverbot run` does (`bot.app.open_services`,
`build_application`, `serve`), polling a sandbox (`bot.sandbox.BotApiSandbox`) that runs in
this process. Each simulated reader has a private chat; it sends a question, waits until the
bot's reply reaches the sandbox (the first `sendMessage` to its chat; answers fit in one
message), then sends the next. Readers ask different questions (benchmarks/questions/bbc.jsonl,
or the sample's with --quick), so the batcher cannot merge duplicates.

A scenario is READERS[:THINK]: that many readers, each pausing a random time (exponential,
mean THINK seconds, default 0) between an answer and its next question. With no pause the
readers keep the bot saturated, so latency is readers / throughput (Little's law): 100 such
readers at 40 answers/s wait 2.5 s whatever the bot does. 100 readers pausing 2.25 s offer
about 40 questions/s, the load of the issue's target. For each scenario it prints answered
questions/s and p50/p95 latency from injecting the update to the reply (the first
`--warmup` seconds are left out), and the batches the bot's `AskBatcher` formed (sizes seen
by `CoverageIndex.ask_many`, recorded in the bot process) with the index's time per
question in them, and the CPU used by the bot process and by this one (the sandbox and the
readers; 100% is one core of the two).

With `--limiter on` the bot keeps its default AIORateLimiter (Telegram's 30 requests/s
overall, and every answer costs two: sendChatAction and sendMessage); `off` swaps in a
limiter that passes every request (the sandbox enforces no flood limits). Figures, never
pass/fail; the target of issue 6 is >= 40 answered/s at p95 <= 250 ms for 100 readers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    QUESTIONS,
    ROOT,
    add_index_options,
    load_questions,
    p50_p95,
    prepare_index,
    size_label,
    table,
)
from telegram.ext import BaseRateLimiter

from bot.cli.common import setup_logging
from bot.config import load_config
from bot.sandbox import BotApiSandbox
from bot.sandbox.models import RequestRecord
from bot.telegram.app import build_application, open_services, serve
from index.answer import Answer
from index.articles import Article
from index.coverage import CoverageIndex
from index.importers import read_paths

TOKEN = "424242:bench-token"
SAMPLE = ROOT / "index" / "sample"
REPLY_TIMEOUT = 120.0

log = logging.getLogger("benchmarks.bot_throughput")


# -- the bot process --------------------------------------------------------------------


class RecordingIndex(CoverageIndex):
    """The coverage index, noting the size and duration of every batch the bot asks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[tuple[int, float]] = []

    def ask_many(self, questions: Sequence[str]) -> list[Answer]:
        t0 = time.perf_counter()
        answers = super().ask_many(questions)
        self.batches.append((len(questions), time.perf_counter() - t0))
        return answers

    def take_batches(self) -> list[tuple[int, float]]:
        """Batches since the last call."""
        taken, self.batches = self.batches, []
        return taken


class NoRateLimit(BaseRateLimiter[int]):
    """Passes every request at once: the bot without Telegram's flood limits."""

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        return await callback(*args, **kwargs)


def serve_bot(config_path: Path, limiter: bool) -> None:
    """The bot process: `coverbot run` with a recording index; SIGUSR1 prints the batches."""
    config = load_config(config_path)
    setup_logging(config.logging.level)
    index = RecordingIndex(config.data_dir, config.index_settings())
    app = build_application(
        open_services(config, index=index), rate_limiter=None if limiter else NoRateLimit()
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(
            signal.SIGUSR1, lambda: print(json.dumps(index.take_batches()), flush=True)
        )
        await serve(app, stop)

    asyncio.run(run())


@dataclass
class BotProcess:
    """The bot in a child process and how to talk to it."""

    process: subprocess.Popen[str]
    log_path: Path

    async def take_batches(self) -> list[tuple[int, float]]:
        """(size, seconds) of the batches the bot answered since the last call."""
        assert self.process.stdout is not None
        self.process.send_signal(signal.SIGUSR1)
        line = await asyncio.to_thread(self.process.stdout.readline)
        return [(int(n), float(s)) for n, s in json.loads(line)]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the bot process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


async def start_bot(
    sandbox: BotApiSandbox, data_dir: Path, work_dir: Path, limiter: bool
) -> BotProcess:
    """Start the bot against the sandbox; return once it long-polls."""
    name = "limiter-on" if limiter else "limiter-off"
    state = work_dir / f"bot-state-{name}.sqlite3"
    state.unlink(missing_ok=True)
    config = work_dir / f"bot-{name}.toml"
    config.write_text(
        f'[index]\ndata_dir = "{data_dir}"\n'
        f'[telegram]\napi_base_url = "{sandbox.base_url}"\n'
        f'[state]\nurl = "sqlite:///{state}"\n'
        '[logging]\nlevel = "WARNING"\n'
    )
    log_path = work_dir / f"bot-{name}.log"
    args = [
        sys.executable,
        __file__,
        "--serve",
        str(config),
        "--limiter",
        "on" if limiter else "off",
    ]
    env = {**os.environ, "TELEGRAM_TOKEN": TOKEN}
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log_file, env=env, text=True, cwd=ROOT
        )
    deadline = time.monotonic() + 180
    while sandbox.bot_state().poll_generation == 0:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the bot did not start polling:\n{log_path.read_text()[-3000:]}")
        await asyncio.sleep(0.05)
    return BotProcess(process, log_path)


# -- the readers ------------------------------------------------------------------------


@dataclass
class Run:
    """What one scenario measured."""

    readers: int
    think: float
    window: float
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0


async def simulate(
    sandbox: BotApiSandbox,
    readers: int,
    think: float,
    seconds: float,
    warmup: float,
    questions: list[str],
) -> Run:
    """`readers` readers asking one question after another for `seconds` seconds."""
    loop = asyncio.get_running_loop()
    waiting: dict[int, asyncio.Future[float]] = {}

    def on_request(record: RequestRecord) -> None:
        if record.method.lower() == "sendmessage" and record.ok:
            future = waiting.pop(int(record.params["chat_id"]), None)
            if future is not None and not future.done():
                future.set_result(time.perf_counter())

    run = Run(readers, think, seconds - warmup)
    start = time.perf_counter()
    counted_from, end = start + warmup, start + seconds
    pauses = random.Random(readers)

    async def reader(number: int) -> None:
        user = sandbox.user(f"Reader {number}")
        chat = sandbox.chat(user)
        asked = number
        if think:  # readers arrive spread out, not all at once
            await asyncio.sleep(pauses.uniform(0, think))
        while time.perf_counter() < end:
            question = questions[asked % len(questions)]
            asked += readers
            future: asyncio.Future[float] = loop.create_future()
            waiting[chat.id] = future
            sent = time.perf_counter()
            await sandbox.inject_message(chat, user, question)
            try:
                replied = await asyncio.wait_for(future, REPLY_TIMEOUT)
            except TimeoutError:
                run.timeouts += 1
                continue
            if counted_from <= replied <= end:
                run.latencies.append(replied - sent)
            if think:
                await asyncio.sleep(pauses.expovariate(1 / think))

    sandbox.add_listener(on_request)
    try:
        await asyncio.gather(*(reader(i) for i in range(readers)))
    finally:
        sandbox.remove_listener(on_request)
    return run


async def benchmark(
    data_dir: Path,
    work_dir: Path,
    questions: list[str],
    scenarios: list[tuple[int, float]],
    limiters: list[bool],
    seconds: float,
    warmup: float,
) -> list[list[object]]:
    """Every limiter setting (one bot process each) with every scenario."""
    rows: list[list[object]] = []
    for limiter in limiters:
        sandbox = BotApiSandbox(TOKEN)
        await sandbox.start()
        bot = await start_bot(sandbox, data_dir, work_dir, limiter)
        try:
            await simulate(sandbox, 1, 0.0, 2.0, 2.0, questions)  # warm the bot's caches
            await bot.take_batches()
            for readers, think in scenarios:
                bot_cpu, own_cpu, t0 = bot.cpu_seconds(), time.process_time(), time.perf_counter()
                run = await simulate(sandbox, readers, think, seconds, warmup, questions)
                elapsed = time.perf_counter() - t0
                bot_cpu = (bot.cpu_seconds() - bot_cpu) / elapsed
                own_cpu = (time.process_time() - own_cpu) / elapsed
                batches = await bot.take_batches()
                p50, p95 = p50_p95(run.latencies) if run.latencies else (0.0, 0.0)
                sizes = sorted(n for n, _ in batches)
                asked = sum(sizes)
                rows.append(
                    [
                        "on" if limiter else "off",
                        readers,
                        f"{think:g}",
                        f"{len(run.latencies) / run.window:.1f}",
                        f"{p50 * 1000:.0f}",
                        f"{p95 * 1000:.0f}",
                        run.timeouts,
                        len(batches),
                        f"{asked / max(len(batches), 1):.1f}",
                        sizes[-1] if sizes else 0,
                        f"{sum(s for _, s in batches) / max(asked, 1) * 1000:.1f}",
                        f"{bot_cpu * 100:.0f}",
                        f"{own_cpu * 100:.0f}",
                    ]
                )
                print(table(HEADERS, rows[-1:]).splitlines()[-1], flush=True)
        finally:
            bot.stop()
            await sandbox.stop()
    return rows


HEADERS = [
    "limiter",
    "readers",
    "think s",
    "answered/s",
    "p50 ms",
    "p95 ms",
    "timeouts",
    "batches",
    "mean batch",
    "max batch",
    "index ms/question",
    "bot CPU %",
    "sandbox CPU %",
]


def sample_index(work_dir: Path) -> Path:
    """The bundled sample coverage, imported once under `work_dir`."""
    data_dir = work_dir / "index-sample"
    if not (data_dir / "IMPORTED").is_file():
        index = CoverageIndex(data_dir)
        articles = read_paths([SAMPLE / "articles.jsonl"])
        index.import_articles(a for a in articles if isinstance(a, Article))
        index.lexical  # noqa: B018 - build BM25 now, not at the first question
        (data_dir / "IMPORTED").write_text("yes\n")
    return data_dir


def scenario(text: str) -> tuple[int, float]:
    """ "100:2.25" -> (100, 2.25); "10" -> (10, 0.0)."""
    readers, _, think = text.partition(":")
    return int(readers), float(think or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_index_options(parser)
    parser.add_argument("--size", type=int, default=10_000, help="passages in the index")
    parser.add_argument(
        "--scenarios",
        type=scenario,
        nargs="+",
        default=[(1, 0.0), (10, 0.0), (100, 0.0), (100, 2.25)],
        help="READERS[:THINK] each, THINK the mean pause in seconds (default 1 10 100 100:2.25)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted")
    parser.add_argument("--limiter", choices=["both", "on", "off"], default="both")
    parser.add_argument("--quick", action="store_true", help="the sample coverage instead")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_bot(args.serve, args.limiter != "off")
        return
    logging.basicConfig(level=logging.WARNING)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.quick:
        data_dir = sample_index(args.work_dir)
        questions = load_questions(SAMPLE / "questions.jsonl")
        print(f"sample coverage: {data_dir}")
    else:
        bench = prepare_index(args.size, args.work_dir, args.source, args.corpus)
        data_dir = bench.data_dir
        questions = load_questions(QUESTIONS)
        print(f"{size_label(args.size)}: {bench.describe()}")
    limiters = {"both": [True, False], "on": [True], "off": [False]}[args.limiter]
    print(
        f"{args.seconds:.0f} s per row ({args.warmup:.0f} s warm-up not counted); "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print(table(HEADERS, []))
    rows = asyncio.run(
        benchmark(
            data_dir,
            args.work_dir,
            questions,
            args.scenarios,
            limiters,
            args.seconds,
            args.warmup,
        )
    )
    print()
    print(table(HEADERS, rows))


if __name__ == "__main__":
    main()
