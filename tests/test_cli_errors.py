"""Every CLI failure an operator can cause ends in one line on stderr, never a traceback.

Each test runs the real `coverbot` group (click's runner; one through a subprocess) and checks
the exit code, that the message is one line naming the problem, and that no exception got
past the CLI's one error handler (`bot/cli/errors.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli.main import cli

ARTICLE = {"url": "https://n.example/a", "title": "Ferry", "body": "The night ferry runs again."}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def one_line_error(result: Result, code: int = 1) -> str:
    """The error line of a failed command, after checking it failed cleanly."""
    assert result.exit_code == code, result.output
    # A SystemExit means the CLI handled the failure; anything else escaped it.
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0].removeprefix("Error: ")


@pytest.fixture(scope="module")
def one_article(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding one article."""
    data_dir = tmp_path_factory.mktemp("one-article")
    source = data_dir.parent / "one-article.jsonl"
    source.write_text(json.dumps(ARTICLE) + "\n")
    result = invoke("--data-dir", str(data_dir), "import", str(source))
    assert result.exit_code == 0, result.output
    return data_dir


def test_a_missing_questions_file(one_article: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    result = invoke("--data-dir", str(one_article), "ask", "--questions", str(missing))
    assert one_line_error(result) == f"{missing}: No such file or directory"


def test_a_missing_questions_file_through_the_real_entry_point(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent  # this checkout's bot/, whatever is installed
    env = {**os.environ, "COVERBOT_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ask", "--questions", "missing.jsonl"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: ")
    assert "Traceback" not in proc.stderr


def test_digests_run_without_a_token(tmp_path: Path) -> None:
    result = invoke("--data-dir", str(tmp_path), "digests", "run", env={"TELEGRAM_TOKEN": ""})
    assert one_line_error(result) == "config: no bot token: set TELEGRAM_TOKEN or [telegram] token"


def test_digests_run_with_an_unreachable_bot_api(one_article: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[telegram]\napi_base_url = "http://127.0.0.1:9/bot"\n')
    result = invoke(
        "--config",
        str(config),
        "--data-dir",
        str(one_article),
        "digests",
        "run",
        env={"TELEGRAM_TOKEN": "123:abc"},
    )
    assert one_line_error(result).startswith("cannot reach http://127.0.0.1:9/bot: ")


def test_an_index_that_cannot_be_opened(tmp_path: Path) -> None:
    # What a read-only or damaged data dir gives SQLite: it cannot open the article store.
    data_dir = tmp_path / "data"
    invoke("--data-dir", str(data_dir), "import", str(_article_file(tmp_path)))
    generation = (data_dir / "CURRENT").read_text().strip()
    store = data_dir / generation / "articles.sqlite3"
    for leftover in data_dir.joinpath(generation).glob("articles.sqlite3*"):
        leftover.unlink()
    store.mkdir()
    result = invoke("--data-dir", str(data_dir), "stats")
    assert one_line_error(result) == (
        f"index in {data_dir}: unable to open database file (is the data dir writable?)"
    )


def test_a_data_dir_that_cannot_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    source = _article_file(tmp_path)
    result = invoke("--data-dir", str(blocker / "data"), "import", str(source))
    assert one_line_error(result) == f"{blocker / 'data'}: Not a directory"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "not-a-url"])
def test_an_unreachable_chroma_server(one_article: Path, url: str) -> None:
    env = {"COVERBOT_CHROMA_URL": url}
    result = invoke("--data-dir", str(one_article), "ask", "Is the ferry running?", env=env)
    assert one_line_error(result).startswith(f"Chroma server at {url}: Could not connect")


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        ("bogus://x", "bogus://x", "unknown database kind 'bogus'"),
        ("not a url", "[state] url / COVERBOT_STATE_URL", "Could not parse"),
        (
            "postgresql+psycopg://u:secret@127.0.0.1:9/db",
            "postgresql+psycopg://u:***@127.0.0.1:9/db",
            "connection failed",
        ),
    ],
)
def test_a_bad_state_url(tmp_path: Path, url: str, shown: str, why: str) -> None:
    env = {"COVERBOT_STATE_URL": url}
    line = one_line_error(invoke("--data-dir", str(tmp_path), "digests", "status", env=env))
    assert line.startswith(f"state database {shown}: ") and why in line
    assert "secret" not in line


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("bogus://x", "bogus://x: unknown database kind 'bogus'"),
        ("not a url", "not a database URL: ArgumentError: Could not parse"),
    ],
)
def test_health_names_a_bad_state_url_in_its_state_line(
    one_article: Path, url: str, why: str
) -> None:
    result = invoke("--data-dir", str(one_article), "health", env={"COVERBOT_STATE_URL": url})
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"FAIL state: {why}")
    assert [line.split(":")[0] for line in lines] == [
        "FAIL state",
        "ok   index",
        "ok   model",
        "FAIL refresh",
    ]


