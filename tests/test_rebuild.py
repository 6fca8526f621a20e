"""Full rebuild beside the live index, atomic switch, and recovery from a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from index import layout
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from tests.backends import chroma_server_wanted
from tests.conftest import ROOT, sample_articles


@pytest.mark.slow  # re-embeds the whole index
def test_rebuild_switches_over_and_the_old_index_follows(
    tmp_path: Path, embedder: Embedder
) -> None:
    live = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    live.import_articles(sample_articles()[:6])
    old = live.generation
    before = live.ask("What did the Arab summit in Cairo endorse?")
    fresh, report = live.rebuild()
    assert report.added == 6 and fresh.generation != old
    assert CoverageIndex(tmp_path, embedder=embedder).generation == fresh.generation
    # Embedded Chroma: the old generation is still open here, so it is kept; the old instance
    # then follows CURRENT at its next answer and lets go of it. With a Chroma server no
    # process holds the old generation's files open, so it goes at once.
    server = chroma_server_wanted()
    assert layout.cleanup(tmp_path) == ([old] if server else [])
    assert live.ask("What did the Arab summit in Cairo endorse?").to_dict() == before.to_dict()
    assert live.generation == fresh.generation
    assert fresh.ask("What did the Arab summit in Cairo endorse?").to_dict() == before.to_dict()
    live.follow()  # the old generation's vectors are let go of by the next read
    assert layout.cleanup(tmp_path) == ([] if server else [old])
    assert fresh.stats().articles == 6


def test_second_rebuild_is_refused_while_one_runs(tmp_path: Path, embedder: Embedder) -> None:
    index = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    with layout.rebuild_lock(tmp_path), pytest.raises(layout.RebuildInProgress):
        index.rebuild()


@pytest.mark.slow  # a subprocess
def test_rebuild_killed_halfway_leaves_the_old_index_serving(
    tmp_path: Path, embedder: Embedder
) -> None:
    live = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    live.import_articles(sample_articles())
    generation = live.generation
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from index.coverage import CoverageIndex
        def progress(done, total):
            print("progress", done, total, flush=True)
            time.sleep(0.5)
        CoverageIndex(Path({str(tmp_path)!r})).rebuild(progress=progress)
        print("finished", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.startswith("progress") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # The old generation still serves, with every article.
    after = CoverageIndex(tmp_path, embedder=embedder)
    assert after.generation == generation
    assert after.stats(with_vectors=False).articles == len(sample_articles())
    assert after.ask("What did Witkoff urge?").answered
    # The next start removes the half-built generation, and the next rebuild succeeds.
    assert len(layout.cleanup(tmp_path)) == 1
    fresh, report = after.rebuild()
    assert report.added == len(sample_articles()) and report.failed == 0
    assert fresh.ask("What did Witkoff urge?").answered
