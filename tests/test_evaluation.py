"""Evaluation knows when the index lacks the articles its questions are about."""

from __future__ import annotations

from index.evaluation import GoldMatcher, Question


def test_missing_gold_articles() -> None:
    gold = GoldMatcher([("https://n.example/a", "Alpha body."), ("https://n.example/b", "Beta.")])
    questions = [
        Question("1", "About a?", "https://n.example/a"),
        Question("2", "About c?", "https://n.example/c"),
        Question("3", "Unanswerable?", None),
    ]
    assert [q.id for q in gold.missing(questions)] == ["2"]
    assert [q.id for q in GoldMatcher([]).missing(questions)] == ["1", "2"]
