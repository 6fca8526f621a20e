"""coverbot's adapter layer: Telegram, digests, sources, operations and the CLI over ``index``.

The modules at this level are the shared core of the adapter: ``config`` (typed TOML),
``types`` (plain report dataclasses, a leaf), ``state`` (the bot's own database),
``batcher`` (the one thread that touches the index) and ``services`` (what handlers and jobs
get). The subpackages are capabilities: ``telegram`` (the composition root, handlers,
rendering, jobs), ``digests``, ``sources``, ``ops``, ``cli`` and ``sandbox``. Everything here
imports the core only as ``from index import ...``; ``tests/test_architecture.py`` checks
that, the rules each subpackage states in its docstring, and that the import graph of
``bot`` and ``index`` has no cycle.
"""
