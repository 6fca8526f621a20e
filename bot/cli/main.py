"""The `coverbot` command: thin commands over the core (parse, call, report)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from bot.cli import eval_plot
from bot.cli.admin import digests, refresh, reindex, sources
from bot.cli.common import open_index, run_import, sample_path, setup_logging
from bot.config import Config, ConfigError, load_config
from bot.ops.health import health
from index import Answer, evaluate, gold_of, load_questions, score

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = (
    "What did Witkoff urge?",
    "How many aid trucks a day does Gaza need once the crossings reopen?",
    "what did unrwa warn about flour",
    "Who won the Champions League final?",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file [env COVERBOT_CONFIG].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Data directory [env COVERBOT_DATA_DIR; default ./coverbot-data].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None, verbose: bool) -> None:
    """coverbot: answer readers' questions with verbatim, linked excerpts of your coverage."""
    try:
        config = load_config(config_path, data_dir)
    except ConfigError as exc:
        raise click.ClickException(f"config: {exc}") from exc
    setup_logging("DEBUG" if verbose else config.logging.level)
    ctx.obj = config


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_obj
def import_cmd(config: Config, paths: tuple[Path, ...]) -> None:
    """Import articles from .json, .jsonl, .html, .md and .txt files or folders."""
    report = run_import(config, list(paths))
    click.echo(report.summary())
    if report.failed and not (report.added or report.updated or report.unchanged):
        sys.exit(1)


def _print_answer(answer: Answer) -> None:
    if not answer.answered:
        click.echo("The coverage does not answer this question.")
        return
    for i, ex in enumerate(answer.excerpts, 1):
        date = (ex.published_at or "undated")[:10]
        click.secho(f"{i}. {ex.title}", bold=True)
        click.echo(f"   {date}  {ex.url}")
        click.echo(f"   “{ex.text}”\n")


def _read_questions(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"{path}:{lineno}: invalid JSON: {exc.msg}") from exc
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise click.ClickException(f'{path}:{lineno}: needs a string "question"')
            yield lineno, record


@cli.command()
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--questions",
    type=click.Path(allow_dash=True),
    default=None,
    help='JSON Lines file of {"id", "question"}; one JSON answer per line.',
)
@click.pass_obj
def ask(config: Config, question: str | None, as_json: bool, questions: str | None) -> None:
    """Answer a question from the coverage."""
    if (question is None) == (questions is None):
        raise click.UsageError("give either a QUESTION or --questions FILE")
    index = open_index(config)
    if questions is not None:
        records = [r for _, r in _read_questions(questions)]
        for start in range(0, len(records), 256):
            batch = records[start : start + 256]
            for record, answer in zip(
                batch, index.ask_many([r["question"] for r in batch]), strict=True
            ):
                out = {"id": record.get("id"), **answer.to_dict()}
                click.echo(json.dumps(out, ensure_ascii=False))
        return
    assert question is not None
    answer = index.ask(question)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        _print_answer(answer)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(config: Config, as_json: bool) -> None:
    """Articles, passages, sources, last import, data dir and model."""
    from dataclasses import asdict

    index = open_index(config)
    data = asdict(index.stats(with_vectors=False))
    data.pop("vectors")
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key.replace('_', ' ')}: {value}")


@cli.command()
@click.pass_obj
def demo(config: Config) -> None:
    """Index the bundled sample coverage and answer a few example questions."""
    index = open_index(config)  # one index, so the model is loaded once
    report = run_import(config, [sample_path()], index=index)
    click.echo(f"sample coverage: {report.summary()}\n")
    for question, answer in zip(
        EXAMPLE_QUESTIONS, index.ask_many(list(EXAMPLE_QUESTIONS)), strict=True
    ):
        click.secho(f"Q: {question}", fg="cyan", bold=True)
        _print_answer(answer)
        click.echo()


@cli.command()
@click.pass_obj
def run(config: Config) -> None:
    """Run the Telegram bot (long polling, or a webhook per config) until Ctrl-C or SIGTERM."""
    # Lazily, here and in `chat`: the other commands never load PTB.
    from telegram.error import InvalidToken, NetworkError

    from bot.telegram.app import run_bot

    try:
        run_bot(config)
    except ConfigError as exc:
        raise click.ClickException(f"config: {exc}") from exc
    except InvalidToken as exc:
        raise click.ClickException(f"Telegram refused the bot token: {exc}") from exc
    except NetworkError as exc:
        raise click.ClickException(f"cannot reach the Bot API: {exc}") from exc


@cli.command()
@click.option("--name", default="Reader", show_default=True, help="Your name in the chat.")
@click.pass_obj
def chat(config: Config, name: str) -> None:
    """Chat with the bot in this terminal, through a local Bot API sandbox (no token needed).

    Type a question; `:N` presses button N of the bot's last message; `@ question` tries
    inline mode; `/quit` leaves. Imports the sample coverage if the data dir is empty.
    """
    from bot.cli.chat import run_chat

    run_chat(config, name)


@cli.command("eval")
@click.option(
    "--questions",
    "questions_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON Lines: {"id", "question", "url" or null, "any_of": [...]}.',
)
@click.option("--baselines", is_flag=True, help="Also run BM25 alone and dense alone.")
@click.option(
    "--split",
    type=click.Choice(["all", "dev", "test"]),
    default="all",
    help="Report on this split; baselines calibrate their threshold on dev.",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Calibrate coverbot's decline threshold on dev too, instead of the config's.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write a PNG chart of the systems side by side (needs coverbot[plot]).",
)
@click.pass_obj
def eval_cmd(
    config: Config,
    questions_path: Path,
    baselines: bool,
    split: str,
    calibrate: bool,
    as_json: bool,
    plot_path: Path | None,
) -> None:
    """Score answers against a question set (right fact in excerpt 1, 1-3, MRR, declines)."""
    if plot_path is not None:
        try:
            eval_plot.ensure_available()
        except eval_plot.PlotUnavailable as exc:
            raise click.ClickException(str(exc)) from exc
    index = open_index(config)
    questions = load_questions(questions_path)
    gold = gold_of(index)
    runs = evaluate(index, questions, baselines=baselines, calibrate=calibrate)
    keep = [i for i, q in enumerate(questions) if split == "all" or (q.split or "test") == split]
    table = {}
    for run in runs:
        scores = score([questions[i] for i in keep], [run.answers[i] for i in keep], gold)
        table[run.name] = {
            **scores.row(),
            "threshold": round(run.threshold, 3),
            "by_style_fact@1": {k: round(100 * v, 1) for k, v in scores.by_style.items()},
        }
    if plot_path is not None:
        title = f"coverbot eval: {questions_path.name}, split {split} ({len(keep)} questions)"
        eval_plot.plot_eval(table, plot_path, title)
        click.echo(f"chart written to {plot_path}", err=True)
    if as_json:
        click.echo(json.dumps({"questions": len(keep), "split": split, "systems": table}))
        return
    click.echo(f"{len(keep)} questions ({split}) from {questions_path}")
    columns = [c for c in next(iter(table.values())) if c != "by_style_fact@1"]
    click.echo(f"{'system':10}" + "".join(f"{c:>18}" for c in columns))
    for name, row in table.items():
        click.echo(f"{name:10}" + "".join(f"{row[c]!s:>18}" for c in columns))


for command in (sources, refresh, reindex, digests, health):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point; storage failures end in one line with the fix."""
    from bot.state import StateDamaged
    from index import IndexPointerError, RebuildInProgress, StorageError

    try:
        cli(prog_name="coverbot")
    except (StorageError, IndexPointerError, RebuildInProgress, StateDamaged) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
