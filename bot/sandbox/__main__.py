"""Run the Bot API sandbox standalone.

``python -m bot.sandbox --host 127.0.0.1 --port 8081 --token TOKEN`` prints the base URL to
give PTB (``base_url``) and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from .server import DEFAULT_TOKEN, BotApiSandbox

logger = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument(
        "--token", action="append", help=f"bot token (repeatable; default {DEFAULT_TOKEN})"
    )
    parser.add_argument("--username", default="coverbot_test_bot", help="bot username")
    parser.add_argument("--first-name", default="Coverbot", help="bot first name")
    parser.add_argument(
        "--auto-chats", action="store_true", help="treat unknown user ids as private chats"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every call")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the sandbox, print its URLs and wait forever."""
    tokens = args.token or [DEFAULT_TOKEN]
    sandbox = BotApiSandbox(
        tokens[0],
        host=args.host,
        port=args.port,
        bot_username=args.username,
        bot_first_name=args.first_name,
        auto_chats=args.auto_chats,
    )
    for index, token in enumerate(tokens[1:], start=2):
        sandbox.add_bot(token, username=f"{args.username}{index}", first_name=args.first_name)
    if args.verbose:
        sandbox.add_listener(
            lambda r: logger.info("%s %s -> %s %s", r.method, r.params, r.status, r.description)
        )
    async with sandbox:
        print(sandbox.base_url, flush=True)
        print(f"file base URL: {sandbox.file_base_url}", flush=True)
        print(f"tokens: {', '.join(tokens)}", flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
