"""One reader's flood or a refresh never makes another reader wait (#12 item 7).

The batcher's turns and allowances, then the real bot over HTTP to the sandbox.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.batcher import AskBatcher
from bot.fairness import FairQueue, ReaderBusy, ReaderLimiter
from index.coverage import CoverageIndex
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot

QUESTION = "What did Witkoff urge?"
QUOTE = "Witkoff urged Israel to uphold the ceasefire"
_ = loop_fixture

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


def test_readers_take_turns() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(30):
        queue.put("flooder", f"a{n}")
    queue.put("other", "b0")
    queue.put("third", "c0")
    assert queue.take(4) == ["a0", "b0", "c0", "a1"]
    assert len(queue) == 28 and queue.waiting("flooder") == 28 and queue.waiting("other") == 0


def test_each_reader_has_an_allowance_and_is_told_once() -> None:
    now = [0.0]
    limiter = ReaderLimiter(per_minute=6, burst=2, clock=lambda: now[0])
    limiter.take(1)
    limiter.take(1)
    limiter.take(2)  # another reader's allowance is their own
    with pytest.raises(ReaderBusy) as first:
        limiter.take(1)
    assert first.value.notify and first.value.retry_after == pytest.approx(10.0)
    with pytest.raises(ReaderBusy) as again:
        limiter.take(1)
    assert not again.value.notify  # said once; the rest of the streak is quiet
    now[0] = 10.0
    limiter.take(1)


async def test_an_import_runs_beside_answers_not_before_them(
    sample_index: CoverageIndex,
) -> None:
    """A write that takes long (here: until the answer is in) must not hold up a question;
    on one shared thread it did, and a refresh of 400 articles made a reader wait 21.8 s."""
    batcher = AskBatcher(sample_index, window=0.005)
    await batcher.start()
    answered = threading.Event()

    def long_import() -> str:
        assert answered.wait(timeout=20), "the question waited for the import"
        return threading.current_thread().name

    try:
        writing = asyncio.ensure_future(batcher.call_write(long_import))
        await asyncio.sleep(0.05)
        answer = await asyncio.wait_for(batcher.ask(QUESTION, reader=1), timeout=20)
        answered.set()
        thread = await writing
    finally:
        answered.set()
        await batcher.stop()
    assert answer.answered
    assert thread.startswith("coverbot-import")


@pytest.fixture()
def bot(loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path) -> Iterator[InProcessBot]:
    running = start_bot(loop, sample_index, tmp_path, questions_per_minute=6, questions_burst=3)
    yield running
    running.shutdown()


def test_a_flooding_reader_is_slowed_and_the_next_reader_answered(bot: InProcessBot) -> None:
    """Reader A sends 20 questions at once, then reader B one: A gets 3 answers and one
    polite "slow down", B gets the answer (before: A got 20 answers and B waited behind)."""
    sandbox = bot.sandbox
    flooder, other = sandbox.user("Flooder"), sandbox.user("Patient")
    flood_chat, other_chat = sandbox.chat(flooder), sandbox.chat(other)

    async def scenario() -> None:
        updates = [await sandbox.inject_message(flood_chat, flooder, QUESTION) for _ in range(20)]
        updates.append(await sandbox.inject_message(other_chat, other, QUESTION))
        await bot.wait_done(updates, timeout=60)

    bot.run(scenario(), timeout=90)
    flood = [m["text"] for m in sandbox.sent(flood_chat.id)]
    slow_down = [t for t in flood if t.startswith("You are asking faster")]
    assert len([t for t in flood if QUOTE in t]) == 3
    assert len(slow_down) == 1  # said once, not 17 times
    [answer] = sandbox.sent(other_chat.id)
    assert QUOTE in answer["text"]
    assert bot.errors == []


def test_answers_still_come_when_the_state_database_refuses_writes(
    loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path
) -> None:
    """#12 item 4, bot side: with the disk full every question got "Sorry..." because the
    answer is saved for its buttons; now the answer comes, without the buttons."""
    import sqlalchemy as sa

    running = start_bot(loop, sample_index, tmp_path)
    engine = running.services.state.engine

    def read_only(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only = ON")  # SQLite refuses every write
        else:  # PostgreSQL: every transaction of this session is read-only
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_connection.commit()  # a SET in a rolled-back transaction is undone
        cursor.close()

    try:
        sa.event.listen(engine, "connect", read_only)
        engine.dispose()
        sandbox = running.sandbox
        reader = sandbox.user("Reader")
        chat = sandbox.chat(reader)
        running.run(running.wait_done(running.run(sandbox.inject_message(chat, reader, QUESTION))))
        [answer] = sandbox.sent(chat.id)
        assert QUOTE in answer["text"] and "reply_markup" not in answer
        # The question's handling failed nowhere. Scheduled jobs that write (the scheduler
        # lease, digest runs) may fail meanwhile: that is the disk refusing, reported as it
        # should be, and whether one fires inside this window is timing.
        assert running.update_errors == []
    finally:
        if sa.event.contains(engine, "connect", read_only):
            sa.event.remove(engine, "connect", read_only)  # room again, for a clean shutdown
        engine.dispose()
        running.shutdown()
