"""Digests: readers' topics and schedules, the delivery log, planning and sending digests.

It owns the subscription tables (``store``), local-clock cadences (``cadence``), the send
pacing (``pacing``), the digest renderer (``render``, pure) and digest runs (``sending``).
It may import ``index``, the core modules of ``bot`` and the pure Telegram primitives
(``bot.telegram.render``, ``bot.telegram.callbacks``); never the rest of ``bot.telegram``,
nor ``bot.sources``, ``bot.ops`` or ``bot.cli``.
"""
