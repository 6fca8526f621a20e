"""Topics readers follow, and which new articles match them (for digests).

A topic matches an article by its words (every content word of the topic, stemmed, occurs
in the headline and body, close together) or by its meaning (the topic's embedding is nearer
one of the article's stored passage vectors than it is to the coverage on average). Matching
runs once per distinct topic, over the articles that arrived since the last digest, and
re-encodes no article.

Why "than the coverage on average": an outlet's articles share a subject (every passage of a
Gaza outlet is about Gaza), so a topic like "Gaza reconstruction plan" has a high raw cosine
with nearly every article, while "fishing" has a low one even with the article about
fishermen. Subtracting the topic's similarity to the mean passage vector of the coverage
(a fixed sample of it) puts topics and outlets on one scale. Measured with
benchmarks/topic_match.py: the threshold that lets through 1 wrong article per 1,000 per
topic on the BBC corpus admits 28 wrong topic-article pairs on the Gaza fixture table with
raw cosine, and none with this score.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import numpy as np

from .lexical import tokenize
from .passages import Passage, Span
from .store import StoredArticle


class TopicCorpus(Protocol):
    """What topic matching reads from an index (``CoverageIndex`` provides it)."""

    def article_passages(self, article_key: str) -> list[Passage]:
        """All passages of one article in order."""
        ...

    def passage_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these passages; ids without one are left out."""
        ...

    def passage_sample(self, limit: int) -> list[str]:
        """Up to ``limit`` passage ids, the same on every call."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``, one row each."""
        ...


MAX_TOPIC_CHARS = 80
MAX_TOPIC_WORDS = 8
_CHUNK = re.compile(r"\S+")


def normalize_topic(text: str) -> str:
    """The topic as it will be stored and shown: trimmed, single spaces, case kept.

    Raises ValueError with a reason a reader can act on. A topic of only common words
    ("the", "who") is refused too: its words could never match and its meaning is vague.
    """
    topic = " ".join(text.split())
    if not topic:
        raise ValueError("The topic is empty: send a name or a few words, like “aid convoys”.")
    if len(topic) > MAX_TOPIC_CHARS:
        raise ValueError(
            f"The topic is {len(topic)} characters long; keep it to {MAX_TOPIC_CHARS} or fewer."
        )
    if not any(ch.isalnum() for ch in topic):
        raise ValueError("The topic needs letters or digits, like “ceasefire talks”.")
    words = len(topic.split())
    if words > MAX_TOPIC_WORDS:
        raise ValueError(
            f"The topic has {words} words; use at most {MAX_TOPIC_WORDS}, like “aid convoys”."
        )
    if not tokenize(topic):
        raise ValueError(
            f"“{topic}” has only common words; add a name or a subject, like “Rafah crossing”."
        )
    return topic


@dataclass(frozen=True, slots=True)
class TopicSettings:
    """How topics match articles; the bot's `[digests]` config maps onto this."""

    # How much nearer (in cosine) the topic must be to an article's best passage than to the
    # coverage's average passage for the article to match by meaning. Chosen with
    # benchmarks/topic_match.py: the lowest value giving at most 1 wrong match per 1,000
    # articles per topic on a corpus that does not cover the topics (BBC news); 0.21 is
    # best for F1 on the fixture table but lets ~19 wrong matches per 1,000 through there.
    meaning_threshold: float = 0.34
    # Passages whose mean vector stands for "the coverage on average"; 0 compares raw
    # cosine similarities instead (the baseline in the benchmark).
    baseline_passages: int = 4096
    # A topic of several words matches by words only when all of them lie within this many
    # consecutive content words of one paragraph (stop words not counted); None accepts them
    # anywhere in a paragraph. 16 has the best words-only F1 on the fixture table.
    words_span: int | None = 16
    excerpt_chars: int = 280


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """One article matching one topic, with a verbatim excerpt that shows why."""

    topic: str
    url: str
    title: str
    published: datetime | None
    first_seen: datetime
    # The best cosine similarity between the topic and the article's passages, less the
    # topic's similarity to the coverage's average passage; set whatever matched, it ranks
    # how relevant the article is to the topic.
    score: float
    how: Literal["words", "meaning"]
    excerpt: str


