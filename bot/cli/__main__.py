"""``python -m bot.cli``: the same as the ``coverbot`` command."""

from bot.cli.main import main

main()
