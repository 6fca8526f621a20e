"""The coverage index: import articles, answer questions. The one entry point of `index`."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from . import layout
from .answer import Answer, AnswerSettings, ArticleHit, build_answer, group_by_article
from .articles import Article, article_key
from .embeddings import DEFAULT_ENCODER, Embedder
from .lexical import LexicalIndex, tokenize
from .passages import Passage, embed_text, make_passages
from .retrieval import RetrievalSettings, ScoredPassage, hybrid_search
from .store import ArticleStore, StoredArticle, storage_error, unwritable
from .topics import TopicMatch, TopicSettings, match_topics
from .vectors import VectorStore, make_client, open_embedded

log = logging.getLogger(__name__)

_BATCH_ARTICLES = 256


class EncoderMismatch(RuntimeError):
    """The index holds vectors from another encoder than the one importing into it."""


class StorageError(RuntimeError):
    """The disk under the index is full or read-only; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """Everything that shapes the index; the bot's config maps onto this."""

    model: str | None = None
    # "onnx" or "torch" (index/embeddings.py); an index keeps the encoder it was built with.
    encoder: str = DEFAULT_ENCODER
    passage_chars: int = 400
    chroma_url: str | None = None
    collection: str = "passages"
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)


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
            f"failed {self.failed}; embedded {self.passages_embedded} passages "
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


def collection_name(settings: IndexSettings, generation: str) -> str:
    """The Chroma collection of a generation: on a shared server each has its own."""
    return f"{settings.collection}-{generation}" if settings.chroma_url else settings.collection


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


