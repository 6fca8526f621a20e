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
from bot.cli.common import (
    open_index,
    open_serving_index,
    protect_files,
    run_import,
    sample_path,
    setup_logging,
)
from bot.cli.errors import CoverbotGroup
from bot.config import Config, ConfigError, load_config
from bot.ops.health import health
from index import (
    Answer,
    CoverageIndex,
    Question,
    check_question,
    evaluate,
    gold_of,
    load_questions,
    score,
)

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = (
    "What did Witkoff urge?",
    "How many aid trucks a day does Gaza need once the crossings reopen?",
    "what did unrwa warn about flour",
    "Who won the Champions League final?",
)
# Commands that run for long and whose INFO lines (refreshes, digests) an operator wants;
# the others log warnings only, unless [logging] level says otherwise.
_LONG_RUNNING = frozenset({"run"})


@click.group(cls=CoverbotGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    default = "INFO" if ctx.invoked_subcommand in _LONG_RUNNING else "WARNING"
    secrets = (config.telegram.token, config.telegram.webhook_secret)
    setup_logging("DEBUG" if verbose else config.logging.level or default, secrets)
    protect_files(config)
    ctx.obj = config


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="The site the files mirror: a file that names no url gets URL + its path.",
)
@click.pass_obj
def import_cmd(config: Config, paths: tuple[Path, ...], base_url: str | None) -> None:
    """Import articles from .json, .jsonl, .html, .md and .txt files or folders; exits 1
    if any record failed (the others are imported)."""
    report = run_import(config, list(paths), base_url=base_url)
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)


def _marked(text: str, span: tuple[int, int] | None) -> str:
    """The excerpt with its answering sentence between ** (the terminal's bold)."""
    if span is None:
        return text
    return f"{text[: span[0]]}**{text[span[0] : span[1]]}**{text[span[1] :]}"


def _print_answer(answer: Answer) -> None:
    if not answer.answered:
        click.echo("The coverage does not answer this question.")
        return
    for i, ex in enumerate(answer.excerpts, 1):
        date = (ex.published_at or "undated")[:10]
        click.secho(f"{i}. {ex.title}", bold=True)
        click.echo(f"   {date}  {ex.url}")
        click.echo(f"   “{_marked(ex.text, ex.answer_span)}”\n")


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
    if questions is not None:
        records = list(_read_questions(questions))
        index = open_serving_index(config, with_articles=True)
        for start in range(0, len(records), 256):
            for out in _answer_batch(index, records[start : start + 256]):
                click.echo(json.dumps(out, ensure_ascii=False))
        return
    assert question is not None
    problem = check_question(question)
    if problem is not None and problem.kind == "empty":
        raise click.UsageError(problem.message())
    index = open_serving_index(config, with_articles=True)
    if problem is not None:  # not in English: say so, without searching
        if as_json:
            click.echo(json.dumps(Answer(question, False).to_dict(), ensure_ascii=False))
            click.echo(problem.message(), err=True)
        else:
            click.echo(problem.message())
        return
    answer = index.ask(question)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        _print_answer(answer)


def _answer_batch(
    index: CoverageIndex, records: list[tuple[int, dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    """JSON answers for question lines, in order; a line that cannot be asked (empty, not
    in English) is declined without searching, and why goes to stderr."""
    askable = []
    for lineno, record in records:
        problem = check_question(record["question"])
        if problem is None:
            askable.append(record["question"])
        else:
            click.echo(f"line {lineno}: {problem.message()}", err=True)
    answers = iter(index.ask_many(askable))
    for _, record in records:
        question = record["question"]
        answer = next(answers) if check_question(question) is None else Answer(question, False)
        yield {"id": record.get("id"), **answer.to_dict()}


# `stats` counts the distinct `source` fields of articles; the registered sources the bot
# refreshes are another thing (`coverbot sources list`), so the line says which it is.
_STATS_LABELS = {
    "sources": "source names in articles",
    "without_sentence_vectors": "passages without sentence vectors",
}


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats(config: Config, as_json: bool) -> None:
    """Articles, passages, source names in articles, last import, data dir and model."""
    from dataclasses import asdict

    index = open_serving_index(config)
    data = asdict(index.stats(with_vectors=False))
    data.pop("vectors")
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{_STATS_LABELS.get(key, key.replace('_', ' '))}: {value}")


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
    # Lazily, here and in `chat`: the other commands never load PTB. A refused token or an
    # unreachable Bot API ends in one line (bot/cli/errors.py).
    from bot.telegram.app import run_bot

    run_bot(config)


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
@click.option(
    "--baselines",
    is_flag=True,
    help="Also run the hand-weighted excerpt choice, BM25 alone and dense alone.",
)
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
    index = open_serving_index(config)
    questions = load_questions(questions_path)
    gold = gold_of(index)
    _check_gold(gold.missing(questions), questions, config)
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
    click.echo(f"{'system':14}" + "".join(f"{c:>18}" for c in columns))
    for name, row in table.items():
        click.echo(f"{name:14}" + "".join(f"{row[c]!s:>18}" for c in columns))


def _check_gold(missing: list[Question], questions: list[Question], config: Config) -> None:
    """Refuse to score an index holding none of the questions' articles (a table of zeros
    says nothing); warn when it holds only some."""
    answerable = sum(q.url is not None for q in questions)
    if not missing:
        return
    if len(missing) == answerable:
        raise click.ClickException(
            f"the index in {config.data_dir} holds no article that these {answerable} "
            "answerable questions are about: import the corpus they were written for first"
        )
    click.echo(
        f"warning: {len(missing)} of {answerable} questions are about articles the index "
        "does not hold; they count as misses",
        err=True,
    )


for command in (sources, refresh, reindex, digests, health):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="coverbot")