@dataclass(frozen=True, slots=True)
class _Text:
    """An article's sentences and content words, tokenized once for every topic."""

    stored: StoredArticle
    passages: list[Passage]
    sentences: list[Span]
    sentence_terms: list[list[str]]
    title_terms: list[str]
    # Per paragraph of the body: its content words, and the sentence each one belongs to.
    paragraphs: list[tuple[list[str], list[int]]]
    terms: frozenset[str]
    # Index into `sentences` of each passage's first sentence.
    passage_first: dict[str, int]

    @classmethod
    def of(cls, stored: StoredArticle, passages: list[Passage]) -> _Text:
        body = stored.article.body
        sentences = [s for p in passages for s in p.sentences]
        sentence_terms = [tokenize(body[s.start : s.end]) for s in sentences]
        paragraphs: list[tuple[list[str], list[int]]] = []
        for i, span in enumerate(sentences):
            if i == 0 or "\n\n" in body[sentences[i - 1].end : span.start]:
                paragraphs.append(([], []))
            paragraphs[-1][0].extend(sentence_terms[i])
            paragraphs[-1][1].extend([i] * len(sentence_terms[i]))
        title_terms = tokenize(stored.article.title)
        passage_first: dict[str, int] = {}
        seen = 0
        for p in passages:
            passage_first[p.id] = seen
            seen += len(p.sentences)
        return cls(
            stored,
            passages,
            sentences,
            sentence_terms,
            title_terms,
            paragraphs,
            frozenset(title_terms).union(*sentence_terms),
            passage_first,
        )


def _shortest_run(terms: Sequence[str], wanted: frozenset[str]) -> tuple[int, int] | None:
    """The first shortest run terms[i..j] (inclusive) that holds every wanted term."""
    counts: dict[str, int] = {}
    best: tuple[int, int] | None = None
    left = 0
    for right, term in enumerate(terms):
        if term not in wanted:
            continue
        counts[term] = counts.get(term, 0) + 1
        while len(counts) == len(wanted):
            if best is None or right - left < best[1] - best[0]:
                best = (left, right)
            gone = terms[left]
            left += 1
            if gone in counts:
                counts[gone] -= 1
                if not counts[gone]:
                    del counts[gone]
    return best


def _words_match(text: _Text, wanted: frozenset[str], span: int | None) -> list[int] | None:
    """Indexes of the body sentences where the topic's words occur together, or None.

    Together means within `span` content words of one paragraph, or all in the headline
    (then the list is empty).
    """
    if not wanted or not wanted <= text.terms:
        return None
    best: tuple[int, list[int]] | None = None
    for terms, owners in text.paragraphs:
        run = _shortest_run(terms, wanted)
        if run and (best is None or run[1] - run[0] < best[0]):
            best = (run[1] - run[0], owners[run[0] : run[1] + 1])
    if best and (span is None or best[0] < max(span, len(wanted))):
        return sorted(set(best[1]))
    if wanted <= set(text.title_terms):
        return []
    return None


def _anchor(body: str, span: Span, wanted: frozenset[str]) -> int:
    """Where the first of the topic's words starts in a sentence (its start if none does)."""
    for chunk in _CHUNK.finditer(body, span.start, span.end):
        if wanted.intersection(tokenize(chunk.group())):
            return chunk.start()
    return span.start