class CoverageIndex:
    """Articles, passages and vectors under one data directory, searchable by question.

    One writer at a time across processes (`layout.writer_lock`); it writes in place only
    while no other process has the generation open, otherwise a copy that then becomes
    CURRENT. Readers follow CURRENT before each answer (`follow`), so an import from another
    process shows up at the next question, without a restart.
    """

    def __init__(
        self,
        data_dir: Path,
        settings: IndexSettings | None = None,
        embedder: Embedder | None = None,
        generation: str | None = None,
    ):
        self.data_dir = data_dir
        self.settings = settings or IndexSettings()
        self._embedder = embedder
        self._vectors: VectorStore | None = None
        self._lexical: LexicalIndex | None = None
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._swap_lock = threading.RLock()
        # Set while this process imports: answers keep the last BM25 index meanwhile.
        self._writing = threading.Event()
        # A fixed generation (a rebuild's) is never left for CURRENT's.
        self._pinned = generation is not None
        self._open(generation or layout.current_generation(data_dir))

    def _open(self, generation: str) -> None:
        """Serve from `generation` (its vectors open on first use); drop the previous one."""
        with self._swap_lock:
            old_vectors = self._vectors
            self.generation = generation
            self.path = self.data_dir / generation
            self.store = ArticleStore(self.path / "articles.sqlite3")
            self._vectors = None
            self._lexical = None
            if old_vectors is not None:
                self._release(old_vectors)

    def _release(self, vectors: VectorStore) -> None:
        vectors.close()
        if not self.settings.chroma_url:
            layout.close_generation(vectors.path)

    def follow(self) -> bool:
        """Serve the generation CURRENT names, if another writer switched it; True if so."""
        if self._pinned:
            return False
        serving = layout.serving_generation(self.data_dir)
        if serving is None or serving == self.generation:
            return False
        with self._swap_lock:
            if serving != self.generation:
                log.info("index generation %s replaced %s; following it", serving, self.generation)
                self._open(serving)
        return True

    # -- parts, opened on first use ---------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        """The embedding model (loaded on first encode)."""
        if self._embedder is None:
            self._embedder = Embedder(self.settings.model, encoder=self.settings.encoder)
        return self._embedder

    @property
    def vectors(self) -> VectorStore:
        """The Chroma collection."""
        with self._swap_lock:
            if self._vectors is None:
                embedded = not self.settings.chroma_url
                if embedded:  # registered before opening: writers elsewhere now copy
                    layout.open_generation(self.path)
                try:
                    snapshot = None
                    if embedded:
                        client, snapshot = open_embedded(self.path / "chroma")
                    else:
                        client = make_client(None, self.settings.chroma_url)
                    # On a shared Chroma server each generation has its own collection.
                    name = collection_name(self.settings, self.generation)
                    self._vectors = VectorStore(client, name, self._embedder, self.path, snapshot)
                except BaseException:
                    if embedded:
                        layout.close_generation(self.path)
                    raise
            return self._vectors

    @property
    def lexical(self) -> LexicalIndex:
        """The BM25 index, loaded from disk or rebuilt when the store has moved on.

        While this process imports, answers keep the index they have: the import builds the
        new one when it ends, off the answering thread.
        """
        current = self._lexical
        if current is not None and self._writing.is_set():
            return current
        revision = self.store.revision
        if current is not None and current.revision == revision:
            return current
        with self._read_lock:
            return self._load_lexical(revision)

    def _load_lexical(self, revision: int) -> LexicalIndex:
        path = self.path / "bm25"
        index = LexicalIndex.load(path, revision)
        if index is None:
            t0 = time.perf_counter()
            texts = (
                (pid, f"{title}\n{text}") for pid, title, text in self.store.iter_passage_texts()
            )
            index = LexicalIndex.build(texts, revision)
            try:
                index.save(path)
            except OSError as exc:  # a full or read-only disk: answer from memory
                log.warning("BM25 index kept in memory only: %s", storage_error(exc, path))
            log.info(
                "rebuilt BM25 over %d passages in %.1fs", len(index.ids), time.perf_counter() - t0
            )
        self._lexical = index
        return index

    @contextlib.contextmanager
    def _writable(self, what: str) -> Iterator[None]:
        """Be the one writer, then write in place or, when another process has this
        generation open, into a copy that becomes CURRENT when the block ends."""
        with self._write_lock, layout.writer_lock(self.data_dir, wait=3600.0, what=what):
            self.follow()  # another writer may have switched CURRENT while we waited
            if self.store.read_only:  # found unwritable when opened: say so before any work
                raise StorageError(f"{what} failed: {unwritable(self.path)}")
            if self.settings.chroma_url:  # a Chroma server takes writes from anyone
                with self._marked_writing():
                    yield
                return
            with layout.exclusive_generation(self.path) as alone:
                if alone:
                    with self._marked_writing():
                        yield
                    return
            self._write_copy()
            with self._marked_writing():
                yield

    @contextlib.contextmanager
    def _marked_writing(self) -> Iterator[None]:
        self._writing.set()
        try:
            yield
            if self._lexical is None or self._lexical.revision != self.store.revision:
                with self._read_lock:
                    self._load_lexical(self.store.revision)
        finally:
            self._writing.clear()
        if self._copy_of is not None:
            layout.switch_to(self.data_dir, self.generation)
            self._copy_of = None

    _copy_of: str | None = None

    def _write_copy(self) -> None:
        """Continue in a copy of this generation (another process reads this one)."""
        source = self.generation
        log.info("generation %s is open in another process; writing a copy", source)
        self._open(layout.copy_generation(self.data_dir, source))
        self._copy_of = source

    # -- writing ----------------------------------------------------------------------

    def import_articles(
        self,
        items: Iterable[Article],
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Add new articles, re-embed changed ones, skip unchanged ones."""
        report = ImportReport()
        t0 = time.perf_counter()
        with self._storage_errors("importing"), self._writable("importing"):
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
        if to_embed:
            done = report.passages_embedded

            def tick(n: int) -> None:
                if progress:
                    progress(done + n, len(to_embed))

            vectors = self.embedder.encode([t for _, t in to_embed], progress=tick)
            # Vectors first, then the store: a crash in between leaves only orphan vectors,
            # which searches skip and `cleanup` removes.
            self.vectors.upsert([pid for pid, _ in to_embed], vectors)
            report.passages_embedded += len(to_embed)
        if to_save:
            self.store.save_articles(to_save)
        if stale:
            self.vectors.delete(stale)
            report.passages_removed += len(stale)

    def remove(self, url: str) -> bool:
        """Remove one article by URL; True when it was there."""
        from .articles import canonical_url

        key = article_key(canonical_url(url))
        with self._storage_errors("removing an article"), self._writable("removing"):
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

    def close(self) -> None:
        """Release this thread's database connection and the vectors (other processes may
        then write this generation in place, or remove it once it is stale)."""
        self.store.close()
        with self._swap_lock:
            if self._vectors is not None:
                self._release(self._vectors)
                self._vectors = None

    @contextlib.contextmanager
    def _storage_errors(self, what: str) -> Iterator[None]:
        """A full or read-only disk as one clear StorageError instead of a traceback."""
        try:
            yield
        except Exception as exc:
            message = storage_error(exc, self.path)
            if message is None:
                raise
            raise StorageError(f"{what} failed: {message}") from exc

    def cleanup(self) -> int:
        """Delete vectors whose passages are gone (left by an interrupted import)."""
        with self._writable("removing orphan vectors"):
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
        terms, hits = self.search(question, query_vector, lexical)
        return build_answer(question, hits, terms, lexical, self.settings.answer)

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
        )

    def debug_hits(self, question: str, limit: int = 10) -> list[dict[str, Any]]:
        """Retrieved passages with their dense, lexical and fused scores (for `/why`)."""
        _, hits = self.search(question)
        return [h.debug() for h in hits[:limit]]
