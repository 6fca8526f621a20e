"""`coverbot eval --plot`: a real PNG of the systems side by side, and a clear error without
matplotlib before any evaluation work."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.eval_plot import PlotUnavailable, plot_eval
from bot.cli.main import cli
from index.coverage import CoverageIndex
from tests.conftest import SAMPLE_QUESTIONS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

ROW = {
    "fact@1": 61.5,
    "fact@1-3": 63.5,
    "MRR@10": 0.625,
    "article@1": 86.5,
    "answered": 91.7,
    "declined(unans)": 76.0,
    "decline precision": 70.4,
    "verbatim": 100.0,
    "threshold": 0.36,
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def eval_args(data_dir: Path, *options: str) -> list[str]:
    """`coverbot eval` over the sample question set."""
    return ["--data-dir", str(data_dir), "eval", "--questions", str(SAMPLE_QUESTIONS), *options]


def test_plot_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "chart.png"
    systems = {"coverbot": ROW, "bm25": {**ROW, "fact@1": 47.9}, "dense": {**ROW, "fact@1": 50}}
    plot_eval(systems, out, "bbc.jsonl, split test")
    assert out.stat().st_size > 10_000
    assert png_size(out) == (1200, 550)


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports of matplotlib fail as they do where it is not installed."""
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("no_matplotlib")
def test_plot_without_matplotlib_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(PlotUnavailable, match=r"pip install 'coverbot\[plot\]'"):
        plot_eval({"coverbot": ROW}, tmp_path / "chart.png", "t")


@pytest.mark.usefixtures("no_matplotlib")
def test_eval_without_matplotlib_fails_before_opening_the_index(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(cli, eval_args(data_dir, "--plot", str(tmp_path / "chart.png")))
    assert result.exit_code == 1
    assert "--plot needs matplotlib" in result.output
    assert not data_dir.exists()
    assert not (tmp_path / "chart.png").exists()


def test_eval_plot_over_the_sample(sample_index: CoverageIndex, tmp_path: Path) -> None:
    out = tmp_path / "sample.png"
    args = eval_args(sample_index.data_dir, "--baselines", "--json", "--plot", str(out))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["systems"]) == ["coverbot", "hand-weighted", "bm25", "dense"]
    assert png_size(out) == (1200, 550)
