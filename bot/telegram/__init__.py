"""The Telegram layer: the composition root (``app``), handlers, replies, jobs, rendering.

It owns everything that speaks PTB's ``Update``/``Message``/``JobQueue``: the handler table,
the thin handlers for readers (``handlers``), followers (``subscriptions``) and admins
(``admin``), the scheduled jobs (``jobs``), the error handler, and the pure renderers
(``render`` and ``render_admin``: data in, escaped Telegram HTML out) with the callback-data
protocol (``callbacks``). It may import ``index``, the core modules of ``bot``, and
``bot.digests``, ``bot.sources`` and ``bot.ops``; never ``bot.cli`` or ``bot.sandbox``. The
renderers and ``callbacks`` import no database, operation or Telegram network code.
"""
