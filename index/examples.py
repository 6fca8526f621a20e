"""Examples for readers taken from the index's own coverage, never promised blind.

/start offers example questions as buttons and suggests a topic to follow. An example the
index cannot answer ("What did Witkoff urge?" over an outlet that never wrote about him) makes
the bot look broken on the first tap, so examples are the configured questions the index
answers, then questions about the names its newest headlines mention most.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .coverage import CoverageIndex

_WORD = re.compile(r"[^\W\d_][\w'’.-]*")
# Capitalised words that are not names, whether at the start of a headline or after a colon.
_NOT_NAMES = frozenset(
    "a an and as at but by for from how in is it its of on or the to up what when where who "
    "why with after amid as over under new says say said live watch analysis".split()
)
_HEADLINES_READ = 50


def _is_capitalised(word: str) -> bool:
    return word[0].isupper() and word.lower() not in _NOT_NAMES


def names_in_headlines(titles: Sequence[str]) -> list[str]:
    """Names (runs of capitalised words, a headline's first word only when a capitalised
    one follows, and acronyms) that the headlines mention, most mentioned first, ties in
    the order of `titles`.

    Headlines in Title Case are skipped: every word is capitalised there, names or not.
    """
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for title in titles:
        words = [
            w.rstrip(".-'’").removesuffix("'s").removesuffix("’s") for w in _WORD.findall(title)
        ]
        words = [w for w in words if w]
        if len(words) >= 4 and sum(w[0].isupper() for w in words) > 0.6 * len(words):
            continue
        run: list[str] = []
        padded = [*words, ""]
        for i, word in enumerate(padded):
            acronym = len(word) >= 2 and word.isupper()
            # A headline's first word is capitalised anyway: a name only when the next
            # word is capitalised too ("Steve Witkoff urges..."), or an acronym.
            name_start = i > 0 or (bool(padded[1]) and _is_capitalised(padded[1]))
            if word and (acronym or (name_start and _is_capitalised(word))):
                run.append(word)
                continue
            if run:
                name = " ".join(run)
                counts[name] += 1
                first_seen.setdefault(name, len(first_seen))
                run = []
    return sorted(counts, key=lambda n: (-counts[n], first_seen[n]))


def example_questions(index: CoverageIndex, configured: Sequence[str], limit: int = 3) -> list[str]:
    """Up to `limit` questions the index answers: the configured ones first, then
    "What about NAME?" for the names its newest headlines mention most."""
    names = names_in_headlines([a.title for a in index.latest(_HEADLINES_READ)])
    candidates = list(dict.fromkeys([*configured, *(f"What about {n}?" for n in names)]))
    chosen: list[str] = []
    for start in range(0, len(candidates), 8):
        batch = candidates[start : start + 8]
        chosen += [q for q, a in zip(batch, index.ask_many(batch), strict=True) if a.answered]
        if len(chosen) >= limit:
            break
    return chosen[:limit]


def example_topic(index: CoverageIndex) -> str | None:
    """A name to suggest following (`/follow NAME`): the one the newest headlines mention
    most, or None for an empty index."""
    names = names_in_headlines([a.title for a in index.latest(_HEADLINES_READ)])
    return names[0] if names else None
