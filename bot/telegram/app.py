"""The composition root: services, the PTB application, its handler table, its lifecycle.

`coverbot run` and `coverbot chat` (and the tests) share ``build_application`` and
``serve``; only where updates come from differs (Telegram, a local Bot API server, the
sandbox).
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from datetime import timedelta
from urllib.parse import urlsplit

from telegram import Bot, BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    ApplicationBuilder,
    BaseHandler,
    BaseRateLimiter,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.batcher import AskBatcher
from bot.config import Config, ConfigError, TelegramSection
from bot.ops.leader import Lease
from bot.ops.metrics import BotMetrics
from bot.services import (
    BotApplication,
    BotContext,
    BotData,
    FinishedUpdates,
    ReportLimiter,
    ServiceConfig,
    Services,
)
from bot.state import StateDB
from bot.telegram import admin, callbacks, handlers, subscriptions
from bot.telegram.errors import on_error
from bot.telegram.jobs import schedule_digests, schedule_lease, schedule_refresh
from index import CoverageIndex, remove_stale_generations

log = logging.getLogger(__name__)

CONTEXT_TYPES = ContextTypes(context=BotContext, bot_data=BotData)
COMMANDS = (
    BotCommand("ask", "Ask a question about our coverage"),
    BotCommand("latest", "The newest stories"),
    BotCommand("follow", "Follow a topic: new articles come in your digest"),
    BotCommand("following", "Your topics (and how to stop following them)"),
    BotCommand("digest", "When digests come; /digest now for a preview"),
    BotCommand("timezone", "Your time zone for digests"),
    BotCommand("help", "What I do and how to ask"),
)
# Retries after Telegram's 429 before a send fails for good.
FLOOD_RETRIES = 5
POLL_TIMEOUT = timedelta(seconds=10)
# "More" and feedback buttons stop working after this.
ANSWERS_KEPT = timedelta(days=30)
PRUNE_EVERY = timedelta(days=1)
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def handler_table() -> list[tuple[int, BaseHandler[Update, BotContext, None]]]:
    """Every handler with its group, in order: within a group the first match handles the
    update; groups run one after the other."""
    new = filters.UpdateType.MESSAGE  # an edited message is not a new question
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    return [
        # Commands, in any chat (in groups also as /ask@ourbot).
        (0, CommandHandler(["start", "help"], handlers.on_help, filters=new)),
        (0, CommandHandler("ask", handlers.on_ask, filters=new)),
        (0, CommandHandler("latest", handlers.on_latest, filters=new)),
        # Following topics and digest settings.
        (0, CommandHandler("follow", subscriptions.on_follow, filters=new)),
        (0, CommandHandler("unfollow", subscriptions.on_unfollow, filters=new)),
        (0, CommandHandler("following", subscriptions.on_following, filters=new)),
        (0, CommandHandler("digest", subscriptions.on_digest, filters=new)),
        (0, CommandHandler("timezone", subscriptions.on_timezone, filters=new)),
        # Admin commands (/sources, /addsource, /removesource, /refresh, /reindex, /stats,
        # /purge, /why), every one behind the one gatekeeper, admin.admin_only.
        *((0, handler) for handler in admin.command_handlers(new)),
        # Other commands: a hint in private; in groups they belong to other bots.
        (0, MessageHandler(new & private & filters.COMMAND, handlers.on_unknown_command)),
        # Questions: any text in private; in groups only if we are mentioned or replied to.
        (0, MessageHandler(new & private & filters.TEXT, handlers.on_private_text)),
        (0, MessageHandler(new & groups & filters.TEXT, handlers.on_group_text)),
        # Anything else sent privately (photos, stickers, empty text): ask for words.
        (0, MessageHandler(new & private, handlers.on_not_text)),
        # Buttons under our messages; unknown data gets a "no longer works" notice.
        (0, CallbackQueryHandler(handlers.on_more, pattern=callbacks.pattern(callbacks.MORE))),
        (
            0,
            CallbackQueryHandler(
                handlers.on_feedback, pattern=callbacks.pattern(callbacks.FEEDBACK)
            ),
        ),
        (
            0,
            CallbackQueryHandler(handlers.on_example, pattern=callbacks.pattern(callbacks.EXAMPLE)),
        ),
        (
            0,
            CallbackQueryHandler(
                subscriptions.on_unfollow_button, pattern=callbacks.pattern(callbacks.UNFOLLOW)
            ),
        ),
        (
            0,
            CallbackQueryHandler(
                subscriptions.on_digest_button, pattern=callbacks.pattern(callbacks.DIGEST)
            ),
        ),
        (0, CallbackQueryHandler(handlers.on_stale_button)),
        # Inline mode: @bot question, in any chat.
        (0, InlineQueryHandler(handlers.on_inline_query)),
        # The bot blocked, removed from a group, or back: digests stop or resume.
        (0, ChatMemberHandler(subscriptions.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)),
        # Someone promoted or demoted in a group: who may change its subscriptions.
        (0, ChatMemberHandler(subscriptions.on_chat_member, ChatMemberHandler.CHAT_MEMBER)),
        # Last, after the handlers above and any error handling: the update is done.
        (99, TypeHandler(Update, handlers.on_finished)),
    ]


def open_services(config: Config, index: CoverageIndex | None = None) -> Services:
    """The services for a configuration (``index`` lets tests share one)."""
    index = index or CoverageIndex(config.data_dir, config.index_settings())
    metrics = BotMetrics(config.metrics)
    state = StateDB(config.state_url, max_topics=config.digests.max_topics)
    state.sources.seed((s.kind, s.url, s.name) for s in config.sources)
    return Services(
        index=index,
        batcher=AskBatcher(
            index,
            metrics=metrics,
            per_minute=config.telegram.questions_per_minute,
            burst=config.telegram.questions_burst,
        ),
        state=state,
        config=ServiceConfig(
            telegram=config.telegram,
            refresh=config.refresh,
            fetch=config.refresh.fetch_settings(),
            digests=config.digests,
            topics=config.topic_settings(),
        ),
        reports=ReportLimiter(config.telegram.error_report_seconds),
        finished=FinishedUpdates(),
        metrics=metrics,
        lease=Lease(state.engine, ttl=timedelta(seconds=config.state.lease_seconds)),
    )


def check_settings(settings: TelegramSection) -> None:
    """What `run` needs beyond what the config loader checks."""
    if not settings.token:
        raise ConfigError("no bot token: set TELEGRAM_TOKEN or [telegram] token")
    if settings.mode == "webhook":
        if not settings.webhook_url:
            raise ConfigError("telegram.webhook_url is needed in webhook mode")
        if not _SECRET.match(settings.webhook_secret):
            raise ConfigError(
                "telegram.webhook_secret is needed in webhook mode: 1-256 of A-Z a-z 0-9 _ -"
            )


def api_urls(settings: TelegramSection) -> tuple[str, str]:
    """The Bot API's method and file base URLs for ``api_base_url``."""
    base = settings.api_base_url.rstrip("/")
    return base, re.sub(r"/bot$", "/file/bot", base)


