"""The ONNX encoder: exported offline from the bundled model, same vectors as torch, cached."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bot.config import ConfigError, parse_config
from index import embeddings
from index.coverage import CoverageIndex, EncoderMismatch, IndexSettings
from index.embeddings import Embedder, ModelError
from tests.conftest import sample_articles

# Exports the model to ONNX.
pytestmark = pytest.mark.slow

TEXTS = [
    "What did Witkoff urge?",
    "UNRWA warned that flour stocks in Gaza would run out within days.",
    "",
    "   leading and trailing spaces   ",
    "Ümlaut, café, naïve — and an em dash.",
    # Longer than the model's 256-token window: both pipelines must truncate the same way.
    " ".join(["The ceasefire talks resumed in Cairo on Tuesday."] * 60),
]


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory of this test run; the graph is exported into it once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def onnx_embedder(onnx_cache: Path) -> Embedder:
    """The bundled model under ONNX Runtime, exported once per run (the network is refused)."""
    emb = Embedder(encoder="onnx", cache_dir=onnx_cache)
    emb.encode(["warm up"])
    return emb


def test_onnx_vectors_are_unit_length_and_match_torch(
    onnx_embedder: Embedder, embedder: Embedder
) -> None:
    texts = [*TEXTS, *(a.body[:400] for a in sample_articles()[:20])]
    fast, reference = onnx_embedder.encode(texts), embedder.encode(texts)
    assert fast.dtype == np.float32
    assert fast.shape == reference.shape == (len(texts), onnx_embedder.dimension)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # Measured on 2,000 BBC passages: min cosine 0.9999996 (float rounding only).
    assert (fast * reference).sum(axis=1).min() >= 0.9999


def test_onnx_batches_pad_without_changing_vectors(onnx_embedder: Embedder) -> None:
    together = onnx_embedder.encode(TEXTS)
    alone = np.vstack([onnx_embedder.encode_query(t) for t in TEXTS])
    assert (together * alone).sum(axis=1).min() >= 0.99999


def test_onnx_reports_progress_per_batch(onnx_cache: Path) -> None:
    emb = Embedder(encoder="onnx", cache_dir=onnx_cache, batch_size=2)
    seen: list[int] = []
    emb.encode(TEXTS, progress=seen.append)
    assert seen == [2, 4, 6]


def test_cached_graph_is_reused(
    onnx_embedder: Embedder, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(model_path: Path, graph: Path) -> None:
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(embeddings, "_export", no_export)
    again = Embedder(encoder="onnx", cache_dir=onnx_cache)
    np.testing.assert_allclose(
        again.encode_query(TEXTS[0]), onnx_embedder.encode_query(TEXTS[0]), atol=1e-6
    )
    assert [p.suffix for p in onnx_cache.iterdir()] == [".onnx"]  # no temporary left behind


def test_import_refuses_vectors_of_another_encoder(
    tmp_path: Path, onnx_embedder: Embedder, embedder: Embedder
) -> None:
    articles = sample_articles()[:3]
    built = CoverageIndex(tmp_path, IndexSettings(encoder="onnx"), embedder=onnx_embedder)
    built.import_articles(articles[:2])
    assert built.store.get_meta("encoder") == "onnx"

    other = CoverageIndex(tmp_path, IndexSettings(encoder="torch"), embedder=embedder)
    with pytest.raises(EncoderMismatch, match=r"built with encoder 'onnx'.*coverbot reindex"):
        other.import_articles(articles[2:])
    assert other.stats(with_vectors=False).articles == 2

    # The same encoder goes on importing; a rebuild with the other one starts afresh.
    assert built.import_articles(articles[2:]).added == 1
    rebuilt, report = other.rebuild()
    assert report.added == 3
    assert rebuilt.store.get_meta("encoder") == "torch"


def test_index_from_before_the_encoder_was_recorded_counts_as_torch(
    tmp_path: Path, onnx_embedder: Embedder, embedder: Embedder
) -> None:
    old = CoverageIndex(tmp_path, IndexSettings(encoder="torch"), embedder=embedder)
    old.import_articles(sample_articles()[:1])
    old.close()
    with sqlite3.connect(old.store.path) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'encoder'")
    reopened = CoverageIndex(tmp_path, IndexSettings(encoder="onnx"), embedder=onnx_embedder)
    with pytest.raises(EncoderMismatch, match="built with encoder 'torch'"):
        reopened.import_articles(sample_articles()[1:2])


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ModelError, match="unknown encoder 'int4'"):
        Embedder(encoder="int4")
    with pytest.raises(ConfigError, match=r"index\.encoder must be one of"):
        parse_config({"index": {"encoder": "int4"}})


def test_onnx_refuses_a_pipeline_it_cannot_reproduce(tmp_path: Path) -> None:
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    emb = Embedder(str(tmp_path), encoder="onnx", cache_dir=tmp_path / "cache")
    with pytest.raises(ModelError, match="use encoder = 'torch'"):
        emb.encode(["a"])


def test_onnx_optimizer_logs_only_warnings(onnx_embedder: Embedder) -> None:
    # The export (done once for this run by the fixture) quietened the optimizer's loggers,
    # which otherwise print a dozen "Fused ..." INFO lines under bare module names.
    import logging

    for name in ("fusion_base", "onnx_model", "onnx_model_bert"):
        assert logging.getLogger(name).level >= logging.WARNING, name  # not NOTSET
