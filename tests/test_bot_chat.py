"""`coverbot chat`: the real bot through the sandbox, driven by a script on stdin."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from bot.cli.chat import format_message
from bot.cli.main import cli
from index.coverage import CoverageIndex
from tests.backends import state_rows


def test_format_message_shows_entities_readably() -> None:
    text = "😀 Title\n5 March\nquoted line one\nline two"
    entities = [
        {"type": "bold", "offset": 3, "length": 5},
        {"type": "text_link", "offset": 3, "length": 5, "url": "https://n.example/a"},
        {"type": "italic", "offset": 9, "length": 7},
        {"type": "blockquote", "offset": 17, "length": 24},
    ]
    assert format_message(text, entities) == (
        "😀 Title <https://n.example/a>\n5 March\n  │ quoted line one\n  │ line two"
    )
    styled = format_message(text, entities, styled=True)
    assert "\x1b[1m" in styled and "\x1b[3m" in styled


def test_scripted_chat_session(tmp_path: Path, sample_index: CoverageIndex) -> None:
    """A conversation with buttons pressed by number, inline mode, a decline, a bad button
    number, /quit. (From an empty data dir the sample is imported first; that costs the
    import's time, so here the data dir holds the sample already.)"""
    shutil.copytree(sample_index.data_dir, tmp_path / "data")
    script = "\n".join(
        [
            "What did Witkoff urge?",
            ":1",
            "/start",
            ":1",
            "@coverbot_test_bot witkoff ceasefire",
            "Who won the Champions League final?",
            "/latest",
            ":9",
            "/quit",
            "never read",
        ]
    )
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "data"), "chat"], input=script + "\n"
    )
    out = result.output
    assert result.exit_code == 0, out
    assert "importing the sample" not in out
    assert "you> What did Witkoff urge?" in out
    quote = next(line for line in out.splitlines() if "Witkoff urged Israel" in line)
    assert quote.lstrip().startswith("│ ")
    assert "<https://sample.coverbot.example/2025/03/05/" in out
    assert "[1] 👍 Helpful   [2] ⚠️ Wrong quote" in out
    assert "(Thanks, glad it helped.)" in out
    assert "Ask me about our news coverage." in out
    assert "[1] What did Witkoff urge?" in out
    assert "inline 1. Mediators step up efforts" in out
    assert "I could not find this in our coverage" in out
    assert "Newest stories" in out
    assert "• Mediators present revised Gaza proposal as talks resume in Doha <https://" in out
    assert "(no button 9;" in out
    assert "never read" not in out
    # The reader's vote is in the chat's own state database (SQLite in the data dir by default).
    assert ("helpful",) in state_rows(tmp_path / "data", "SELECT kind FROM feedback")
