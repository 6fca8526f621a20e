"""The CLI contract: import summary, ask (text, JSON, JSON Lines), stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-data")
    result = CliRunner().invoke(cli, ["--data-dir", str(path), "import", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "imported 16, updated 0, unchanged 0, failed 0" in result.output
    return path


def run(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.stdout + result.stderr if result.exit_code else result.stdout


def test_import_reports_bad_records_and_goes_on(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"url": "https://n.example/x", "body": "Body."}\n{oops\n')
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "import", str(SAMPLE), str(bad)])
    code, out = result.exit_code, result.output
    assert code == 1  # the good records are imported; the exit code says one failed
    assert f"skipped {bad}:2: invalid JSON" in out
    assert "imported 1, updated 0, unchanged 16, failed 1" in out


def test_ask_json(data_dir: Path) -> None:
    code, out = run(data_dir, "ask", "--json", "What did Witkoff urge?")
    assert code == 0
    answer = json.loads(out)
    assert set(answer) == {"question", "answered", "excerpts"}
    assert answer["answered"] is True
    assert set(answer["excerpts"][0]) == {"url", "title", "published_at", "text", "score"}
    assert "Witkoff urged Israel" in answer["excerpts"][0]["text"]


def test_ask_text(data_dir: Path) -> None:
    code, out = run(data_dir, "ask", "Who won the Champions League final?")
    assert code == 0 and "does not answer" in out
    code, out = run(data_dir, "ask")
    assert code == 2 and "QUESTION or --questions" in out


def test_stats_json(data_dir: Path) -> None:
    _, out = run(data_dir, "stats", "--json")
    stats = json.loads(out)
    assert stats["articles"] >= 16 and stats["passages"] > 16
    assert stats["data_dir"] == str(data_dir)


@pytest.mark.slow  # a subprocess
def test_ask_questions_file_as_a_subprocess(data_dir: Path, tmp_path: Path) -> None:
    """The evaluation contract, run as an operator would run it."""
    questions = tmp_path / "q.jsonl"
    lines = [
        {"id": "a", "question": "What did Witkoff urge?", "url": "ignored"},
        {"id": 7, "question": "best pizza in town"},
        {"id": "c", "question": "how much diesel does a bakery need"},
    ]
    questions.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    env = {**os.environ, "COVERBOT_DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ask", "--json", "--questions", str(questions)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", 7, "c"]
    assert [o["answered"] for o in out] == [True, False, True]
    assert all(set(o) == {"id", "question", "answered", "excerpts"} for o in out)
