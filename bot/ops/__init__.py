"""Running the bot in production: health checks, Prometheus metrics, the scheduler lease.

It owns ``coverbot health`` (``health``), the metrics registry and endpoint (``metrics``) and
the lease that elects one replica to run scheduled jobs (``leader``). It may import ``index``,
the core modules of ``bot`` and ``bot.sources.registry`` (health reads the sources); never
``bot.telegram``, ``bot.digests`` or ``bot.cli``.
"""