def bot_for(settings: TelegramSection) -> Bot:
    """A plain Bot for one-off jobs outside the running application (`coverbot digests
    run`); digest sends are paced by ``SendPacer``, so no rate limiter is attached."""
    if settings.api_base_url:
        base, files = api_urls(settings)
        return Bot(settings.token, base_url=base, base_file_url=files)
    return Bot(settings.token)


def build_application(
    services: Services, *, rate_limiter: BaseRateLimiter[int] | None = None
) -> BotApplication:
    """The PTB application over ``services``; ``rate_limiter`` defaults to AIORateLimiter."""
    settings = services.config.telegram
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .context_types(CONTEXT_TYPES)
        .concurrent_updates(True)
        .rate_limiter(rate_limiter or AIORateLimiter(max_retries=FLOOD_RETRIES))
    )
    if settings.api_base_url:
        base, files = api_urls(settings)
        builder = builder.base_url(base).base_file_url(files)
    app: BotApplication = builder.build()  # type: ignore[assignment]
    app.bot_data.services = services
    for group, handler in handler_table():
        app.add_handler(handler, group)
    app.add_error_handler(on_error)
    return app


async def startup(app: BotApplication) -> None:
    """Before taking updates: drop stale index generations, load the model, forget old
    answers, schedule the refresh, register the commands."""
    services = app.bot_data.services
    assert services is not None
    index = services.index
    removed = await asyncio.to_thread(remove_stale_generations, index.data_dir, index.settings)
    if removed:
        log.info("removed %d stale index generations", len(removed))
    await services.batcher.call(services.index.encode, ["warm up"])
    stats = await services.batcher.call(services.index.stats, False)
    if stats.articles == 0:
        log.warning("the index is empty: import coverage with `coverbot import`")
    log.info("%d articles indexed", stats.articles)
    services.metrics.observe_index(stats.articles, stats.passages)
    services.metrics.start()
    await prune_answers(app.bot_data)
    assert app.job_queue is not None
    app.job_queue.run_repeating(
        prune_answers_job, interval=PRUNE_EVERY, first=PRUNE_EVERY, name="prune-answers"
    )
    schedule_refresh(app.job_queue, services.config.refresh)
    if services.config.digests.enabled:
        slots = await asyncio.to_thread(schedule_digests, app.job_queue, services)
        log.info("digest jobs for %d slots", len(slots))
    await schedule_lease(app.job_queue, services)
    await app.bot.set_my_commands(COMMANDS)


