"""The ``coverbot`` command line: thin commands over the core and the bot's operations.

It owns the click commands (``main`` for import, ask, stats, eval, run; ``admin`` for
sources, refresh, reindex and digests), the terminal chat against the local sandbox
(``chat``) and evaluation charts (``eval_plot``). It is the outermost layer: it may import
everything in ``bot`` and ``index``; nothing imports it.
"""
