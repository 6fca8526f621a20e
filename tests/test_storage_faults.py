"""A read-only or full data dir still answers; writes fail with one clear line (#12 item 4).

Real faults, not mocks: each case runs in its own mount namespace (`unshare -rm`, no root
needed), with the data dir bind-mounted read-only or copied onto a tmpfs that is then filled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from index.coverage import CoverageIndex, IndexSettings
from index.embeddings import Embedder
from tests.backends import chroma_server_wanted
from tests.conftest import ROOT, sample_articles

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chroma_server_wanted(), reason="faults of the data dir's own Chroma files"),
]


def _namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces(), reason="unshare -rm is not allowed here")

PROGRAM = textwrap.dedent("""
    import sys
    from pathlib import Path
    from index import coverage
    from index.coverage import CoverageIndex, IndexSettings
    StorageError = getattr(coverage, "StorageError", ())  # what coverbot raised before: none
    from index.importers import read_paths
    data, encoder, extra = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    index = CoverageIndex(data, IndexSettings(encoder=encoder))
    answer = index.ask("What did Witkoff urge?")
    print("answered", answer.answered, answer.excerpts[0].url.rsplit("/", 2)[-2])
    print("articles", index.stats().articles)
    try:
        index.import_articles(a for a in read_paths([extra]) if not isinstance(a, str))
    except StorageError as exc:
        print("refused", exc)
""")


@pytest.fixture()
def built(tmp_path: Path, embedder: Embedder) -> Path:
    """A small index without its BM25 cache, so answering has to rebuild it."""
    data = tmp_path / "data"
    index = CoverageIndex(data, IndexSettings(encoder=embedder.encoder), embedder=embedder)
    index.import_articles(sample_articles()[:10])
    index.close()
    shutil.rmtree(index.path / "bm25", ignore_errors=True)
    extra = tmp_path / "extra.jsonl"
    extra.write_text("\n".join(json.dumps(a.to_dict()) for a in sample_articles()[10:]))
    (tmp_path / "program.py").write_text(PROGRAM)
    return data


def _run(shell: str, data: Path, embedder: Embedder, work: Path) -> str:
    """Run PROGRAM on `data` after `shell` set up the mounts, in a namespace of its own."""
    program, extra = work / "program.py", work / "extra.jsonl"
    command = f"{shell} && {sys.executable} {program} {{data}} {embedder.encoder} {extra}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", command.format(data=data)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.stdout


@needs_namespaces
def test_a_read_only_data_dir_answers_and_refuses_writes_in_one_line(
    built: Path, embedder: Embedder
) -> None:
    shell = f"mount --bind {built} {built} && mount -o remount,bind,ro {built}"
    out = _run(shell, built, embedder, built.parent).splitlines()
    assert out[0].startswith("answered True mediators-step-up-efforts")
    assert out[1] == "articles 10"
    assert out[2].startswith("refused importing failed: ")
    assert "is read-only or not writable by this user: make it writable" in out[2]


@needs_namespaces
def test_a_full_disk_answers_and_refuses_writes_in_one_line(
    built: Path, embedder: Embedder, tmp_path: Path
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    shell = (
        f"mount -t tmpfs -o size=16m tmpfs {full} && cp -a {built} {full}/ && "
        f"(dd if=/dev/zero of={full}/filler bs=64k 2>/dev/null; true)"
    )
    out = _run(shell, full / "data", embedder, tmp_path).splitlines()
    assert out[0].startswith("answered True mediators-step-up-efforts")
    assert out[1] == "articles 10"
    assert out[2].startswith("refused importing failed: the disk holding ")
    assert "is full: free some space, then try again" in out[2]
