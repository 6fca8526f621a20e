"""Configuration: a TOML file into typed sections; unknown keys are errors, secrets from env."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.digests.cadence import CADENCES, TimezoneError, zone_of
from index import (
    DEFAULT_ENCODER,
    DEFAULT_USER_AGENT,
    ENCODERS,
    MB,
    SOURCE_KINDS,
    AnswerSettings,
    FetchSettings,
    IndexSettings,
    RetrievalSettings,
    TopicSettings,
)

ENV_CONFIG = "COVERBOT_CONFIG"
ENV_DATA_DIR = "COVERBOT_DATA_DIR"
ENV_TOKEN = "TELEGRAM_TOKEN"
# Service URLs from the environment (a container's compose file), over the config file.
ENV_CHROMA_URL = "COVERBOT_CHROMA_URL"
ENV_STATE_URL = "COVERBOT_STATE_URL"
DEFAULT_DATA_DIR = Path("coverbot-data")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the file and key."""


@dataclass(frozen=True, slots=True)
class IndexSection:
    """[index]: where the index lives and how articles are cut and embedded."""

    data_dir: str = str(DEFAULT_DATA_DIR)
    model: str = "all-MiniLM-L6-v2"
    encoder: str = DEFAULT_ENCODER
    passage_chars: int = 400
    chroma_url: str = ""


@dataclass(frozen=True, slots=True)
class TelegramSection:
    """[telegram]: the bot's connection to Telegram and how it answers."""

    token: str = ""
    api_base_url: str = ""
    admin_ids: tuple[int, ...] = ()
    mode: str = "polling"
    webhook_url: str = ""
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: str = ""
    excerpts_per_message: int = 3
    link_previews: bool = False
    bot_username: str = ""
    example_questions: tuple[str, ...] = (
        "What did Witkoff urge?",
        "How many aid trucks a day does Gaza need once the crossings reopen?",
        "what did unrwa warn about flour",
    )
    latest_count: int = 8
    error_report_seconds: int = 60
    # Each reader's allowance: questions a minute, and at once (0: no limit).
    questions_per_minute: int = 20
    questions_burst: int = 5


@dataclass(frozen=True, slots=True)
class StateSection:
    """[state]: the bot's own database (feedback, answers, sources, subscribers, digests)."""

    url: str = ""
    lease_seconds: int = 30


@dataclass(frozen=True, slots=True)
class RefreshSection:
    """[refresh]: how often sources are polled, how politely, and how failures back off."""

    interval_minutes: int = 30
    first_run_seconds: int = 60
    misfire_grace_seconds: int = 300
    allow_private_addresses: bool = False
    max_backoff_hours: float = 6.0
    notify_after_failures: int = 1
    full_listing_every: int = 6
    timeout_seconds: float = 30.0
    retries: int = 3
    # Everything one source's refresh (or probe) may take, all its pages and retries.
    source_deadline_seconds: float = 600.0
    # Fan-out per refresh: feed items read, child sitemaps fetched (the rest next time).
    max_feed_items: int = 200
    max_sitemaps: int = 50
    max_megabytes: int = 10
    user_agent: str = ""

    def source_limits(self, kind: str) -> dict[str, int]:
        """The fan-out caps of this section for a source kind (its own options win)."""
        limits = {
            "feed": {"max_items": self.max_feed_items},
            "sitemap": {"max_sitemaps": self.max_sitemaps},
        }
        return limits.get({"rss": "feed", "atom": "feed"}.get(kind, kind), {})

    def fetch_settings(self) -> FetchSettings:
        """The fetcher's limits and manners from this section."""
        return FetchSettings(
            user_agent=self.user_agent or DEFAULT_USER_AGENT,
            read_timeout=self.timeout_seconds,
            connect_timeout=min(10.0, self.timeout_seconds),
            total_timeout=max(4 * self.timeout_seconds, 30.0),
            deadline=self.source_deadline_seconds,
            retries=self.retries,
            max_bytes=self.max_megabytes * MB,
            allow_private=self.allow_private_addresses,
        )


