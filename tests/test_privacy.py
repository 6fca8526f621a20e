"""What stays private: the bot token in the log, readers' texts in error logs, the data dir.

The first test runs `coverbot -v run` in a subprocess against the sandbox, as an operator
debugging would; the others drive the in-process bot or the log filter directly.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from bot.cli.main import cli
from bot.ops.privacy import REDACTED, RedactingFilter
from bot.sandbox import BotApiSandbox
from index.coverage import CoverageIndex
from tests.backends import servers_toml, state_server_url
from tests.bot_harness import InProcessBot, LoopThread, loop_fixture, start_bot

_ = loop_fixture

# Shaped like a real token: bot id, colon, 35 characters.
TOKEN = "7312398745:AAF3kq9-Vb_example_secret_tokenXYZ12"
SECRET_TEXT = "my landlord Yusuf Haddad at 14 Olive Street"


def _coverbot() -> list[str]:
    script = Path(sys.executable).with_name("coverbot")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def _loosen(root: Path) -> None:
    """Permissions as an older coverbot (or a careless copy) left them: 0755 and 0644."""
    for entry in [root, *root.rglob("*")]:
        entry.chmod(0o755 if entry.is_dir() else 0o644)


@pytest.mark.slow  # `coverbot run` in a subprocess
def test_debug_log_has_no_token_and_the_data_dir_is_the_owners(
    tmp_path: Path, sample_index: CoverageIndex, loop: LoopThread
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(sample_index.data_dir, data_dir)
    _loosen(data_dir)
    sandbox = BotApiSandbox(TOKEN)
    loop.run(sandbox.start())
    config = tmp_path / "coverbot.toml"
    config.write_text(f'[telegram]\napi_base_url = "{sandbox.base_url}"\n{servers_toml(data_dir)}')
    log = tmp_path / "bot.log"
    env = {**os.environ, "TELEGRAM_TOKEN": TOKEN, "COVERBOT_CONFIG": str(config)}
    command = [*_coverbot(), "-v", "--data-dir", str(data_dir), "run"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while sandbox.bot_state().poll_generation == 0:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        loop.run(sandbox.stop())
    text = log.read_text()
    assert "DEBUG telegram" in text  # it did log at DEBUG, Bot API URLs included
    assert TOKEN not in text and TOKEN.split(":")[1] not in text
    assert f"bot{REDACTED}" in text
    assert "were readable by other users; now owner-only" in text
    entries = [data_dir, *data_dir.rglob("*")]
    assert any(e.name == "chroma.sqlite3" for e in entries) or "chroma_url" in config.read_text()
    if "[state]" not in config.read_text():
        assert (data_dir / "state.sqlite3").exists()  # created by this run
    loose = {
        str(e.relative_to(data_dir)): oct(stat.S_IMODE(e.stat().st_mode))
        for e in entries
        if stat.S_IMODE(e.stat().st_mode) != (0o700 if e.is_dir() else 0o600)
    }
    assert loose == {}


@pytest.mark.skipif(
    state_server_url() is not None, reason="with PostgreSQL state the command writes no file"
)
def test_a_new_data_dir_and_state_database_are_the_owners(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "sources", "list"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    state = data_dir / "state.sqlite3"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_filter_redacts_messages_arguments_and_tracebacks_of_every_logger() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter([TOKEN, "short"]))
    other = "5550001:" + "x" * 35  # a token we were not told about
    for name in ("httpx", "httpcore", "telegram.ext.ExtBot", "apscheduler.scheduler"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        try:
            logger.warning("HTTP Request: GET https://api.telegram.org/bot%s/getMe", TOKEN)
            logger.warning(f"Set Bot API URL: https://api.telegram.org/bot{other}")
            try:
                httpx.Response(
                    404, request=httpx.Request("GET", f"https://api.telegram.org/bot{TOKEN}/x")
                ).raise_for_status()
            except httpx.HTTPStatusError:
                logger.exception("request failed")
        finally:
            logger.removeHandler(handler)
    assert len(records) == 12
    assert not [r for r in records if TOKEN in r or other in r]
    assert sum(f"bot{REDACTED}" in r for r in records) == 12
    assert "short" not in RedactingFilter(["short"]).secrets  # would redact plain words


@pytest.fixture()
def bot(loop: LoopThread, sample_index: CoverageIndex, tmp_path: Path) -> Iterator[InProcessBot]:
    running = start_bot(loop, sample_index, tmp_path)
    yield running
    running.shutdown()


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_error_log_names_the_update_not_the_readers_words(
    bot: InProcessBot, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    sandbox = bot.sandbox
    reader = sandbox.user("Yusuf", last_name="Haddad", username="yhaddad")
    chat = sandbox.chat(reader)
    sandbox.fail_next("sendMessage", status=500)
    with caplog.at_level(level, logger="bot.telegram.errors"):
        update = bot.run(sandbox.inject_message(chat, reader, f"Who owns {SECRET_TEXT}?"))
        bot.run(bot.wait_done(update))
    [record] = [r for r in caplog.records if r.getMessage().startswith("update failed")]
    logged = caplog.text
    assert f"update {update['update_id']}" in logged or level == logging.DEBUG
    assert str(chat.id) in logged
    if level == logging.DEBUG:  # an operator debugging asked for everything
        assert SECRET_TEXT in logged and "Haddad" in logged
    else:
        assert SECRET_TEXT not in logged and "Haddad" not in logged and "yhaddad" not in logged
        assert record.exc_info is not None  # the traceback is still there