async def prune_answers(bot_data: BotData) -> int:
    """Forget answers older than ANSWERS_KEPT (their buttons then say so)."""
    assert bot_data.services is not None
    pruned = await asyncio.to_thread(bot_data.services.state.prune_answers, ANSWERS_KEPT)
    log.info("forgot %d answers older than %s", pruned, ANSWERS_KEPT)
    return pruned


async def prune_answers_job(context: BotContext) -> None:
    """The daily job around ``prune_answers``."""
    await prune_answers(context.bot_data)


async def receive(app: BotApplication, settings: TelegramSection) -> None:
    """Start taking updates: long polling, or a webhook server checking the secret token."""
    assert app.updater is not None
    kinds = Update.ALL_TYPES
    if settings.mode == "webhook":
        await app.updater.start_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url,
            secret_token=settings.webhook_secret,
            allowed_updates=kinds,
        )
    else:
        await app.updater.start_polling(timeout=POLL_TIMEOUT, allowed_updates=kinds)


async def serve(app: BotApplication, stop: asyncio.Event) -> None:
    """Run the bot until ``stop`` is set, then shut down in order."""
    services = app.bot_data.services
    assert services is not None and app.updater is not None
    await services.batcher.start()
    try:
        async with app:
            try:
                await startup(app)
                await app.start()
                await receive(app, services.config.telegram)
                log.info(
                    "coverbot is running as @%s (%s)",
                    app.bot.username,
                    services.config.telegram.mode,
                )
                await stop.wait()
            finally:
                if app.updater.running:
                    await app.updater.stop()
                if app.running:
                    await app.stop()
    finally:
        await services.batcher.stop()
        if services.lease is not None and services.lease.held:
            await asyncio.to_thread(services.lease.release)
        services.state.close()
        services.metrics.stop()
    log.info("coverbot stopped")


async def run_until_signalled(app: BotApplication) -> None:
    """``serve`` until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(app, stop)


def run_bot(config: Config) -> None:
    """`coverbot run`: the bot against Telegram (or ``api_base_url``) until a signal."""
    check_settings(config.telegram)
    app = build_application(open_services(config))
    asyncio.run(run_until_signalled(app))
