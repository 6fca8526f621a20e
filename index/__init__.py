"""The coverage core: articles, passages, embeddings, Chroma, retrieval and the answer.

This is the public surface the bot (and any other caller) uses: ``from index import
CoverageIndex, Answer, ...``. The submodules are the core's own business; outside callers
import from here only (``tests/test_architecture.py`` checks that for ``bot/``). The core
never imports ``telegram``, ``apscheduler`` or ``bot``.
"""

from __future__ import annotations

from .answer import Answer, AnswerSettings, Excerpt
from .articles import Article, ArticleError, canonical_url, strip_controls
from .coverage import (
    CoverageIndex,
    EncoderMismatch,
    ImportReport,
    IndexSettings,
    IndexStats,
    StorageError,
    remove_stale_generations,
)
from .embeddings import DEFAULT_ENCODER, ENCODERS, Embedder
from .evaluation import (
    GoldMatcher,
    Question,
    Scores,
    SystemRun,
    baseline_settings,
    evaluate,
    gold_of,
    load_questions,
    run_system,
    score,
)
from .examples import example_questions, example_topic
from .fetch import (
    DEFAULT_USER_AGENT,
    MB,
    Fetcher,
    FetchError,
    FetchSettings,
    ValidatorCache,
    check_public_url,
)
from .importers import Rejected, read_paths
from .layout import IndexPointerError, RebuildInProgress, rebuild_lock, serving_generation
from .questions import QuestionProblem, check_question
from .retrieval import RetrievalSettings
from .sources import (
    SOURCE_KIND_NAMES,
    SOURCE_KINDS,
    WEB_SOURCE_KINDS,
    FeedSource,
    FolderSource,
    SitemapSource,
    Source,
    SourceBatch,
    WordPressSource,
    detect_source,
    make_source,
)
from .store import StoredArticle
from .topics import TopicMatch, TopicSettings, match_topics, normalize_topic

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_USER_AGENT",
    "ENCODERS",
    "MB",
    "SOURCE_KINDS",
    "SOURCE_KIND_NAMES",
    "WEB_SOURCE_KINDS",
    "Answer",
    "AnswerSettings",
    "Article",
    "ArticleError",
    "CoverageIndex",
    "Embedder",
    "EncoderMismatch",
    "Excerpt",
    "FeedSource",
    "FetchError",
    "FetchSettings",
    "Fetcher",
    "FolderSource",
    "GoldMatcher",
    "ImportReport",
    "IndexPointerError",
    "IndexSettings",
    "IndexStats",
    "Question",
    "QuestionProblem",
    "RebuildInProgress",
    "Rejected",
    "RetrievalSettings",
    "Scores",
    "SitemapSource",
    "Source",
    "SourceBatch",
    "StorageError",
    "StoredArticle",
    "SystemRun",
    "TopicMatch",
    "TopicSettings",
    "ValidatorCache",
    "WordPressSource",
    "baseline_settings",
    "canonical_url",
    "check_public_url",
    "check_question",
    "detect_source",
    "evaluate",
    "example_questions",
    "example_topic",
    "gold_of",
    "load_questions",
    "make_source",
    "match_topics",
    "normalize_topic",
    "read_paths",
    "rebuild_lock",
    "remove_stale_generations",
    "run_system",
    "score",
    "serving_generation",
    "strip_controls",
]
