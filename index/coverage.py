"""The coverage index: import articles, answer questions. The one entry point of `index`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import layout
from .answer import Answer, ArticleHit, Ranking, build_answer, group_by_article, quoted_hits
from .articles import Article, article_key
from .excerpts import ArticleSentences, shipped_model
from .lexical import LexicalIndex, tokenize
from .passages import Passage, embed_text, make_passages
from .retrieval import ScoredPassage, hybrid_search
from .sentence_store import assemble, sentence_texts
from .serving import IndexSettings, ServedGeneration, StorageError, collection_name
from .store import StoredArticle
from .topics import TopicMatch, TopicSettings, match_topics
from .vectors import make_client

__all__ = [
    "CoverageIndex",
    "EncoderMismatch",
    "ImportReport",
    "IndexSettings",
    "IndexStats",
    "StorageError",
    "collection_name",
    "remove_stale_generations",
]

log = logging.getLogger(__name__)

_BATCH_ARTICLES = 256


class EncoderMismatch(RuntimeError):
    """The index holds vectors from another encoder than the one importing into it."""


@dataclass(slots=True)
class ImportReport:
    """What an import did, for the summary line and the refresh report."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    passages_embedded: int = 0
    passages_removed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        return (
            f"imported {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"failed {self.failed}; embedded {self.passages_embedded} "
            f"passage{'' if self.passages_embedded == 1 else 's'} "
            f"in {self.seconds:.1f}s"
        )


@dataclass(frozen=True, slots=True)
class IndexStats:
    """Sizes and settings of the index."""

    articles: int
    passages: int
    vectors: int | None
    sources: int
    last_import: str | None
    data_dir: str
    model: str
    generation: str = ""
    # Passages stored before sentence vectors existed: their articles' excerpts are chosen by
    # the hand-weighted rule until `coverbot reindex`.
    without_sentence_vectors: int = 0


def remove_stale_generations(data_dir: Path, settings: IndexSettings) -> list[str]:
    """Remove generations no longer served (`layout.cleanup`) and, on a Chroma server,
    their collections, which would otherwise pile up there."""
    removed = layout.cleanup(data_dir)
    if removed and settings.chroma_url:
        client = make_client(None, settings.chroma_url)
        existing = {c.name if hasattr(c, "name") else str(c) for c in client.list_collections()}
        for name in removed:
            collection = collection_name(settings, name)
            if collection in existing:
                client.delete_collection(collection)
                log.info("deleted collection %s of stale generation %s", collection, name)
    return removed


