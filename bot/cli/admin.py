"""`coverbot sources add|list|remove`, `coverbot refresh`, `coverbot reindex`: the CLI twins
of the admin commands, over the same operations."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

from bot.cli.common import open_index, progress_bar, read_state, with_services
from bot.config import Config
from bot.types import plural

if TYPE_CHECKING:
    from bot.services import Services
    from bot.types import RunReport
from index import SOURCE_KIND_NAMES, RebuildInProgress


@click.group()
def sources() -> None:
    """The sources the bot refreshes (stored in the state database)."""


@sources.command("add")
@click.argument("url")
@click.option(
    "--kind",
    type=click.Choice(SOURCE_KIND_NAMES),
    default=None,
    help="Skip detection.",
)
@click.pass_obj
def sources_add(config: Config, url: str, kind: str | None) -> None:
    """Add a source: detect its kind, refuse private addresses, fetch it once."""
    from bot.sources.operations import AdminError, add_source

    try:
        record = with_services(config, lambda s: add_source(s, url, kind, added_by=0))
    except AdminError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added source #{record.id} ({record.kind}) {record.url}")


@sources.command("list")
@click.pass_obj
def sources_list(config: Config) -> None:
    """List sources with their health."""
    records = read_state(config, lambda state: state.sources.records())
    for r in records:
        if r.failing:
            health = f"FAILING x{r.consecutive_failures}: {r.last_error}"
        else:
            health = f"ok {r.last_success_at:%Y-%m-%d %H:%M}" if r.last_success_at else "new"
        click.echo(f"#{r.id}\t{r.kind}\t{plural(r.articles, 'article')}\t{health}\t{r.url}")
    # [[sources]] of the config are registered when the bot starts or a refresh runs.
    registered = {r.url for r in records}
    pending = [s for s in config.sources if s.url not in registered]
    for s in pending:
        click.echo(
            f"-\t{s.kind}\tfrom the config, registered at the next start or refresh\t{s.url}"
        )
    if not records and not pending:
        click.echo(
            "no sources: add one with `coverbot sources add URL` or [[sources]] in the config"
        )


@sources.command("remove")
@click.argument("source_id", type=int)
@click.option("--purge", is_flag=True, help="Also remove the articles only it held.")
@click.pass_obj
def sources_remove(config: Config, source_id: int, purge: bool) -> None:
    """Forget a source (its articles stay unless --purge)."""
    from bot.sources.operations import AdminError, NoSuchSource, remove_source

    try:
        record, purged = with_services(config, lambda s: remove_source(s, source_id, purge=purge))
    except NoSuchSource as exc:
        raise click.ClickException(f"{exc} `coverbot sources list` lists them.") from exc
    except AdminError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"removed source #{record.id} {record.url}; {plural(purged, 'article')} purged")


@click.command()
@click.option("--source", "source_ids", type=int, multiple=True, help="Only this source id.")
@click.pass_obj
def refresh(config: Config, source_ids: tuple[int, ...]) -> None:
    """Refresh sources now and print the report; exits 1 if a source failed."""
    from bot.sources.refresh import refresh as run_refresh
    from bot.sources.refresh import summary_line

    report = with_services(config, lambda s: run_refresh(s, list(source_ids) or None))
    for item in report.sources:
        click.echo(f"#{item.source_id} {item.label}: {summary_line(item)}")
        for reason in item.rejected:  # at INFO in the log, which commands keep quiet
            click.echo(f"  skipped {reason}", err=True)
    click.echo(f"{plural(len(report.sources), 'source')} refreshed in {report.seconds:.1f}s")
    if any(item.error for item in report.sources):
        sys.exit(1)


@click.command()
@click.pass_obj
def reindex(config: Config) -> None:
    """Rebuild the index beside the live one and switch over when done."""
    bar, update = progress_bar("reindexing")
    try:
        fresh, report = open_index(config).rebuild(progress=update)
    except RebuildInProgress as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    click.echo(f"rebuilt as {fresh.generation}: {report.summary()}")
    click.echo("a running bot serves the new index after its next start")


@click.group()
def digests() -> None:
    """Digests of followed topics: run one now, or see the delivery log."""


@digests.command("run")
@click.option(
    "--slot", default=None, help="One cadence slot, e.g. daily:08:Asia/Gaza (default all)."
)
@click.option(
    "--now",
    "now_text",
    default=None,
    help="The clock to plan at, ISO 8601 with offset (default: now); for backfills and tests.",
)
@click.pass_obj
def digests_run(config: Config, slot: str | None, now_text: str | None) -> None:
    """Plan for the readers due now and send, then exit (a running bot does this on its
    schedule; runs never overlap within one process, use one at a time)."""
    from datetime import UTC, datetime

    from bot.digests.sending import run_digests
    from bot.telegram.app import bot_for, check_settings

    check_settings(config.telegram)
    now = datetime.fromisoformat(now_text) if now_text else datetime.now(UTC)
    if now.tzinfo is None:
        raise click.BadParameter("give the time with its offset, e.g. 2026-05-04T09:00:00+00:00")

    async def work(services: Services) -> RunReport:
        async with bot_for(config.telegram) as bot:
            await asyncio.to_thread(services.state.subscribers.recover_interrupted)
            return await run_digests(bot, services, slot, now)

    report = with_services(config, work)
    click.echo(report.summary())
    for error in report.errors[:20]:
        click.echo(f"  {error}", err=True)


@digests.command("status")
@click.pass_obj
def digests_status(config: Config) -> None:
    """Readers by cadence and the delivery log of the last day."""
    counts = read_state(config, lambda state: state.subscribers.counts())
    by_cadence = ", ".join(f"{k} {v}" for k, v in sorted(counts.active_by_cadence.items()))
    click.echo(f"active readers: {sum(counts.active_by_cadence.values())} ({by_cadence or 'none'})")
    click.echo(f"inactive readers: {counts.inactive}")
    click.echo(f"topics: {counts.topics} ({counts.distinct_topics} distinct)")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(counts.by_status.items()))
    click.echo(f"deliveries, last 24 hours: {statuses or 'none'}")
    click.echo(f"last run: {counts.last_run_at or 'never'}")
