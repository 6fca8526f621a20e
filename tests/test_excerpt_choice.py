"""Choosing the excerpt inside an article, on hand-made scores (no model, no index)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from index.answer import AnswerSettings, ArticleHit, choose_excerpt
from index.articles import Article
from index.lexical import LexicalIndex, tokenize
from index.passages import make_passages
from index.retrieval import ScoredPassage
from index.store import StoredArticle

QUESTION = "Which rugby league club could Wales train with?"
BODY = (
    "Wales could follow England's lead by training with a rugby league club.\n\n"
    "England have already had a session with Leeds Rhinos, and Wales are thought to be "
    "interested in a similar clinic with rivals St Helens.\n\n"
    "A cross-code deal took a stand-off from Leeds to Cardiff in 2001."
)
# (dense, lexical_norm) per paragraph, as measured for this question on the BBC corpus:
# the opening line echoes the question, the next paragraph answers it.
SCORES = ((0.83, 1.0), (0.74, 0.88), (0.66, 0.89))


def _hit() -> ArticleHit:
    article = Article(url="https://news.example/wales", title="Wales eye league", body=BODY)
    passages = make_passages(article.key, article.title, BODY, 400)
    assert len(passages) == len(SCORES)
    scored = [
        ScoredPassage(p.id, d, 0.0, ln, 0.6 * d + 0.4 * ln, i, i)
        for i, (p, (d, ln)) in enumerate(zip(passages, SCORES, strict=True))
    ]
    items = tuple(sorted(zip(passages, scored, strict=True), key=lambda it: -it[1].fused))
    stored = StoredArticle(article.key, article, "hash", "now", datetime.now(UTC))
    return ArticleHit(stored, items[0][0], items[0][1], items)


def _lexical() -> LexicalIndex:
    return LexicalIndex.build([(str(i), p) for i, p in enumerate(BODY.split("\n\n"))], 1)


def _excerpt(settings: AnswerSettings) -> str:
    span = choose_excerpt(_hit(), QUESTION, tokenize(QUESTION), _lexical(), settings)
    return BODY[span.start : span.end]


def test_the_paragraph_after_the_echo_is_chosen() -> None:
    assert "St Helens" in _excerpt(AnswerSettings())


def test_without_lead_in_the_echo_wins() -> None:
    settings = dataclasses.replace(AnswerSettings(), lead_in_weight=0.0, excerpt_dense_weight=0.6)
    assert _excerpt(settings).startswith("Wales could follow")
