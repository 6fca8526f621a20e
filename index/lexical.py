"""BM25 over passages (bm25s), and the tokenizer shared with excerpt scoring."""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
# Small English stop list: question words and function words that carry no topic.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves s t don whats whos say said says tell told according also mr mrs ms
    """.split()
)


def _bm25s():
    """bm25s, imported on first use; it sets its own logger to DEBUG, which we undo."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=200_000)
def _term(word: str) -> str | None:
    """The stemmed term of one lower-cased word, or None for a stop word or a lone letter.

    Cached whole (not only the stemming): the answer's confidence tokenizes the best
    article for every question, and the BM25 build every passage, so each word's one
    cache lookup is what tokenizing costs (2.3x faster than looking up the stem alone).
    """
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
        return None
    return str(_stemmer().stemWord(word))


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed content words ("Witkoff's" -> "witkoff")."""
    return [term for term in map(_term, _WORD.findall(text.lower())) if term is not None]


@dataclass(frozen=True, slots=True)
class LexicalHit:
    """A passage id with its BM25 score."""

    passage_id: str
    score: float


class LexicalIndex:
    """A BM25 index of passage texts with the document frequencies of its terms."""

    def __init__(self, ids: list[str], retriever, idf: dict[str, float], revision: int):
        self.ids = ids
        # The store revision this index was built from; a newer store makes it stale.
        self.revision = revision
        self.retriever = retriever
        self.idf = idf
        self.max_idf = max(idf.values(), default=1.0)
        self.position = {pid: i for i, pid in enumerate(ids)}
        self.k1 = float(getattr(retriever, "k1", 1.5)) if retriever is not None else 1.5

    @classmethod
    def build(cls, docs: Iterable[tuple[str, str]], revision: int) -> LexicalIndex:
        """Index (passage id, text) pairs of the store at `revision`."""
        bm25s = _bm25s()
        ids: list[str] = []
        tokens: list[list[str]] = []
        df: Counter[str] = Counter()
        for pid, text in docs:
            toks = tokenize(text)
            ids.append(pid)
            tokens.append(toks)
            df.update(set(toks))
        retriever = bm25s.BM25()
        if tokens:
            retriever.index(tokens, show_progress=False)
        n = len(ids)
        idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        return cls(ids, retriever if tokens else None, idf, revision)

    def idf_of(self, term: str) -> float:
        """IDF of a term; a term the corpus never uses gets the highest weight."""
        return self.idf.get(term, self.max_idf)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray | None:
        """BM25 score of every passage for stemmed query terms (None when no term is known)."""
        known = [t for t in dict.fromkeys(query_terms) if t in self.idf]
        if not known or self.retriever is None:
            return None
        return np.asarray(self.retriever.get_scores(known), dtype=np.float32)

    def top(self, scores: np.ndarray | None, k: int) -> list[LexicalHit]:
        """The k best passages of a score vector, best first, zero scores left out."""
        if scores is None or len(scores) == 0:
            return []
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [LexicalHit(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def score_of(self, scores: np.ndarray | None, passage_id: str) -> float:
        """One passage's score in a score vector (0 for unknown passages)."""
        i = self.position.get(passage_id)
        return 0.0 if scores is None or i is None else float(scores[i])

    def search(self, query_terms: Sequence[str], k: int) -> list[LexicalHit]:
        """Top passages for stemmed query terms, best first."""
        return self.top(self.scores(query_terms), k)

    def save(self, path: Path) -> None:
        """Write the index to a folder, replacing it atomically."""
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.retriever is not None:
            self.retriever.save(str(tmp / "bm25"), show_progress=False)
        (tmp / "meta.json").write_text(
            json.dumps({"revision": self.revision, "ids": self.ids, "idf": self.idf})
        )
        old = path.with_name(path.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, path: Path, revision: int) -> LexicalIndex | None:
        """The saved index if it was built for this revision of the store, else None."""
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            return None
        if meta.get("revision") != revision:
            return None
        retriever = None
        if (path / "bm25").is_dir():
            retriever = _bm25s().BM25.load(str(path / "bm25"), show_progress=False, verbosity=0)
        return cls(meta["ids"], retriever, meta["idf"], revision)
