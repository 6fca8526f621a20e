"""The core never depends on the Telegram layer."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"telegram", "apscheduler", "bot"}
INDEX = Path(__file__).resolve().parent.parent / "index"


def test_index_does_not_import_the_bot_layer() -> None:
    offenders = []
    for path in INDEX.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders
