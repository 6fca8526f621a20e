"""The serving generation of an index: opened, followed, written by one writer at a time."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import layout
from .answer import AnswerSettings
from .embeddings import DEFAULT_ENCODER, Embedder
from .lexical import LexicalIndex
from .retrieval import RetrievalSettings
from .storage import storage_error, unwritable
from .store import ArticleStore
from .vectors import VectorStore, make_client, open_embedded

log = logging.getLogger(__name__)


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


def collection_name(settings: IndexSettings, generation: str) -> str:
    """The Chroma collection of a generation: on a shared server each has its own."""
    return f"{settings.collection}-{generation}" if settings.chroma_url else settings.collection


class ServedGeneration:
    """The generation that serves under a data dir: its store, vectors and BM25 index.

    One writer at a time across processes (`layout.writer_lock`); it writes in place only
    while no other process has the generation open, otherwise into a copy that then becomes
    CURRENT. Readers `follow` CURRENT before each answer, so an import from another process
    shows up at the next question, without a restart, and nobody reads files being written.
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
        # The encoder imports use (default: `embedder`); the bot gives its import thread
        # one of its own with fewer threads, so answers keep their latency meanwhile.
        self.import_embedder: Embedder | None = None
        self._vectors: VectorStore | None = None
        self._lexical: LexicalIndex | None = None
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._swap_lock = threading.RLock()
        # Set while this process imports: answers keep the last BM25 index meanwhile.
        self._writing = threading.Event()
        # Seconds to wait for a writer of this generation in another process before reading
        # it (RebuildInProgress after that); `coverbot health` does not wait.
        self.open_wait = 3600.0
        # A fixed generation (a rebuild's) is never left for CURRENT's.
        self._pinned = generation is not None
        # Vectors of generations left behind, closed at the next `follow` (by the reading
        # thread, which by then no longer searches them) or at `close`.
        self._retired: list[VectorStore] = []
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
                self._retired.append(old_vectors)

    def _release(self, vectors: VectorStore) -> None:
        vectors.close()
        if not self.settings.chroma_url:
            layout.close_generation(vectors.path)

    def follow(self) -> bool:
        """Serve the generation CURRENT names, if another writer switched it; True if so."""
        with self._swap_lock:
            retired, self._retired = self._retired, []
        for vectors in retired:
            self._release(vectors)
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
                    layout.open_generation(self.path, self.open_wait)
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
    def writable(self, what: str) -> Iterator[None]:
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
            if not alone:
                source = self._write_copy()
                with self._marked_writing(copy_of=source):
                    yield
            # Generations left by earlier switches, once their readers have let go (a bot
            # follows at its next question), go now rather than at the bot's next start;
            # not while this writes one that does not serve yet (a rebuild's).
            if layout.serving_generation(self.data_dir) == self.generation:
                layout.cleanup(self.data_dir)

    @contextlib.contextmanager
    def _marked_writing(self, copy_of: str | None = None) -> Iterator[None]:
        """Answers keep their BM25 index while the block writes; the new one is built at
        the end, here, and a copy written to becomes CURRENT (or is dropped on failure)."""
        self._writing.set()
        try:
            yield
            if self._lexical is None or self._lexical.revision != self.store.revision:
                with self._read_lock:
                    self._load_lexical(self.store.revision)
        except BaseException:
            if copy_of is not None:  # back to what serves; the copy is removed as stale
                self._open(copy_of)
            raise
        finally:
            self._writing.clear()
        if copy_of is not None:
            layout.switch_to(self.data_dir, self.generation)

    def _write_copy(self) -> str:
        """Continue in a copy of this generation (another process reads this one);
        returns the generation copied."""
        source = self.generation
        log.info("generation %s is open in another process; writing a copy", source)
        self._open(layout.copy_generation(self.data_dir, source))
        return source

    def close(self) -> None:
        """Release this thread's database connection and the vectors (other processes may
        then write this generation in place, or remove it once it is stale)."""
        self.store.close()
        with self._swap_lock:
            stores, self._retired = self._retired, []
            if self._vectors is not None:
                stores.append(self._vectors)
                self._vectors = None
        for vectors in stores:
            self._release(vectors)

    @contextlib.contextmanager
    def storage_errors(self, what: str) -> Iterator[None]:
        """A full or read-only disk as one clear StorageError instead of a traceback."""
        try:
            yield
        except Exception as exc:
            message = storage_error(exc, self.path)
            if message is None:
                raise
            raise StorageError(f"{what} failed: {message}") from exc
