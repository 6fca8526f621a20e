"""Admin messages as escaped Telegram HTML, pure functions like `render`: sources and their
health, refresh reports, stats, `/why` scores, rebuild progress."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.telegram.render import Block, join, link, pack, shorten, tag, text
from bot.types import AdminStats, RefreshReport, SourceRecord, SourceReport, plural
from index import WEB_SOURCE_KINDS, ImportReport

ADMIN_USAGE = {
    "addsource": f"/addsource URL [{'|'.join(WEB_SOURCE_KINDS)}]",
    "removesource": "/removesource ID [purge]",
    "refresh": "/refresh [ID]",
    "purge": "/purge ARTICLE_URL",
    "why": "/why QUESTION",
}


def not_admin_message() -> str:
    """A polite refusal for anyone not in admin_ids."""
    return "Sorry, that command is only for the editors who run this bot."


def usage_message(command: str) -> str:
    """How to use an admin command."""
    return "Usage: " + tag("code", text(ADMIN_USAGE[command])).html


def error_message(problem: str) -> str:
    """An admin operation that could not be done."""
    return text(problem).html


def busy_message() -> str:
    """A refresh or rebuild is already running."""
    return "A refresh or rebuild is running; try again when it has finished."


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "never"


def _health(record: SourceRecord, now: datetime) -> Block:
    if record.failing:
        line = (
            f"⚠️ failing ×{record.consecutive_failures} since {_when(record.last_error_at)}: "
            f"{shorten(record.last_error or '', 300)}"
        )
        if record.next_attempt_at and record.next_attempt_at > now:
            line += f"; next try {_when(record.next_attempt_at)}"
        return text(line)
    if record.last_success_at is None:
        return text("not fetched yet")
    return text(f"✅ ok, last success {_when(record.last_success_at)}")


def sources_parts(records: Sequence[SourceRecord], now: datetime) -> list[str]:
    """/sources: every source with its kind, articles and health."""
    if not records:
        return ["No sources yet. Add one with " + tag("code", text(ADMIN_USAGE["addsource"])).html]
    blocks = [tag("b", text(f"Sources ({len(records)})"))]
    for r in records:
        name = link(r.url, text(shorten(r.label, 120)))
        head = tag("b", text(f"#{r.id} {r.kind}")) + text(" ") + name
        state = "" if r.enabled else " (disabled)"
        blocks.append(
            join([head, text(f"{plural(r.articles, 'article')}{state}"), _health(r, now)])
        )
    return pack(blocks)


def source_added_message(record: SourceRecord) -> str:
    """After /addsource."""
    head = text(f"Added source #{record.id} ({record.kind}): ") + link(record.url, text(record.url))
    then = text(f"Its articles arrive with the next refresh; /refresh {record.id} fetches now.")
    return join([head, then]).html


def source_removed_message(record: SourceRecord, purged: int) -> str:
    """After /removesource."""
    lines = [text(f"Removed source #{record.id} ({shorten(record.label, 200)}).")]
    if purged:
        held = "The article" if purged == 1 else f"{purged} articles"
        were = "was" if purged == 1 else "were"
        lines.append(text(f"{held} only it held {were} removed from the index."))
    else:
        lines.append(text("Its articles stay in the index (add “purge” to remove them)."))
    if record.added_by is None:
        lines.append(text("It is listed in the config file: remove it there too, or it returns."))
    return join(lines).html


def purge_message(url: str, found: bool) -> str:
    """After /purge."""
    if found:
        return text(f"Removed {url} from the index.").html
    return text(f"{url} was not in the index.").html


def _source_line(item: SourceReport) -> Block:
    name = tag("b", text(f"#{item.source_id} {shorten(item.label, 80)}"))
    if item.skipped_until is not None:
        return join([name, text(f"backing off until {_when(item.skipped_until)}")])
    counts = text(
        f"+{item.added} new, {item.updated} updated, {item.removed} removed, "
        f"{item.unchanged} unchanged, {item.failed} failed, {item.seconds:.1f}s"
    )
    lines = [name, counts]
    if item.error:
        lines.append(text(f"⚠️ {shorten(item.error, 300)}"))
    return join(lines)


def refresh_report_parts(report: RefreshReport) -> list[str]:
    """/refresh: one entry per source, then what changed in health."""
    if report.busy:
        return [busy_message()]
    if not report.sources:
        return ["There are no sources to refresh."]
    head = tag(
        "b", text(f"Refreshed {plural(len(report.sources), 'source')} in {report.seconds:.1f}s")
    )
    blocks = [head, *(_source_line(s) for s in report.sources)]
    changes = _health_changes(report)
    return pack([*blocks, join(changes)] if changes else blocks)


def health_changes_message(report: RefreshReport) -> str | None:
    """Sources that started failing or recovered, for the admin chats (None: no change)."""
    changes = _health_changes(report)
    return join(changes).html if changes else None


def _health_changes(report: RefreshReport) -> list[Block]:
    lines: list[Block] = []
    for item in report.started_failing:
        lines.append(
            text(f"⚠️ Source #{item.source_id} {shorten(item.label, 80)} is failing: ")
            + text(shorten(item.error or "", 300))
        )
    for item in report.recovered:
        lines.append(text(f"✅ Source #{item.source_id} {shorten(item.label, 80)} recovered."))
    return lines


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def stats_message(stats: AdminStats) -> str:
    """/stats."""
    latency = (
        f"{stats.latency[0] * 1000:.0f} ms p50, {stats.latency[1] * 1000:.0f} ms p95"
        if stats.latency
        else "no questions yet"
    )
    lines = [
        tag("b", text("Coverage index")),
        text(f"Articles: {stats.articles}"),
        text(f"Passages: {stats.passages}"),
        text(f"Sources: {stats.sources} ({stats.failing_sources} failing)"),
        text(f"Subscribers: {stats.subscribers}"),
        text(f"Last refresh: {_when(stats.last_refresh)}"),
        text(f"Index on disk: {_size(stats.index_bytes)} ({stats.generation})"),
        text(f"Answer latency: {latency}"),
    ]
    return join(lines).html


def why_parts(question: str, hits: Sequence[dict[str, Any]]) -> list[str]:
    """/why: the retrieved passages with their dense, lexical and fused scores."""
    head = tag("b", text(f"Retrieval for: {shorten(question, 300)}"))
    if not hits:
        return [join([head, text("Nothing was retrieved.")]).html]
    blocks = [head]
    for rank, hit in enumerate(hits, 1):
        ranks = f"dense #{hit.get('dense_rank') or '-'}, lexical #{hit.get('lexical_rank') or '-'}"
        scores = (
            f"fused {hit['fused']:.3f} · dense {hit['dense']:.3f} · "
            f"lexical {hit['lexical']:.2f} (norm {hit['lexical_norm']:.2f}) · {ranks}"
        )
        url = str(hit["url"])
        head = text(f"{rank}. ") + link(url, text(shorten(url, 200)))
        blocks.append(join([head, tag("code", text(scores))]))
    return pack(blocks)


def reindex_progress_message(done: int, total: int) -> str:
    """The message edited in place while /reindex runs."""
    if total <= 0:
        return "Rebuilding the index…"
    return f"Rebuilding the index… {done}/{total} passages embedded ({100 * done // total}%)."


def reindex_done_message(report: ImportReport, seconds: float, generation: str) -> str:
    """/reindex has switched over."""
    return text(
        f"Rebuilt the index in {seconds:.0f}s: {plural(report.added, 'article')}, "
        f"{plural(report.passages_embedded, 'passage')}, {report.failed} failed. "
        f"Now serving {generation}."
    ).html
