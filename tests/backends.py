"""Where the tests keep vectors and state: embedded (the default) or on servers.

By default every index keeps its vectors in embedded Chroma under its data directory and
every state database is SQLite. Two environment variables move the whole suite onto servers,
the way a deployment runs (``.ci/run`` runs the suite both ways):

``COVERBOT_TEST_CHROMA=server``
    One ``chroma run`` server on 127.0.0.1 for the session. Every index the tests open keeps
    its vectors there: ``IndexSettings()`` means the server, and the CLI, in-process or in a
    subprocess, reads ``COVERBOT_CHROMA_URL``. On a server each index generation is its own
    collection, so indexes never share vectors; a copied data directory names the same
    generation and so reads the original's collection, as a copy of a deployment's would.
``COVERBOT_TEST_STATE_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB``
    A role that may create databases. Every state database is then a new PostgreSQL
    database of its own, one per data directory (what ``Config.state_url`` would otherwise
    put there as SQLite), all dropped at the end of the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bot.config import ENV_CHROMA_URL, Config, IndexSection
from index.coverage import IndexSettings

ENV_CHROMA = "COVERBOT_TEST_CHROMA"
ENV_STATE = "COVERBOT_TEST_STATE_URL"


def chroma_server_wanted() -> bool:
    """COVERBOT_TEST_CHROMA is "server" (or unset / "embedded" for the default)."""
    mode = os.environ.get(ENV_CHROMA, "embedded") or "embedded"
    if mode not in ("embedded", "server"):
        raise pytest.UsageError(f'{ENV_CHROMA} must be "embedded" or "server", not {mode!r}')
    return mode == "server"


def state_server_url() -> str | None:
    """The PostgreSQL URL tests create their state databases through, if any."""
    return os.environ.get(ENV_STATE) or None


def describe() -> str:
    """One line for the pytest header: which stores this run uses."""
    chroma = "chroma server" if chroma_server_wanted() else "embedded chroma"
    url = state_server_url()
    state = sa.make_url(url).render_as_string(hide_password=True) if url else "sqlite state"
    return f"coverbot stores: {chroma}, {state}"


class ChromaServer:
    """``chroma run`` (shipped with the chromadb wheel) on a free loopback port."""

    def __init__(self, path: Path, timeout: float = 60.0) -> None:
        """Start the server over ``path`` and wait until it answers its heartbeat."""
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = path.with_suffix(".log")
        command = [_chroma_executable(), "run", "--path", str(path)]
        command += ["--host", "127.0.0.1", "--port", str(port)]
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        self._wait_until_up(timeout)

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"chroma run exited:\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).is_success:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"chroma run never answered at {self.url}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Terminate the server, killing it if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _chroma_executable() -> str:
    beside = Path(sys.executable).with_name("chroma")
    found = str(beside) if beside.exists() else shutil.which("chroma")
    if found is None:
        raise RuntimeError("the chroma command (from the chromadb wheel) is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresDatabases:
    """One new database per key (a data directory), made through an admin URL."""

    def __init__(self, url: str) -> None:
        """Check the server answers; databases are made on first use."""
        self.url = sa.make_url(url)
        self.engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        # Names carry a token of this session, so two runs on one server never meet.
        self._prefix = f"coverbot_t{secrets.token_hex(3)}_"
        self._made: dict[str, str] = {}
        self._lock = threading.Lock()

    def url_for(self, key: str) -> str:
        """The URL of ``key``'s database, created the first time it is asked for."""
        with self._lock:
            name = self._made.get(key)
            if name is None:
                name = self._prefix + hashlib.sha1(key.encode()).hexdigest()[:12]
                with self.engine.connect() as conn:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                self._made[key] = name
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database made here, closing connections tests left open."""
        with self.engine.connect() as conn:
            for name in self._made.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._made.clear()
        self.engine.dispose()


# The server databases of this session, for `servers_toml` (None when state is SQLite).
_databases: PostgresDatabases | None = None


def servers_toml(data_dir: Path) -> str:
    """Config lines a subprocess needs to use this session's servers for ``data_dir``."""
    lines = []
    if chroma_server_wanted():
        lines += ["[index]", f'chroma_url = "{os.environ[ENV_CHROMA_URL]}"']
    if _databases is not None:
        lines += ["[state]", f'url = "{_databases.url_for(_state_key(data_dir))}"']
    return "".join(f"{line}\n" for line in lines)


def state_rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the state database a bot over ``data_dir`` uses in this session."""
    engine = sa.create_engine(Config(index=IndexSection(data_dir=str(data_dir))).state_url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def _state_key(data_dir: Path) -> str:
    return str(data_dir.expanduser().resolve())


@contextlib.contextmanager
def configured(workdir: Path) -> Iterator[None]:
    """Point every index and state database of the session at the chosen stores."""
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as cleanup:
        if chroma_server_wanted():
            server = ChromaServer(workdir / "chroma")
            cleanup.callback(server.stop)
            patch.setenv(ENV_CHROMA_URL, server.url)
            _default_chroma_url(patch, server.url)
        url = state_server_url()
        if url is not None:
            databases = PostgresDatabases(url)
            cleanup.callback(databases.drop_all)

            def state_url(config: Config) -> str:
                return config.state.url or databases.url_for(_state_key(config.data_dir))

            patch.setattr(Config, "state_url", property(state_url))
            patch.setattr(sys.modules[__name__], "_databases", databases)
        yield


def _default_chroma_url(patch: pytest.MonkeyPatch, url: str) -> None:
    """Make ``IndexSettings()`` (and so ``CoverageIndex(data_dir)``) mean the server."""
    names = [f.name for f in dataclasses.fields(IndexSettings)]
    defaults = list(IndexSettings.__init__.__defaults__ or ())
    defaults[names.index("chroma_url") - (len(names) - len(defaults))] = url
    patch.setattr(IndexSettings.__init__, "__defaults__", tuple(defaults))