class CoverageIndex(ServedGeneration):
    """Articles, passages and vectors under one data directory, searchable by question.

    Opening, following CURRENT and the one-writer rule live in `ServedGeneration`.
    """

    # -- writing ----------------------------------------------------------------------

    def import_articles(
        self,
        items: Iterable[Article],
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Add new articles, re-embed changed ones, skip unchanged ones."""
        report = ImportReport()
        t0 = time.perf_counter()
        with self.storage_errors("importing"), self.writable("importing"):
            self._check_encoder()
            batch: dict[str, Article] = {}
            for article in items:
                batch[article.key] = article  # the last version of a repeated URL wins
                if len(batch) >= _BATCH_ARTICLES:
                    self._import_batch(list(batch.values()), report, progress)
                    batch = {}
            if batch:
                self._import_batch(list(batch.values()), report, progress)
            if report.added or report.updated:
                self.store.set_meta("last_import", datetime.now(UTC).isoformat(timespec="seconds"))
        report.seconds = time.perf_counter() - t0
        return report

    def _check_encoder(self) -> None:
        """Record the encoder at the first import; refuse to add another encoder's vectors."""
        built = self.store.get_meta("encoder")
        if built is None:
            # Indexes from before the encoder was recorded were all built with torch.
            built = "torch" if self.store.counts()["passages"] else self.embedder.encoder
            self.store.set_meta("encoder", built)
        if built != self.embedder.encoder:
            raise EncoderMismatch(
                f"the index in {self.path} was built with encoder {built!r}, not "
                f"{self.embedder.encoder!r}: set [index] encoder = {built!r}, or rebuild the "
                f"index with {self.embedder.encoder!r} (coverbot reindex)"
            )

    def _import_batch(
        self,
        articles: Sequence[Article],
        report: ImportReport,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        to_save: list[tuple[Article, list[Passage]]] = []
        to_embed: list[tuple[str, str]] = []
        stale: list[str] = []
        for article in articles:
            old_hash = self.store.content_hash(article.key)
            if old_hash == article.content_hash:
                report.unchanged += 1
                continue
            passages = make_passages(
                article.key, article.title, article.body, self.settings.passage_chars
            )
            old_ids = set(self.store.passage_ids(article.key)) if old_hash else set()
            new_ids = {p.id for p in passages}
            stale.extend(old_ids - new_ids)
            to_embed.extend(
                (p.id, embed_text(article.title, p.text(article.body)))
                for p in passages
                if p.id not in old_ids
            )
            to_save.append((article, passages))
            if old_hash:
                report.updated += 1
            else:
                report.added += 1
        sentences = self._embed(to_save, to_embed, report, progress)
        if to_save:
            self.store.save_articles(to_save, sentences)
        if stale:
            self.vectors.delete(stale)
            report.passages_removed += len(stale)

    def _embed(
        self,
        to_save: Sequence[tuple[Article, Sequence[Passage]]],
        to_embed: Sequence[tuple[str, str]],
        report: ImportReport,
        progress: Callable[[int, int], None] | None,
    ) -> dict[str, np.ndarray]:
        """Embed the new passages (into the vector index) and every sentence that has no vector
        yet, in one pass; returns each saved passage's sentence vectors."""
        new_ids = {pid for pid, _ in to_embed}
        kept = self.store.passage_sentence_vectors(
            p.id for _, passages in to_save for p in passages if p.id not in new_ids
        )
        sentence_jobs: list[tuple[str, list[str]]] = [
            (p.id, sentence_texts(article.title, article.body, p))
            for article, passages in to_save
            for p in passages
            if p.id not in kept and (len(p.sentences) > 1 or p.id not in new_ids)
        ]
        texts = [t for _, t in to_embed] + [t for _, job in sentence_jobs for t in job]
        if not texts:
            return {}
        done = report.passages_embedded

        def tick(n: int) -> None:
            if progress:
                # Passages are what the bar counts; sentences ride along in the same batches.
                progress(done + n * len(to_embed) // len(texts), len(to_embed))

        encoder = self.import_embedder or self.embedder
        vectors = encoder.encode(texts, progress=tick)
        ids = [pid for pid, _ in to_embed]
        passage_vectors = dict(zip(ids, vectors[: len(ids)], strict=True))
        if to_embed:
            # Vectors first, then the store: a crash in between leaves only orphan vectors,
            # which searches skip and `cleanup` removes.
            self.vectors.upsert(ids, vectors[: len(ids)])
            report.passages_embedded += len(to_embed)
        fresh: dict[str, np.ndarray] = dict(kept)
        at = len(to_embed)
        for pid, job in sentence_jobs:
            fresh[pid] = vectors[at : at + len(job)]
            at += len(job)
        return assemble([p for _, ps in to_save for p in ps], passage_vectors, fresh)

    def remove(self, url: str) -> bool:
        """Remove one article by URL; True when it was there."""
        from .articles import canonical_url

        key = article_key(canonical_url(url))
        with self.storage_errors("removing an article"), self.writable("removing"):
            if self.store.get(key) is None:
                return False
            ids = self.store.delete_article(key)
            self.vectors.delete(ids)
        return True

    def rebuild(
        self, progress: Callable[[int, int], None] | None = None
    ) -> tuple[CoverageIndex, ImportReport]:
        """Build a new generation from the stored articles, then switch to it atomically.

        Readers keep using this index until the switch; a crash before it leaves this
        generation serving and the half-built one is removed by `layout.cleanup`.
        """
        with layout.rebuild_lock(self.data_dir):
            name = layout.new_generation(self.data_dir)
            fresh = CoverageIndex(self.data_dir, self.settings, self._embedder, generation=name)
            report = fresh.import_articles(
                (s.article for s in self.store.iter_articles()), progress=progress
            )
            # Re-imported articles would all look new to digests; keep when each first arrived.
            fresh.store.copy_first_seen(self.store)
            fresh.lexical  # noqa: B018 - build the BM25 index before serving
            fresh.store.set_meta("rebuilt_from", self.generation)
            layout.switch_to(self.data_dir, name)
            fresh._pinned = False  # it serves now, and follows CURRENT from here on
        return fresh, report

    def cleanup(self) -> int:
        """Delete vectors whose passages are gone (left by an interrupted import)."""
        with self.writable("removing orphan vectors"):
            orphans = self.vectors.all_ids() - self.store.all_passage_ids()
            if orphans:
                self.vectors.delete(sorted(orphans))
        return len(orphans)

    # -- reading ----------------------------------------------------------------------

    def search(
        self,
        question: str,
        query_vector: np.ndarray | None = None,
        lexical: LexicalIndex | None = None,
    ) -> tuple[list[str], list[ArticleHit]]:
        """Query terms and ranked article hits for a question."""
        terms = tokenize(question)
        if query_vector is None:
            query_vector = self.embedder.encode_query(question)
        scored: list[ScoredPassage] = hybrid_search(
            query_vector, terms, self.vectors, lexical or self.lexical, self.settings.retrieval
        )
        passages = self.store.get_passages(s.passage_id for s in scored)
        articles = self.store.get_many(p.article_key for p in passages.values())
        return terms, group_by_article(scored, passages, articles)

    def ask(self, question: str, query_vector: np.ndarray | None = None) -> Answer:
        """Answer a question with verbatim excerpts, or decline when the coverage is silent."""
        self.follow()
        question = " ".join(question.split())
        # One look at the store's revision per question, not one per step; an index with no
        # passages has an empty lexical index too (no COUNT queries on this hot path).
        lexical = self.lexical
        if not question or not lexical.ids:
            return Answer(question, False)
        if query_vector is None:
            query_vector = self.embedder.encode_query(question)
        terms, hits = self.search(question, query_vector, lexical)
        ranking = self.ranking(query_vector, hits)
        return build_answer(question, hits, terms, lexical, self.settings.answer, ranking)

    def ranking(self, query_vector: np.ndarray, hits: Sequence[ArticleHit]) -> Ranking | None:
        """The learned excerpt ranker's input for the articles an answer may quote, or None
        when it is off or no model ships (then excerpts are chosen by index/answer.py)."""
        settings = self.settings.answer
        model = shipped_model()
        if model is None or settings.excerpt_mode != "learned" or not hits:
            return None
        quoted = quoted_hits(hits, settings)
        found = self.store.sentence_vectors(h.article.key for h in quoted)
        articles = {
            hit.article.key: ArticleSentences.of(hit.article.article.body, *found[hit.article.key])
            for hit in quoted
            if hit.article.key in found
        }
        return Ranking(model, query_vector, articles)

    def ask_many(self, questions: Sequence[str]) -> list[Answer]:
        """Answer several questions, encoding them in one batch."""
        cleaned = [" ".join(q.split()) for q in questions]
        if not cleaned:
            return []
        self.follow()
        vectors = self.embedder.encode([q or " " for q in cleaned])
        return [self.ask(q, v) for q, v in zip(cleaned, vectors, strict=True)]

    def latest(self, limit: int = 10) -> list[Article]:
        """Newest articles first."""
        return self.store.latest(limit)

    def arrivals(self, since: datetime, until: datetime | None = None) -> list[StoredArticle]:
        """Articles first seen after `since` and up to `until` (default now), newest first.

        Times are timezone-aware. An article's first_seen is taken a moment before its
        import commits, so a digest should read up to a little before now and start its next
        window where this one ended, or an article committing meanwhile falls between them.
        """
        return self.store.arrivals(since, until)

    def match_topics(
        self,
        topics: Sequence[str],
        articles: Sequence[StoredArticle],
        settings: TopicSettings | None = None,
    ) -> dict[str, list[TopicMatch]]:
        """For each topic, which of `articles` match it (see `index.topics.match_topics`)."""
        return match_topics(self, topics, articles, settings)

    # -- what topic matching reads (`index.topics.TopicCorpus`) -----------------------

    def article_passages(self, article_key: str) -> list[Passage]:
        """All passages of one article in order."""
        return self.store.article_passages(article_key)

    def passage_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these passages; ids without one are left out."""
        return self.vectors.get_vectors(ids)

    def passage_sample(self, limit: int) -> list[str]:
        """Up to ``limit`` passage ids, the same on every call for the same store."""
        return self.store.passage_id_sample(limit)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` from this index's model, one row each."""
        return self.embedder.encode(list(texts))

    def stats(self, with_vectors: bool = True) -> IndexStats:
        """Counts and settings; `with_vectors=False` avoids opening Chroma."""
        self.follow()
        counts = self.store.counts()
        return IndexStats(
            articles=counts["articles"],
            passages=counts["passages"],
            vectors=self.vectors.count() if with_vectors else None,
            sources=counts["sources"],
            last_import=self.store.get_meta("last_import"),
            data_dir=str(self.data_dir),
            generation=self.generation,
            model=self.settings.model or "all-MiniLM-L6-v2 (bundled)",
            without_sentence_vectors=counts["without_sentence_vectors"],
        )

    def debug_hits(self, question: str, limit: int = 10) -> list[dict[str, Any]]:
        """Retrieved passages with their dense, lexical and fused scores (for `/why`)."""
        _, hits = self.search(question)
        return [h.debug() for h in hits[:limit]]
