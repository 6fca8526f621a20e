"""From retrieved passages to an answer: one excerpt per article, or a decline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .excerpts import ArticleSentences, RankerModel, pick, term_weights
from .lexical import LexicalIndex, tokenize
from .passages import Passage, Span, split_sentences
from .qtype import answer_type, offers
from .retrieval import ScoredPassage
from .store import StoredArticle


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """How excerpts are chosen and when the index declines to answer."""

    max_excerpts: int = 5
    excerpt_chars: int = 400
    max_sentences: int = 3
    # Confidence below which the index declines (calibrated on questions the corpus cannot
    # answer; see benchmarks/README.md). Confidence is the best dense similarity among the
    # best article's passages, less miss_penalty times the question weight the article lacks,
    # plus margin_bonus times its lead over the next article.
    decline_below: float = 0.36
    miss_penalty: float = 0.4
    margin_bonus: float = 0.5
    # Queries of at most this many words, all found in the best article, are lookups of
    # a name or a phrase and are answered whatever the dense similarity.
    lookup_terms: int = 2
    # "combined" (above) or "fused" (the best fused score alone; used by the baselines).
    confidence_mode: str = "combined"
    # Further excerpts must score at least this share of the best one.
    relative_floor: float = 0.80
    # Bonus for a passage or sentence that offers the kind of answer asked for (a number
    # for "how many", a name for "who"), when choosing within an article.
    answer_type_bonus: float = 0.05
    # How many of an article's best passages compete for its excerpt.
    passages_considered: int = 4
    # Within an article, the weight of dense similarity against lexical coverage: the words
    # of the question are all over the article, so they rank its passages less well than
    # they rank articles (dev fact@1 69.7% -> 74.2% at 0.8 alone).
    excerpt_dense_weight: float = 0.7
    # Weight of the previous passage's dense similarity: news writing announces a topic,
    # then gives its detail in the next paragraph, so the passage after the one that echoes
    # the question often holds the answer (with the weight above: dev 69.7% -> 80.3%,
    # held-out test 61.5% -> 65.6%).
    lead_in_weight: float = 0.2
    # "learned": the excerpt ranker's best sentence and its neighbours (index/excerpts.py),
    # where the article has sentence vectors and a model ships; "window": the best run of
    # sentences by the weights above; "passage": the best passage as it is (baselines).
    excerpt_mode: str = "learned"


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
    # The answering sentence inside `text` ([start, end) offsets into it), or None for a
    # one-sentence excerpt; renderers mark it.
    answer_span: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape of an excerpt."""
        return {
            "url": self.url,
            "title": self.title,
            "published_at": self.published_at,
            "text": self.text,
            "score": round(self.score, 4),
            "answer_span": list(self.answer_span) if self.answer_span else None,
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


def _coverage_in(terms: Sequence[str], present: set[str], lexical: LexicalIndex) -> float:
    """IDF-weighted share of the query's terms found in a set of terms."""
    wanted = dict.fromkeys(terms)
    total = sum(lexical.idf_of(t) for t in wanted)
    if not total:
        return 0.0
    return sum(lexical.idf_of(t) for t in wanted if t in present) / total


def _coverage(terms: Sequence[str], text: str, lexical: LexicalIndex) -> float:
    """IDF-weighted share of the query's terms that occur in a text."""
    return _coverage_in(terms, set(tokenize(text)), lexical)


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
    question: str,
    query_terms: Sequence[str],
    lexical: LexicalIndex,
    settings: AnswerSettings,
) -> Span:
    """The run of one to three sentences that best answers, from the article's best passages.

    A passage that offers the kind of answer the question wants (a number for "how many",
    a name for "who"), or that follows one close to the question, is preferred over one
    that only repeats the question's words.
    """
    body = hit.article.article.body
    kind = answer_type(question)
    dense_by_ordinal = {p.ordinal: sp.dense for p, sp in hit.passages}
    weight = settings.excerpt_dense_weight

    def passage_score(item: tuple[Passage, ScoredPassage]) -> float:
        passage, sp = item
        return (
            weight * sp.dense
            + (1 - weight) * sp.lexical_norm
            + settings.lead_in_weight * dense_by_ordinal.get(passage.ordinal - 1, 0.0)
            + settings.answer_type_bonus * offers(kind, passage.text(body), question)
        )

    passage, _ = max(hit.passages[: settings.passages_considered], key=passage_score)
    if (
        len(passage.sentences) <= settings.max_sentences
        and passage.end - passage.start <= settings.excerpt_chars
    ):
        return Span(passage.start, passage.end)
    best: tuple[float, int, Span] | None = None
    for span in _windows(passage.sentences, settings.excerpt_chars, settings.max_sentences):
        text = body[span.start : span.end]
        score = _coverage(query_terms, text, lexical) + settings.answer_type_bonus * offers(
            kind, text, question
        )
        # Ties go to the longer window: more context for the same evidence.
        key = (round(score, 4), span.end - span.start, span)
        if best is None or key[:2] > best[:2]:
            best = key
    assert best is not None
    return best[2]


