"""`coverbot health`: can this bot serve? For a container's HEALTHCHECK and for operators.

Four checks, each printed on one line: the state database is readable at the schema this
coverbot expects, the index store opens (articles and Chroma), the model loads and encodes,
and no enabled source is overdue for a refresh. Every check only reads: none migrates the
state database, creates an index generation or fetches anything, so it is safe beside a
running bot.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import sqlalchemy as sa

from bot.config import Config, RefreshSection
from bot.types import SourceRecord, plural

# A healthy source last attempted at t is overdue from t + 3 refresh intervals: the job
# missed two runs. A source resting after failures gets the same slack after its back-off.
DEFAULT_STALE_AFTER = 3.0


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        """One line for people and for `docker inspect`."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def _reason(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's background links."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else ''}"[:300]


def check_state(config: Config) -> tuple[Check, list[SourceRecord] | None]:
    """The state database answers at the current schema; returns its sources too."""
    from bot.sources.registry import SourceRegistry
    from bot.state import MIGRATIONS, schema_version

    try:
        url = sa.make_url(config.state_url)
    except sa.exc.ArgumentError as exc:
        return Check("state", False, f"not a database URL: {_reason(exc)}"), None
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return Check("state", False, f"no database at {shown} (the bot creates it at start)"), None
    try:
        engine = sa.create_engine(url)
    except sa.exc.NoSuchModuleError:
        return Check("state", False, f"{shown}: unknown database kind {url.drivername!r}"), None
    except ImportError as exc:
        return Check("state", False, f"{shown}: its driver is not installed ({exc})"), None
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.select(schema_version.c.version)).scalar_one_or_none()
        records = SourceRegistry(engine).records()
    except sa.exc.SQLAlchemyError as exc:
        return Check("state", False, f"{shown}: {_reason(exc)}"), None
    finally:
        engine.dispose()
    if version != len(MIGRATIONS):
        detail = f"{shown}: schema version {version}, this coverbot expects {len(MIGRATIONS)}"
        return Check("state", False, detail), None
    return Check("state", True, f"{shown}: schema version {version}"), records


def check_index(config: Config) -> Check:
    """The serving generation opens: its article store and its Chroma collection."""
    from index import CoverageIndex, IndexPointerError, RebuildInProgress, serving_generation

    try:
        generation = serving_generation(config.data_dir)
    except IndexPointerError as exc:
        return Check("index", False, str(exc))
    if generation is None or not (config.data_dir / generation).is_dir():
        return Check("index", False, f"no index in {config.data_dir} (the bot creates it)")
    settings = config.index_settings()
    where = settings.chroma_url or "embedded Chroma"
    try:
        index = CoverageIndex(config.data_dir, settings, generation=generation)
        index.open_wait = 0.0  # a health check never waits for a writer
        try:
            stats = index.stats()
        finally:
            index.close()
    except RebuildInProgress:
        return Check("index", True, f"{generation} ({where}): being written by an import")
    except Exception as exc:  # whatever breaks the store is the finding
        return Check("index", False, f"{generation} ({where}): {_reason(exc)}")
    counts = f"{plural(stats.articles, 'article')}, {plural(stats.vectors or 0, 'vector')}"
    detail = f"{counts} in {generation} ({where})"
    if stats.without_sentence_vectors:
        # Answers still come; those articles' excerpts are chosen the older way.
        detail += (
            f"; {plural(stats.without_sentence_vectors, 'passage')} without sentence vectors "
            "(from an older coverbot): run coverbot reindex"
        )
    return Check("index", True, detail)


def check_model(config: Config) -> Check:
    """The embedding model loads and encodes a word to a unit vector."""
    from index import Embedder

    t0 = time.perf_counter()
    try:
        embedder = Embedder(config.index.model, encoder=config.index.encoder)
        vectors = embedder.encode(["health"])
    except Exception as exc:  # a missing package, bad weights, no memory: all unhealthy
        return Check("model", False, f"{config.index.model}: {_reason(exc)}")
    norm = float((vectors[0] ** 2).sum()) ** 0.5
    if vectors.shape[0] != 1 or abs(norm - 1.0) > 1e-3:
        return Check("model", False, f"{embedder.name}: bad vector (norm {norm:.3f})")
    seconds = time.perf_counter() - t0
    return Check("model", True, f"{embedder.name}: {vectors.shape[1]} dimensions in {seconds:.1f}s")


def overdue(
    record: SourceRecord, settings: RefreshSection, now: datetime, stale_after: float
) -> timedelta | None:
    """How late a source's refresh is, or None while it is not overdue.

    A source is due one interval after its last attempt (or after it was added), or when its
    back-off after failures ends; late means ``stale_after - 1`` intervals past that.
    """
    interval = timedelta(minutes=settings.interval_minutes)
    due = record.next_attempt_at or (record.last_refresh_at or record.added_at) + interval
    late = now - due - interval * (stale_after - 1)
    return late if late > timedelta(0) else None


def check_refresh(
    records: list[SourceRecord],
    settings: RefreshSection,
    now: datetime,
    stale_after: float = DEFAULT_STALE_AFTER,
) -> Check:
    """Every enabled source was attempted recently enough (nothing to check without any)."""
    enabled = [r for r in records if r.enabled]
    if not enabled:
        return Check("refresh", True, "no sources registered")
    late = [(r, lateness) for r in enabled if (lateness := overdue(r, settings, now, stale_after))]
    if late:
        record, lateness = max(late, key=lambda pair: pair[1])
        minutes = int(lateness.total_seconds() // 60)
        detail = (
            f"{len(late)} of {plural(len(enabled), 'source')} overdue; {record.label} by "
            f"{minutes} min "
            f"(last attempt {_when(record.last_refresh_at)})"
        )
        return Check("refresh", False, detail)
    newest = max((r.last_refresh_at for r in enabled if r.last_refresh_at), default=None)
    return Check("refresh", True, f"{plural(len(enabled), 'source')}, last refresh {_when(newest)}")


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def run_checks(
    config: Config, *, stale_after: float = DEFAULT_STALE_AFTER, now: datetime | None = None
) -> list[Check]:
    """Every check, in order; the refresh check needs a readable state database."""
    state, records = check_state(config)
    checks = [state, check_index(config), check_model(config)]
    if records is None:
        checks.append(Check("refresh", False, "unknown: the state database is not readable"))
    else:
        checks.append(check_refresh(records, config.refresh, now or datetime.now(UTC), stale_after))
    return checks


@click.command()
@click.option(
    "--stale-after",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_STALE_AFTER,
    show_default=True,
    help="A source is overdue this many refresh intervals after its last attempt.",
)
@click.pass_obj
def health(config: Config, stale_after: float) -> None:
    """Check the state database, the index, the model and the refreshes; exit 1 if one fails."""
    checks = run_checks(config, stale_after=stale_after)
    for check in checks:
        click.echo(check.line())
    if not all(check.ok for check in checks):
        sys.exit(1)