def _article_file(tmp_path: Path) -> Path:
    source = tmp_path / "article.jsonl"
    source.write_text(json.dumps(ARTICLE) + "\n")
    return source


@pytest.mark.parametrize("command", [["ask", "What did Witkoff urge?"], ["stats"]])
def test_a_mistyped_data_dir_is_named_and_not_created(tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "coverbot-dat"
    line = one_line_error(invoke("--data-dir", str(typo), *command))
    assert line.startswith(f"no index in {typo}: import articles first")
    assert not typo.exists()


def test_importing_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = invoke("--data-dir", str(data_dir), "import", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert not data_dir.exists()


def test_asking_an_index_without_articles(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    invoke("--data-dir", str(tmp_path / "data"), "import", str(tmp_path / "empty.jsonl"))
    line = one_line_error(invoke("--data-dir", str(tmp_path / "data"), "ask", "Anything?"))
    assert (
        line == f"the index in {tmp_path / 'data'} holds no articles: import some first "
        "(coverbot import FILE)"
    )


@pytest.mark.parametrize("question", ["", "   ", "?!"])
def test_an_empty_question_is_a_usage_error(one_article: Path, question: str) -> None:
    result = invoke("--data-dir", str(one_article), "ask", question)
    assert one_line_error(result, code=2) == "The question is empty: ask it in words."


def test_a_question_in_arabic_is_told_to_use_english(one_article: Path) -> None:
    question = "ماذا قال ويتكوف عن وقف إطلاق النار؟"
    result = invoke("--data-dir", str(one_article), "ask", question)
    assert result.exit_code == 0
    message = "Questions must be in English for now; this one is written in Arabic script."
    assert result.stdout == message + "\n"
    result = invoke("--data-dir", str(one_article), "ask", "--json", question)
    assert json.loads(result.stdout) == {"question": question, "answered": False, "excerpts": []}
    assert result.stderr == message + "\n"


def test_eval_refuses_an_index_without_the_questions_articles(
    one_article: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "1", "question": "Who won?", "url": "https://bbc.example/1"}) + "\n"
    )
    line = one_line_error(
        invoke("--data-dir", str(one_article), "eval", "--questions", str(questions))
    )
    assert line.startswith(f"the index in {one_article} holds no article that these 1 ")


def test_eval_warns_when_the_index_holds_only_some_articles(
    one_article: Path, tmp_path: Path
) -> None:
    lines = [
        {"id": "1", "question": "Is the ferry running?", "url": ARTICLE["url"], "any_of": []},
        {"id": "2", "question": "Who won?", "url": "https://bbc.example/1", "any_of": []},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = invoke("--data-dir", str(one_article), "eval", "--questions", str(questions))
    assert result.exit_code == 0, result.output
    assert "warning: 1 of 2 questions are about articles the index does not hold" in result.stderr
    assert result.stdout.startswith("2 questions (all)")


def test_errors_of_our_own_keep_their_message(one_article: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[index]\nmodel = "{tmp_path / "no-model"}"\n')
    result = invoke("--config", str(config), "--data-dir", str(one_article), "ask", "Ferry?")
    assert one_line_error(result) == (
        f"model '{tmp_path / 'no-model'}' is not a local sentence-transformers directory "
        "(no modules.json or config.json); models are never downloaded"
    )