def confidence(
    hits: Sequence[ArticleHit],
    query_terms: Sequence[str],
    lexical: LexicalIndex,
    settings: AnswerSettings,
) -> float:
    """How sure the index is that its best article answers the question.

    The best dense similarity among the article's passages, less the share of the question's
    weight (IDF) that the whole article never mentions, plus the lead over the runner-up.
    Measured on the development questions, this separates unanswerable questions better
    than the fused score or rank agreement (benchmarks/README.md).
    """
    if not hits:
        return 0.0
    top = hits[0]
    if settings.confidence_mode == "fused":
        return top.scored.fused
    art = top.article.article
    present = set(tokenize(f"{art.title}\n{art.body}"))
    miss = 1.0 - _coverage_in(query_terms, present, lexical)
    margin = top.scored.fused - (hits[1].scored.fused if len(hits) > 1 else 0.0)
    dense = max(sp.dense for _, sp in top.passages)
    sure = dense - settings.miss_penalty * miss + settings.margin_bonus * margin
    if len(set(query_terms)) <= settings.lookup_terms and miss == 0.0:
        # A lookup ("Lazzarini", "rafah crossing"): a short query has a low dense similarity
        # to any passage, but an article holding all its words does answer it.
        sure = max(sure, top.scored.lexical_norm)
    return sure


@dataclass(frozen=True, slots=True)
class Ranking:
    """What the learned excerpt ranker needs: its model, the question's vector, and the
    sentences (with vectors) of the articles that have them, by article key."""

    model: RankerModel
    query_vector: np.ndarray
    articles: dict[str, ArticleSentences]


def quoted_hits(hits: Sequence[ArticleHit], settings: AnswerSettings) -> list[ArticleHit]:
    """The articles an answer quotes: the best few, each within `relative_floor` of the best."""
    if not hits:
        return []
    floor = hits[0].scored.fused * settings.relative_floor
    return [h for h in hits[: settings.max_excerpts] if h.scored.fused >= floor]


def build_answer(
    question: str,
    hits: Sequence[ArticleHit],
    query_terms: Sequence[str],
    lexical: LexicalIndex,
    settings: AnswerSettings,
    ranking: Ranking | None = None,
) -> Answer:
    """Decline on weak evidence; otherwise one excerpt for each of the best articles."""
    sure = confidence(hits, query_terms, lexical, settings)
    if not hits or sure < settings.decline_below:
        return Answer(question, False, (), sure)
    weights = term_weights(query_terms, lexical)
    excerpts = []
    for hit in quoted_hits(hits, settings):
        sentences = ranking.articles.get(hit.article.key) if ranking else None
        if settings.excerpt_mode == "passage":
            span, sentence = Span(hit.passage.start, hit.passage.end), None
        elif settings.excerpt_mode == "learned" and ranking and sentences:
            chosen = pick(
                ranking.model,
                question,
                ranking.query_vector,
                weights,
                sentences,
                settings.excerpt_chars,
                settings.max_sentences,
            )
            span = chosen.window
            sentence = _inside(chosen.sentence, span)
        else:
            span = choose_excerpt(hit, question, query_terms, lexical, settings)
            sentence = answering_sentence(hit, span, question, query_terms, lexical, settings)
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
                answer_span=sentence,
            )
        )
    return Answer(question, True, tuple(excerpts), sure)


def _inside(sentence: Span, window: Span) -> tuple[int, int] | None:
    """A sentence's offsets inside its excerpt; None when the excerpt is that sentence."""
    if sentence == window:
        return None
    return (sentence.start - window.start, sentence.end - window.start)


def answering_sentence(
    hit: ArticleHit,
    span: Span,
    question: str,
    query_terms: Sequence[str],
    lexical: LexicalIndex,
    settings: AnswerSettings,
) -> tuple[int, int] | None:
    """The sentence of an excerpt to mark, as offsets into the excerpt: the one holding most
    of the question's weight, with the answer-type bonus (ties: the first). None for a
    one-sentence excerpt: it is all the answer."""
    text = hit.article.article.body[span.start : span.end]
    sentences = split_sentences(text)
    if len(sentences) < 2:
        return None
    kind = answer_type(question)

    def score(s: Span) -> float:
        part = text[s.start : s.end]
        return _coverage(query_terms, part, lexical) + settings.answer_type_bonus * offers(
            kind, part, question
        )

    best = max(sentences, key=score)
    return (best.start, best.end)
