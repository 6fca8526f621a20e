"""The callback-data protocol: one prefix per kind of button, every encoder read back."""

from __future__ import annotations

import re

from bot.telegram import callbacks


def test_prefixes_are_unique_and_none_is_a_prefix_of_another() -> None:
    prefixes = [f"{p}:" for p in callbacks.PREFIXES]
    assert len(set(prefixes)) == len(prefixes)
    assert not [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)]


def test_every_encoder_is_parsed_by_its_own_parser_only() -> None:
    longest_id = "A" * 16
    encoded = {
        "more": callbacks.more(longest_id, 999),
        "helpful": callbacks.feedback(longest_id, 999, callbacks.HELPFUL),
        "wrong": callbacks.feedback(longest_id, 999, callbacks.WRONG_QUOTE),
        "example": callbacks.example(2),
        "unfollow": callbacks.unfollow(10**12 - 1),
        **{choice: callbacks.digest(choice) for choice in callbacks.DIGEST_CHOICES},
    }
    for data in encoded.values():
        assert len(data.encode()) <= callbacks.MAX_CALLBACK_BYTES
        readers = [
            callbacks.parse_press(data) is not None,
            callbacks.parse_unfollow(data) is not None,
            callbacks.parse_digest(data) is not None,
        ]
        assert sum(readers) == 1, data
    assert callbacks.parse_press(encoded["more"]) == callbacks.MorePress(longest_id, 999)
    assert callbacks.parse_press(encoded["wrong"]) == callbacks.FeedbackPress(
        longest_id, 999, callbacks.WRONG_QUOTE
    )
    assert callbacks.parse_press(encoded["example"]) == callbacks.ExamplePress(2)
    assert callbacks.parse_unfollow(encoded["unfollow"]) == 10**12 - 1
    assert [callbacks.parse_digest(callbacks.digest(c)) for c in callbacks.DIGEST_CHOICES] == list(
        callbacks.DIGEST_CHOICES
    )


def test_handler_patterns_route_each_prefix_to_one_handler() -> None:
    for prefix in callbacks.PREFIXES:
        data = f"{prefix}:x"
        matching = [p for p in callbacks.PREFIXES if re.match(callbacks.pattern(p), data)]
        assert matching == [prefix]


def test_junk_is_refused() -> None:
    for junk in (None, "", "u:", "u:abc", "d:hourly", "d:", "zzz", "m:a b:1"):
        assert callbacks.parse_unfollow(junk) is None
        assert callbacks.parse_digest(junk) is None
        assert callbacks.parse_press(junk) is None
