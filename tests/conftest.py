"""Shared fixtures: the real model loaded once, the sample index built once, temp dirs per test."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from index.articles import Article
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from index.importers import read_paths
from tests import backends

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "index" / "sample" / "articles.jsonl"
SAMPLE_QUESTIONS = ROOT / "index" / "sample" / "questions.jsonl"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests are offline: refuse connections to anything but this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"test tried to reach {host}: tests are offline")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _umask() -> Iterator[None]:
    """A `coverbot` command run in-process makes the process's new files private (umask
    077); the next test starts with the umask the run started with."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield
    os.umask(saved)


def pytest_report_header() -> str:
    return backends.describe()


@pytest.fixture(scope="session", autouse=True)
def _stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Embedded Chroma and SQLite, or the servers COVERBOT_TEST_CHROMA and
    COVERBOT_TEST_STATE_URL name (see tests/backends.py), for every test of the session."""
    with backends.configured(tmp_path_factory.mktemp("servers")):
        yield


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled model, loaded once for the whole run."""
    emb = Embedder()
    emb.encode(["warm up"])
    return emb


def sample_articles() -> list[Article]:
    """The bundled sample coverage as articles."""
    return [a for a in read_paths([SAMPLE]) if isinstance(a, Article)]


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> CoverageIndex:
    """An index of the sample coverage, built once; tests must not modify it."""
    index = CoverageIndex(
        tmp_path_factory.mktemp("sample-index"), IndexSettings(), embedder=embedder
    )
    index.import_articles(sample_articles())
    return index


@pytest.fixture()
def fresh_index(tmp_path: Path, embedder: Embedder) -> Iterator[CoverageIndex]:
    """An empty index in this test's own temp dir."""
    index = CoverageIndex(tmp_path / "data", IndexSettings(), embedder=embedder)
    yield index
    index.store.close()


# -- golden files ---------------------------------------------------------------------------

GOLDEN = ROOT / "tests" / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/ files from the current output instead of comparing.",
    )


class Golden:
    """Compares text with tests/golden/<name>, or rewrites the file with --update-golden."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, actual: str) -> None:
        path = GOLDEN / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"no golden file {path}; run pytest --update-golden"
        expected = path.read_text(encoding="utf-8")
        assert actual == expected, f"{name} differs from its golden file (pytest --update-golden)"


@pytest.fixture()
def golden(request: pytest.FixtureRequest) -> Golden:
    """Golden-file comparison for rendered messages."""
    return Golden(bool(request.config.getoption("--update-golden")))