def _cut(body: str, span: Span, limit: int, anchor: int) -> str:
    """At most `limit` characters of a long sentence, cut at spaces, with `anchor` inside."""
    start = span.start
    if anchor - start > limit // 2:
        space = body.rfind(" ", span.start, anchor - limit // 4)
        start = space + 1 if space >= 0 else span.start
    end = min(span.end, start + limit)
    if end < span.end:
        space = body.rfind(" ", start, end + 1)
        if space > start:
            end = space
    return body[start:end].strip()


def _excerpt(text: _Text, sentences: Sequence[int], wanted: frozenset[str], limit: int) -> str:
    """The given run of sentences if it fits, else as much as fits from its best sentence.

    The best sentence holds the most of the topic's words (the first of equals); whole
    sentences after it are added while they fit, and a sentence too long on its own is cut
    at spaces around the topic's first word. Always a verbatim substring of the body.
    """
    body = text.stored.article.body
    first, last = text.sentences[sentences[0]], text.sentences[sentences[-1]]
    if last.end - first.start <= limit:
        return body[first.start : last.end]
    focus = max(sentences, key=lambda i: (len(wanted.intersection(text.sentence_terms[i])), -i))
    span = text.sentences[focus]
    if span.end - span.start > limit:
        return _cut(body, span, limit, _anchor(body, span, wanted))
    end = span.end
    for i in range(focus + 1, sentences[-1] + 1):
        if text.sentences[i].end - span.start > limit:
            break
        end = text.sentences[i].end
    return body[span.start : end]


def _published(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _match(
    topic: str,
    wanted: frozenset[str],
    text: _Text,
    closest: tuple[float, Passage] | None,
    settings: TopicSettings,
) -> TopicMatch | None:
    """Whether one topic matches one article, by words first, then by meaning."""
    score, passage = closest if closest else (0.0, None)
    sentences = _words_match(text, wanted, settings.words_span)
    how: Literal["words", "meaning"]
    if sentences is not None:
        how = "words"
    elif passage is not None and score >= settings.meaning_threshold:
        how = "meaning"
    else:
        return None
    if not sentences:
        # Meaning, or words held together only by the headline: quote the body sentence with
        # the most of the topic's words, else the passage closest in meaning.
        counts = [len(wanted.intersection(t)) for t in text.sentence_terms]
        if how == "words" and max(counts, default=0):
            sentences = [counts.index(max(counts))]
        else:
            first = text.passage_first[passage.id] if passage else 0
            sentences = list(range(first, first + (len(passage.sentences) if passage else 1)))
    article = text.stored.article
    return TopicMatch(
        topic=topic,
        url=article.url,
        title=article.title,
        published=_published(article.published_at),
        first_seen=text.stored.first_seen,
        score=score,
        how=how,
        excerpt=_excerpt(text, sentences, wanted, settings.excerpt_chars),
    )


def _coverage_mean(index: TopicCorpus, passages: int) -> np.ndarray | None:
    """The mean stored vector of a fixed sample of the index's passages (None if it has none)."""
    vectors = index.passage_vectors(index.passage_sample(passages))
    return np.mean(np.vstack(list(vectors.values())), axis=0) if vectors else None


def match_topics(
    index: TopicCorpus,
    topics: Sequence[str],
    articles: Sequence[StoredArticle],
    settings: TopicSettings | None = None,
) -> dict[str, list[TopicMatch]]:
    """For each topic, the articles that match it, most similar first.

    Every topic is a key of the result, with an empty list when nothing matches. Topics are
    encoded in one batch; articles are compared through their stored passage vectors.
    """
    settings = settings or TopicSettings()
    distinct = list(dict.fromkeys(topics))
    result: dict[str, list[TopicMatch]] = {t: [] for t in distinct}
    unique = list({s.key: s for s in articles}.values())
    if not distinct or not unique:
        return result
    texts = [_Text.of(s, index.article_passages(s.key)) for s in unique]
    stored = index.passage_vectors([p.id for t in texts for p in t.passages])
    # Each article's vectors are one run of columns of the similarity matrix.
    with_vectors = [[p for p in t.passages if p.id in stored] for t in texts]
    bounds = np.cumsum([0] + [len(ps) for ps in with_vectors])
    similarity = np.zeros((len(distinct), 0), dtype=np.float32)
    if bounds[-1]:
        matrix = np.vstack([stored[p.id] for ps in with_vectors for p in ps])
        topic_vectors = index.encode(distinct)
        similarity = topic_vectors @ matrix.T
        mean = (
            _coverage_mean(index, settings.baseline_passages)
            if settings.baseline_passages
            else None
        )
        if mean is not None:
            similarity -= (topic_vectors @ mean)[:, None]
    for row, topic in enumerate(distinct):
        wanted = frozenset(tokenize(topic))
        for n, text in enumerate(texts):
            closest = None
            if with_vectors[n]:
                sims = similarity[row, bounds[n] : bounds[n + 1]]
                best = int(np.argmax(sims))
                closest = (float(sims[best]), with_vectors[n][best])
            match = _match(topic, wanted, text, closest, settings)
            if match:
                result[topic].append(match)
        result[topic].sort(key=lambda m: (-m.score, -m.first_seen.timestamp()))
    return result
