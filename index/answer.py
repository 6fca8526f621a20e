"""From retrieved passages to an answer: one excerpt per article, or a decline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .lexical import LexicalIndex, tokenize
from .passages import Passage, Span
from .retrieval import ScoredPassage
from .store import StoredArticle


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """How excerpts are chosen and when the index declines to answer."""

    max_excerpts: int = 5
    excerpt_chars: int = 400
    max_sentences: int = 3
    # Fused score below which the best passage is not evidence enough (calibrated on
    # questions the corpus cannot answer; see benchmarks/README.md).
    decline_below: float = 0.40
    # Further excerpts must score at least this share of the best one.
    relative_floor: float = 0.80
    # Within an article, weight of lexical coverage when choosing the sentences.
    sentence_lexical_weight: float = 0.5


@dataclass(frozen=True, slots=True)
class Excerpt:
    """A verbatim cut from one article, with what a reader needs to cite it."""

    url: str
    title: str
    published_at: str | None
    text: str
    score: float
    start: int
    end: int
    article_key: str = field(repr=False, default="")

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape of an excerpt."""
        return {
            "url": self.url,
            "title": self.title,
            "published_at": self.published_at,
            "text": self.text,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """The reply to a question: excerpts best first, or `answered=False` with none."""

    question: str
    answered: bool
    excerpts: tuple[Excerpt, ...] = ()
    confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape of an answer (the CLI and evaluation contract)."""
        return {
            "question": self.question,
            "answered": self.answered,
            "excerpts": [e.to_dict() for e in self.excerpts],
        }


@dataclass(frozen=True, slots=True)
class ArticleHit:
    """An article's best passage and score in one search."""

    article: StoredArticle
    passage: Passage
    scored: ScoredPassage
    passages: tuple[tuple[Passage, ScoredPassage], ...]

    def debug(self) -> dict[str, Any]:
        """Scores for diagnostics (`/why`)."""
        return {"url": self.article.article.url, **asdict(self.scored)}


def group_by_article(
    scored: Sequence[ScoredPassage],
    passages: dict[str, Passage],
    articles: dict[str, StoredArticle],
) -> list[ArticleHit]:
    """One hit per article, ranked by its best passage; newer articles win ties."""
    per_article: dict[str, list[tuple[Passage, ScoredPassage]]] = {}
    for sp in scored:
        passage = passages.get(sp.passage_id)
        if passage is None or passage.article_key not in articles:
            continue  # a vector whose passage is gone: skipped until cleanup removes it
        per_article.setdefault(passage.article_key, []).append((passage, sp))
    hits = [
        ArticleHit(articles[key], items[0][0], items[0][1], tuple(items))
        for key, items in per_article.items()
    ]
    hits.sort(
        key=lambda h: (round(h.scored.fused, 4), h.article.article.published_at or ""),
        reverse=True,
    )
    return hits


def _coverage(terms: Sequence[str], text: str, lexical: LexicalIndex) -> float:
    """IDF-weighted share of the query's terms that occur in a text."""
    wanted = dict.fromkeys(terms)
    total = sum(lexical.idf_of(t) for t in wanted)
    if not total:
        return 0.0
    present = set(tokenize(text))
    return sum(lexical.idf_of(t) for t in wanted if t in present) / total


def _windows(sentences: Sequence[Span], max_chars: int, max_sentences: int) -> list[Span]:
    """Every run of 1..max_sentences consecutive sentences that fits in max_chars."""
    out = []
    for i, first in enumerate(sentences):
        for j in range(i, min(i + max_sentences, len(sentences))):
            if sentences[j].end - first.start > max_chars and j > i:
                break
            out.append(Span(first.start, sentences[j].end))
    return out


def choose_excerpt(
    hit: ArticleHit,
    query_terms: Sequence[str],
    lexical: LexicalIndex,
    settings: AnswerSettings,
) -> Span:
    """The window of one to three sentences that best answers, cut from the best passages."""
    body = hit.article.article.body
    best: tuple[float, int, Span] | None = None
    w = settings.sentence_lexical_weight
    for passage, sp in hit.passages[:3]:
        for span in _windows(passage.sentences, settings.excerpt_chars, settings.max_sentences):
            cov = _coverage(query_terms, body[span.start : span.end], lexical)
            # Prefer the passage's own evidence, then words of the question, then brevity.
            score = (1 - w) * sp.fused + w * cov
            length = span.end - span.start
            key = (round(score, 4), -length, span)
            if best is None or key[:2] > best[:2]:
                best = key
    assert best is not None
    return best[2]


def build_answer(
    question: str,
    hits: Sequence[ArticleHit],
    query_terms: Sequence[str],
    lexical: LexicalIndex,
    settings: AnswerSettings,
) -> Answer:
    """Decline on weak evidence; otherwise one excerpt for each of the best articles."""
    if not hits or hits[0].scored.fused < settings.decline_below:
        confidence = hits[0].scored.fused if hits else 0.0
        return Answer(question, False, (), confidence)
    top = hits[0].scored.fused
    excerpts = []
    for hit in hits[: settings.max_excerpts]:
        if hit.scored.fused < max(settings.decline_below, top * settings.relative_floor):
            break
        span = choose_excerpt(hit, query_terms, lexical, settings)
        art = hit.article.article
        excerpts.append(
            Excerpt(
                url=art.url,
                title=art.title,
                published_at=art.published_at,
                text=art.body[span.start : span.end],
                score=hit.scored.fused,
                start=span.start,
                end=span.end,
                article_key=hit.article.key,
            )
        )
    return Answer(question, True, tuple(excerpts), top)
