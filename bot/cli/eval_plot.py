"""A chart of `coverbot eval` results: the systems side by side, one group of bars per metric.

matplotlib is an optional extra (`pip install 'coverbot[plot]'`): the bot never needs it, so
it is imported only when a chart is asked for. The figure is drawn on the Agg canvas
directly, without pyplot, so no display, GUI backend or global state is involved.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

# (key in a `Scores.row()`, label on the chart, factor to put it on the 0-100 scale)
METRICS: tuple[tuple[str, str, float], ...] = (
    ("fact@1", "fact in\nexcerpt 1", 1.0),
    ("fact@1-3", "fact in\nexcerpts 1-3", 1.0),
    ("MRR@10", "MRR@10\n(×100)", 100.0),
    ("article@1", "article\n@1", 1.0),
    ("answered", "answered\n(answerable)", 1.0),
    ("declined(unans)", "declined\n(unanswerable)", 1.0),
    ("verbatim", "verbatim", 1.0),
)
SYSTEM_LABELS = {
    "coverbot": "coverbot",
    "hand-weighted": "hand-weighted excerpts",
    "bm25": "BM25 alone",
    "dense": "dense alone",
}
_COLOURS = ("#1f5fa8", "#e08a1e", "#3b9b54", "#8c5aa8")


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _figure_classes() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise PlotUnavailable(
            "--plot needs matplotlib, an optional extra: pip install 'coverbot[plot]'"
        ) from exc
    return Figure, FigureCanvasAgg


def ensure_available() -> None:
    """Raise `PlotUnavailable` now, before a long evaluation, if no chart could be drawn."""
    _figure_classes()


def _legend_label(name: str, row: Mapping[str, Any]) -> str:
    label = SYSTEM_LABELS.get(name, name)
    return f"{label} (decline below {row['threshold']})" if "threshold" in row else label


def plot_eval(systems: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> None:
    """Write a PNG grouped bar chart of `systems` (name -> `Scores.row()`-like mapping).

    Every metric is shown in percent; MRR@10 (0-1) is scaled by 100 to share the axis.
    Each bar carries its value, as the table prints it.
    """
    figure_cls, canvas_cls = _figure_classes()
    names = list(systems)
    fig = figure_cls(figsize=(12, 5.5), dpi=100, layout="constrained")
    canvas_cls(fig)  # attaches the Agg canvas: savefig renders without any GUI backend
    ax = fig.add_subplot()
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        row = systems[name]
        xs = [m + (i - (len(names) - 1) / 2) * width for m in range(len(METRICS))]
        heights = [float(row[key]) * factor for key, _, factor in METRICS]
        bars = ax.bar(
            xs,
            heights,
            width * 0.95,
            label=_legend_label(name, row),
            color=_COLOURS[i % len(_COLOURS)],
        )
        ax.bar_label(bars, labels=[str(row[key]) for key, _, _ in METRICS], padding=2, fontsize=8)
    ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS], fontsize=9)
    ax.set_ylim(0, 112)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("% of questions (verbatim: % of excerpts)")
    fig.suptitle(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    fig.legend(loc="outside lower center", ncols=len(names), frameon=False)
    fig.savefig(path, format="png")
