"""Sources of articles: the registry in the state database, the refresh, admin operations.

It owns the ``sources`` tables (``registry``), the one refresh used by the scheduled job, the
admin command and the CLI (``refresh``), and the admin operations behind both the commands
and the CLI (``operations``: add, remove, purge, stats, reindex). It may import ``index`` and
the core modules of ``bot``; never ``bot.telegram``, ``bot.digests``, ``bot.ops`` or
``bot.cli``.
"""
