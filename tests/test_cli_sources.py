"""CLI twins of the admin commands: sources add|list|remove, refresh, and a reindex killed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli
from index import layout
from index.coverage import CoverageIndex
from index.embeddings import Embedder
from tests.bot_harness import LoopThread
from tests.conftest import ROOT, sample_articles
from tests.sources_server import start_site
from tests.sources_site import Site


@pytest.fixture()
def site() -> Iterator[Site]:
    loop = LoopThread()
    site = Site.load()
    runner = loop.run(start_site(site))
    yield site
    loop.run(runner.cleanup())
    loop.close()


def coverbot(data_dir: Path, *args: str, config: Path | None = None) -> tuple[int, str]:
    options = ["--config", str(config)] if config else []
    result = CliRunner().invoke(cli, [*options, "--data-dir", str(data_dir), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1/feed/", "127.0.0.1: loopback"),
        ("http://10.0.0.1/feed/", "10.0.0.1: private"),
        ("http://localhost/feed/", "localhost resolves to"),
    ],
)
def test_sources_add_refuses_private_addresses(tmp_path: Path, url: str, why: str) -> None:
    code, out = coverbot(tmp_path, "sources", "add", url)
    assert code == 1
    assert f"Refused {url}: private address (" in out and why in out
    assert "allow_private_addresses = true" in out
    assert coverbot(tmp_path, "sources", "list") == (
        0,
        "no sources: add one with `coverbot sources add URL` or [[sources]] in the config\n",
    )


def test_an_unresolvable_name_is_not_blamed_on_private_addresses(tmp_path: Path) -> None:
    # An empty label fails in the resolver's IDNA step, before any DNS query.
    code, out = coverbot(tmp_path, "sources", "add", "http://news..example/feed/")
    assert code == 1
    assert "cannot resolve news..example (check the address" in out
    assert "allow_private_addresses" not in out


def test_sources_of_the_config_are_listed_before_the_bot_registers_them(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[sources]]\nkind = "feed"\nurl = "https://news.example.com/feed/"\n')
    assert coverbot(tmp_path, "sources", "list", config=config)[1] == (
        "-\tfeed\tfrom the config, registered at the next start or refresh\t"
        "https://news.example.com/feed/\n"
    )


def test_removing_an_unknown_source_points_to_the_cli_list(tmp_path: Path) -> None:
    code, out = coverbot(tmp_path, "sources", "remove", "99")
    assert code == 1
    assert "There is no source #99. `coverbot sources list` lists them." in out


def test_sources_add_list_refresh_remove(tmp_path: Path, site: Site) -> None:
    config = tmp_path / "coverbot.toml"
    config.write_text("[refresh]\nallow_private_addresses = true\ntimeout_seconds = 5.0\n")
    code, out = coverbot(tmp_path, "sources", "add", site.url("/feed/"), config=config)
    assert code == 0 and out.startswith("added source #1 (feed)"), out
    code, out = coverbot(tmp_path, "refresh", config=config)
    assert code == 0 and "added 6, updated 0, removed 0, unchanged 0, failed 0" in out, out
    _, out = coverbot(tmp_path, "sources", "list", config=config)
    assert out.startswith("#1\tfeed\t6 articles\tok ")
    site.faults["/feed/"] = "html-feed"
    code, out = coverbot(tmp_path, "refresh", "--source", "1", config=config)
    assert code == 1 and "FAILING: not a feed" in out
    assert "FAILING x1: not a feed" in coverbot(tmp_path, "sources", "list")[1]
    code, out = coverbot(tmp_path, "sources", "remove", "1", "--purge", config=config)
    assert code == 0 and "6 articles purged" in out
    assert coverbot(tmp_path, "sources", "remove", "1")[0] == 1


@pytest.mark.slow  # a subprocess
def test_reindex_killed_halfway_then_the_next_one_succeeds(
    tmp_path: Path, sample_index: CoverageIndex, embedder: Embedder
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(sample_index.data_dir, data_dir)
    live = CoverageIndex(data_dir, embedder=embedder).generation
    env = {**os.environ, "COVERBOT_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "reindex"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # Halfway: the new generation has its database, and CURRENT still names the old one.
    while not any((data_dir / g / "articles.sqlite3").exists() for g in _others(data_dir, live)):
        assert proc.poll() is None and time.monotonic() < deadline, "reindex ended too soon"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL
    after = CoverageIndex(data_dir, embedder=embedder)
    assert after.generation == live
    assert after.stats(with_vectors=False).articles == len(sample_articles())
    assert after.ask("What did Witkoff urge?").answered
    assert len(layout.cleanup(data_dir)) == 1  # what the bot's start does
    code, out = coverbot(data_dir, "reindex")
    assert code == 0 and f"imported {len(sample_articles())}, updated 0" in out, out
    fresh = CoverageIndex(data_dir, embedder=embedder)
    assert fresh.generation != live
    assert fresh.stats(with_vectors=False).articles == len(sample_articles())
    assert fresh.ask("What did Witkoff urge?").answered


def _others(data_dir: Path, live: str) -> list[str]:
    return [p.name for p in data_dir.glob("gen-*") if p.name != live]


def test_refresh_says_why_records_were_skipped(tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    desk.mkdir()
    (desk / "note.md").write_text("Ferry returns\n\nThe night ferry runs again.\n")
    assert coverbot(tmp_path, "sources", "add", "--kind", "folder", str(desk))[0] == 0
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "refresh"])
    assert f"#1 {desk}: added 0, updated 0, removed 0, unchanged 0, failed 1" in result.stdout
    assert "1 source refreshed in" in result.stdout
    assert f"  skipped {desk / 'note.md'}: no url: put 'url: https://...'" in result.stderr
