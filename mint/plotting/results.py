"""Charts of a report.json (docs/design.md, file formats): per-task scores of each setting and mean scores."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mint.errors import MintError
from mint.plotting.scores import task_height
from mint.plotting.style import check_format, new_figure, save, short

#: settings in display order; others follow in file order
KNOWN_ROWS = ("zero_shot", "all", "random", "single", "mint")
_ROW_COLORS = {
    "zero_shot": "#bbbbbb",
    "all": "#7f7f7f",
    "random": "#c49c94",
    "single": "#9467bd",
    "mint": "#d62728",
}
_OTHER = ["#1f77b4", "#2ca02c", "#ff7f0e", "#17becf", "#bcbd22", "#e377c2"]


def _score(v: Any, where: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MintError(f"{where}: expected a number or null, got {v!r}")
    return float(v)


def validate_report(report: Any, source: str = "report") -> dict[str, Any]:
    """Check a report.json dict (rows -> {mean, tasks{task: score}, ...}); return it or raise MintError."""
    if not isinstance(report, dict):
        raise MintError(f"{source}: expected a JSON object with 'rows'")
    if report.get("schema") != 1:
        raise MintError(f"{source}: schema {report.get('schema')!r} is not supported (expected 1)")
    rows = report.get("rows")
    if not isinstance(rows, dict) or not rows:
        raise MintError(f"{source}: missing or empty 'rows'")
    for name, row in rows.items():
        w = f"{source}: rows.{name}"
        if not isinstance(row, dict):
            raise MintError(f"{w}: expected an object")
        for key in ("mean", "tasks"):
            if key not in row:
                raise MintError(f"{w}: missing key '{key}'")
        _score(row["mean"], f"{w}.mean")
        if not isinstance(row["tasks"], dict):
            raise MintError(f"{w}.tasks: expected an object task -> score")
        for t, v in row["tasks"].items():
            _score(v, f"{w}.tasks.{t}")
    return report


def _rows(report: dict[str, Any]) -> list[str]:
    rows = list(report["rows"])
    return [r for r in KNOWN_ROWS if r in rows] + [r for r in rows if r not in KNOWN_ROWS]


def _colors(rows: list[str]) -> dict[str, str]:
    others = iter(_OTHER * (1 + len(rows) // len(_OTHER)))
    return {r: _ROW_COLORS.get(r) or next(others) for r in rows}


def results_tasks_figure(report: dict[str, Any]) -> Figure:
    """Grouped horizontal bars: for every task, one bar per compared setting."""
    validate_report(report)
    rows = _rows(report)
    tasks = list(dict.fromkeys(t for r in rows for t in report["rows"][r]["tasks"]))
    metric = str(report.get("metric", "score"))
    n, m = len(tasks), len(rows)
    fig = new_figure(8.5, task_height(n, 0.16 * max(m, 2), 1.6))
    ax = fig.add_subplot()
    colors = _colors(rows)
    h = 0.8 / m
    y = np.arange(n)
    for j, r in enumerate(rows):
        vals = [_score(report["rows"][r]["tasks"].get(t), r) for t in tasks]
        ax.barh(y - 0.4 + h * (j + 0.5), vals, height=h, color=colors[r], label=r)
    ax.set_yticks(y, [short(t, 40) for t in tasks], fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} per task for each setting")
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="setting")
    return fig


def results_mean_figure(report: dict[str, Any]) -> Figure:
    """One bar per setting: the mean score over tasks, with its value written on the bar."""
    validate_report(report)
    rows = _rows(report)
    metric = str(report.get("metric", "score"))
    fig = new_figure(max(4.5, 1.0 * len(rows) + 2.0), 4.5)
    ax = fig.add_subplot()
    colors = _colors(rows)
    means = [_score(report["rows"][r]["mean"], r) for r in rows]
    bars = ax.bar(np.arange(len(rows)), np.nan_to_num(means), color=[colors[r] for r in rows], width=0.65)
    for b, v in zip(bars, means):
        ax.annotate(
            "n/a" if math.isnan(v) else f"{v:.3g}",
            (b.get_x() + b.get_width() / 2, b.get_height()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_xticks(np.arange(len(rows)), rows, rotation=20 if len(rows) > 5 else 0)
    top = np.nanmax(means) if not all(math.isnan(v) for v in means) else 1.0
    ax.set_ylim(0, max(top * 1.15, 1e-3))
    ax.set_ylabel(f"mean {metric} over tasks")
    ax.set_xlabel("setting")
    ax.set_title(f"Mean {metric} per setting")
    ax.grid(axis="y", color="0.92")
    ax.set_axisbelow(True)
    return fig


def results_chart(
    report: dict[str, Any], out_dir: str | os.PathLike, fmt: str = "png", dpi: int = 150
) -> list[Path]:
    """Write ``results_tasks.<fmt>`` and ``results_mean.<fmt>`` into ``out_dir`` (atomically,
    replacing earlier ones); return their paths."""
    check_format(fmt)
    validate_report(report)
    out = Path(out_dir)
    paths = []
    for name, make in (("results_tasks", results_tasks_figure), ("results_mean", results_mean_figure)):
        paths.append(save(make(report), out / f"{name}.{fmt}", fmt, dpi))
    return paths