@dataclass(frozen=True, slots=True)
class DigestsSection:
    """[digests]: followed topics, digest defaults and how fast digests are sent."""

    enabled: bool = True
    default_cadence: str = "daily"
    default_hour: int = 8
    default_timezone: str = "UTC"
    max_topics: int = 20
    max_articles: int = 30
    instant_check_minutes: int = 10
    messages_per_second: float = 25.0
    chat_seconds: float = 1.0
    group_seconds: float = 3.0
    max_attempts: int = 5
    misfire_grace_seconds: int = 3600
    meaning_threshold: float = 0.34
    max_age_days: int = 7


@dataclass(frozen=True, slots=True)
class SourceEntry:
    """One [[sources]] table: a source seeded into the state database at start."""

    kind: str
    url: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class MetricsSection:
    """[metrics]: the running bot's Prometheus endpoint (off by default)."""

    enabled: bool = False
    listen: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True, slots=True)
class LoggingSection:
    """[logging]: level and format of the log."""

    # Empty: INFO for `coverbot run`, WARNING for the other commands.
    level: str = ""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration."""

    index: IndexSection = field(default_factory=IndexSection)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    telegram: TelegramSection = field(default_factory=TelegramSection)
    state: StateSection = field(default_factory=StateSection)
    refresh: RefreshSection = field(default_factory=RefreshSection)
    digests: DigestsSection = field(default_factory=DigestsSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    logging: LoggingSection = field(default_factory=LoggingSection)
    sources: tuple[SourceEntry, ...] = ()
    path: str | None = None

    @property
    def data_dir(self) -> Path:
        """The data directory, with ~ expanded."""
        return Path(self.index.data_dir).expanduser()

    @property
    def state_url(self) -> str:
        """SQLAlchemy URL of the state database: [state] url, else a file in the data dir."""
        return self.state.url or f"sqlite:///{self.data_dir / 'state.sqlite3'}"

    def index_settings(self) -> IndexSettings:
        """The core's settings from this configuration."""
        return IndexSettings(
            model=self.index.model,
            encoder=self.index.encoder,
            passage_chars=self.index.passage_chars,
            chroma_url=self.index.chroma_url or None,
            retrieval=self.retrieval,
            answer=self.answer,
        )

    def topic_settings(self) -> TopicSettings:
        """How followed topics are matched to new articles."""
        return TopicSettings(meaning_threshold=self.digests.meaning_threshold)


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Check a TOML value against a field type; tuples come from TOML arrays."""
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(o for o in options if o is not type(None))
        origin = typing.get_origin(kind)
    if origin is tuple:
        (item_kind, _) = typing.get_args(kind)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be an array")
        return tuple(_coerce(v, item_kind, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind in (int, float, str, bool) and not (
        isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _section(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {where}.{unknown[0]} (known keys: {', '.join(sorted(names))})"
        )
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in table.items()})


_SECTIONS = {
    "index": IndexSection,
    "retrieval": RetrievalSettings,
    "answer": AnswerSettings,
    "telegram": TelegramSection,
    "state": StateSection,
    "refresh": RefreshSection,
    "digests": DigestsSection,
    "metrics": MetricsSection,
    "logging": LoggingSection,
}


def parse_config(data: dict[str, Any], path: str | None = None) -> Config:
    """Build a Config from parsed TOML, rejecting unknown sections and keys."""
    unknown = sorted(set(data) - set(_SECTIONS) - {"sources"})
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}] (known: {', '.join(sorted(_SECTIONS))})")
    sections = {
        name: _section(cls, data[name], name) for name, cls in _SECTIONS.items() if name in data
    }
    config = Config(**sections, sources=_sources(data.get("sources", [])), path=path)
    _validate(config)
    return config


def _sources(tables: Any) -> tuple[SourceEntry, ...]:
    """[[sources]] tables, each with a known kind and an absolute URL (or folder path)."""
    if not isinstance(tables, list):
        raise ConfigError("sources must be an array of tables: [[sources]]")
    entries = []
    for i, table in enumerate(tables):
        where = f"sources[{i}]"
        for key in ("kind", "url"):
            if key not in (table if isinstance(table, dict) else {}):
                raise ConfigError(f"{where}.{key} is missing")
        entry = _section(SourceEntry, table, where)
        if entry.kind not in SOURCE_KINDS:
            kinds = ", ".join(sorted(SOURCE_KINDS))
            raise ConfigError(f"{where}.kind {entry.kind!r} is not one of {kinds}")
        entries.append(entry)
    return tuple(entries)


def _validate(config: Config) -> None:
    if config.index.passage_chars < 100:
        raise ConfigError("index.passage_chars must be at least 100")
    if config.index.encoder not in ENCODERS:
        raise ConfigError(f"index.encoder must be one of {', '.join(map(repr, ENCODERS))}")
    if config.retrieval.fusion not in ("score", "rrf"):
        raise ConfigError("retrieval.fusion must be 'score' or 'rrf'")
    if not 0.0 <= config.retrieval.dense_weight <= 1.0:
        raise ConfigError("retrieval.dense_weight must be between 0 and 1")
    if config.telegram.mode not in ("polling", "webhook"):
        raise ConfigError("telegram.mode must be 'polling' or 'webhook'")
    if config.answer.max_excerpts < 1:
        raise ConfigError("answer.max_excerpts must be at least 1")
    if config.telegram.excerpts_per_message < 1:
        raise ConfigError("telegram.excerpts_per_message must be at least 1")
    if not 1 <= config.telegram.latest_count <= 30:
        raise ConfigError("telegram.latest_count must be between 1 and 30")
    if config.telegram.questions_per_minute < 0 or config.telegram.questions_burst < 1:
        raise ConfigError(
            "telegram.questions_per_minute must be 0 or more, telegram.questions_burst 1 or more"
        )
    if config.refresh.interval_minutes < 1:
        raise ConfigError("refresh.interval_minutes must be at least 1")
    if config.refresh.full_listing_every < 1:
        raise ConfigError("refresh.full_listing_every must be at least 1")
    if min(config.refresh.max_feed_items, config.refresh.max_sitemaps) < 1:
        raise ConfigError("refresh.max_feed_items and refresh.max_sitemaps must be at least 1")
    if config.refresh.source_deadline_seconds <= 0:
        raise ConfigError("refresh.source_deadline_seconds must be above 0")
    if config.refresh.notify_after_failures < 1:
        raise ConfigError("refresh.notify_after_failures must be at least 1")
    if config.state.lease_seconds < 3:
        raise ConfigError("state.lease_seconds must be at least 3")
    _validate_digests(config.digests)
    if not 0 <= config.metrics.port <= 65535:
        raise ConfigError("metrics.port must be 0-65535 (0: any free port)")


def _validate_digests(digests: DigestsSection) -> None:
    if digests.default_cadence not in CADENCES:
        raise ConfigError(f"digests.default_cadence must be one of {', '.join(CADENCES)}")
    if not 0 <= digests.default_hour <= 23:
        raise ConfigError("digests.default_hour must be 0-23")
    try:
        zone_of(digests.default_timezone)
    except TimezoneError as exc:
        raise ConfigError(f"digests.default_timezone: {exc}") from exc
    if digests.messages_per_second <= 0:
        raise ConfigError("digests.messages_per_second must be above 0")
    for key in (
        "max_topics",
        "max_articles",
        "instant_check_minutes",
        "max_attempts",
        "max_age_days",
    ):
        if getattr(digests, key) < 1:
            raise ConfigError(f"digests.{key} must be at least 1")


def load_config(path: str | Path | None = None, data_dir: str | Path | None = None) -> Config:
    """Read the config file (explicit, or $COVERBOT_CONFIG, or defaults) and the environment."""
    path = path or os.environ.get(ENV_CONFIG) or None
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    try:
        config = parse_config(data, str(path) if path else None)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from exc
    data_dir = data_dir or os.environ.get(ENV_DATA_DIR)
    if data_dir:
        config = dataclasses.replace(
            config, index=dataclasses.replace(config.index, data_dir=str(data_dir))
        )
    token = os.environ.get(ENV_TOKEN)
    if token:
        config = dataclasses.replace(
            config, telegram=dataclasses.replace(config.telegram, token=token)
        )
    chroma_url = os.environ.get(ENV_CHROMA_URL)
    if chroma_url:
        config = dataclasses.replace(
            config, index=dataclasses.replace(config.index, chroma_url=chroma_url)
        )
    state_url = os.environ.get(ENV_STATE_URL)
    if state_url:
        config = dataclasses.replace(config, state=dataclasses.replace(config.state, url=state_url))
    return config
