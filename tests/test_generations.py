"""One writer per data dir, across processes; CURRENT validated; readers follow a switch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from index import layout
from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from tests.backends import chroma_server_wanted
from tests.conftest import ROOT, sample_articles

WITKOFF = "What did Witkoff urge?"
RUBBLE = "What did Egypt set out ahead of the reconstruction conference?"
RUBBLE_URL = "egypt-sets-out-rubble-clearing-plan"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _write_jsonl(path: Path, count: slice) -> Path:
    rows = [json.dumps(a.to_dict()) for a in sample_articles()[count]]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("garbage", [b"", b"\n", b"\x00\x13garbage\xff", b"../../etc"])
def test_a_damaged_current_destroys_nothing(
    tmp_path: Path, embedder: Embedder, garbage: bytes
) -> None:
    # #12 item 3: a garbage or empty CURRENT made every command create an empty generation
    # and point CURRENT at it; the next start then removed the real one as stale.
    index = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    index.import_articles(sample_articles()[:3])
    real = index.generation
    index.close()
    (tmp_path / "CURRENT").write_bytes(garbage)
    with pytest.raises(layout.IndexPointerError) as info:
        CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    message = str(info.value)
    assert "CURRENT is damaged" in message and f"echo {real} > {tmp_path}/CURRENT" in message
    assert layout.cleanup(tmp_path) == []
    assert layout.generations(tmp_path) == [real]
    assert (tmp_path / "CURRENT").read_bytes() == garbage  # left for the operator to fix
    (tmp_path / "CURRENT").write_text(real + "\n")
    assert (
        CoverageIndex(tmp_path, IndexSettings(), embedder=embedder).ask(WITKOFF).answered is False
    )
    assert CoverageIndex(tmp_path, embedder=embedder).stats(with_vectors=False).articles == 3


def test_current_naming_a_missing_generation_or_missing_among_several(
    tmp_path: Path, embedder: Embedder
) -> None:
    index = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    real = index.generation
    (tmp_path / "CURRENT").write_text("gen-20990101T000000-deadbeef\n")
    with pytest.raises(layout.IndexPointerError, match="names gen-20990101T000000-deadbeef"):
        CoverageIndex(tmp_path, embedder=embedder)
    (tmp_path / "CURRENT").unlink()
    # One generation: nothing else it could be, so CURRENT is restored.
    assert CoverageIndex(tmp_path, embedder=embedder).generation == real
    (tmp_path / "CURRENT").unlink()
    layout.new_generation(tmp_path)
    with pytest.raises(layout.IndexPointerError, match="is missing"):
        CoverageIndex(tmp_path, embedder=embedder)
    assert len(layout.generations(tmp_path)) == 2


@pytest.mark.slow  # a second process
def test_an_import_waits_for_another_writer_then_lands_in_what_serves(
    tmp_path: Path, embedder: Embedder
) -> None:
    # #12 item 2: `coverbot import` during `coverbot reindex` said "imported 400" while the
    # articles went into the generation the reindex then replaced.
    index = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    index.import_articles(sample_articles()[:4])
    before = index.generation
    script = textwrap.dedent(f"""
        import shutil, time
        from pathlib import Path
        from index import layout
        data = Path({str(tmp_path)!r})
        with layout.rebuild_lock(data):  # a reindex: copy, then switch, holding the lock
            print("locked", flush=True)
            time.sleep(1.5)
            shutil.copytree(data / {before!r}, data / "gen-20990101T000000-0000rebuilt")
            layout.switch_to(data, "gen-20990101T000000-0000rebuilt")
    """)
    other = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=_env()
    )
    assert other.stdout is not None and other.stdout.readline().strip() == "locked"
    report = index.import_articles(sample_articles()[4:6])
    assert other.wait(timeout=30) == 0
    assert report.added == 2
    serving = layout.serving_generation(tmp_path)
    assert serving != before and index.generation == serving
    assert CoverageIndex(tmp_path, embedder=embedder).stats(with_vectors=False).articles == 6


@pytest.mark.slow  # a second process
@pytest.mark.skipif(
    chroma_server_wanted(), reason="a Chroma server takes writes beside readers: no copy is made"
)
def test_a_reader_is_never_written_under_and_follows_an_import_from_another_process(
    tmp_path: Path, embedder: Embedder
) -> None:
    # #12 item 1: with the bot's embedded Chroma open, `coverbot import` in another process
    # made every later question fail ("Error finding id", or a crash) until a restart.
    bot = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    bot.import_articles(sample_articles()[:12])
    assert bot.ask(WITKOFF).answered and not _answers_with(bot, RUBBLE, RUBBLE_URL)
    served = bot.generation
    new = _write_jsonl(tmp_path.parent / "new.jsonl", slice(12, None))
    config = tmp_path.parent / "config.toml"
    config.write_text(f'[index]\nencoder = "{embedder.encoder}"\n')
    command = ["--config", str(config), "--data-dir", str(tmp_path), "import", str(new)]
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *command],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "imported 4" in done.stdout
    # The writer left the open generation alone and switched CURRENT to its copy.
    assert layout.serving_generation(tmp_path) != served
    assert bot.ask(WITKOFF).answered
    assert _answers_with(bot, RUBBLE, RUBBLE_URL)
    assert bot.generation != served and bot.stats().articles == 16
    assert layout.cleanup(tmp_path) == [served]  # let go of at the switch, so now removable


def _answers_with(index: CoverageIndex, question: str, url_part: str) -> bool:
    answer = index.ask(question)
    return answer.answered and url_part in answer.excerpts[0].url


def test_the_data_dir_and_its_databases_are_private(tmp_path: Path, embedder: Embedder) -> None:
    # #12 item 13: the data dir was 0755 and its databases 0644, readable by every local user.
    fresh = tmp_path / "new-data"
    index = CoverageIndex(fresh, IndexSettings(), embedder=embedder)
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert index.path.stat().st_mode & 0o777 == 0o700
    assert (index.path / "articles.sqlite3").stat().st_mode & 0o777 == 0o600
    index.close()
    fresh.chmod(0o755)  # made by an older coverbot, or by hand
    (index.path / "articles.sqlite3").chmod(0o644)
    CoverageIndex(fresh, IndexSettings(), embedder=embedder).close()
    assert fresh.stat().st_mode & 0o777 == 0o700
    assert (index.path / "articles.sqlite3").stat().st_mode & 0o777 == 0o600


def test_answers_during_an_import_never_rebuild_bm25_on_the_answering_thread(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # #12 item 7 (index side): each import batch bumped the store revision, and the next
    # question rebuilt the whole BM25 index on the answering thread; a reader waited for it.
    from concurrent.futures import ThreadPoolExecutor

    from index import coverage
    from index.lexical import LexicalIndex

    index = CoverageIndex(tmp_path, IndexSettings(), embedder=embedder)
    index.import_articles(sample_articles()[:4])
    assert index.ask(WITKOFF) is not None
    builds: list[str] = []
    real_build = LexicalIndex.build.__func__  # type: ignore[attr-defined]

    def recording(cls: type[LexicalIndex], *args: object, **kwargs: object) -> LexicalIndex:
        builds.append(threading.current_thread().name)
        return real_build(cls, *args, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(LexicalIndex, "build", classmethod(recording))
    monkeypatch.setattr(coverage, "_BATCH_ARTICLES", 2)
    reader = ThreadPoolExecutor(1, thread_name_prefix="answering")
    answered: list[bool] = []

    def progress(done: int, total: int) -> None:  # on the importing thread, between batches
        answered.append(reader.submit(index.ask, WITKOFF).result(timeout=60).answered)

    index.import_articles(sample_articles()[4:], progress=progress)
    reader.shutdown()
    assert len(answered) >= 5
    assert not [name for name in builds if name.startswith("answering")]
    assert index.lexical.revision == index.store.revision  # built by the import, at its end
    assert reader is not None and index.ask(WITKOFF).answered
