"""Charts of a report.json (docs/design.md, file formats): a heatmap of every task's score for every
compared setting, and the mean score per setting with its 95% interval when the report has one."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from mint.artifacts.report import Report, row_interval, score_or_nan, validate_report
from mint.plotting.style import check_format, distinct_colors, new_figure, save, short

_ROW_COLORS = {
    "zero_shot": "#bbbbbb",
    "all": "#7f7f7f",
    "random": "#c49c94",
    "single": "#9467bd",
    "mint": "#d62728",
}


def setting_order(report: Report | dict[str, Any]) -> list[str]:
    """The compared settings in display order: the usual ones first, then the others in file order."""
    return Report.from_dict(report).settings


def setting_colors(rows: list[str]) -> dict[str, str]:
    """A different colour for every compared setting: fixed ones for the usual rows, distinct ones for
    the others (however many there are)."""
    others = [r for r in rows if r not in _ROW_COLORS]
    free = iter(distinct_colors(len(others), avoid=list(_ROW_COLORS.values())))
    return {r: _ROW_COLORS.get(r) or next(free) for r in rows}


def task_matrix(report: dict[str, Any]) -> tuple[list[str], list[str], np.ndarray]:
    """(tasks, settings, scores[task, setting]) with NaN where a row has no score."""
    rows = setting_order(report)
    tasks = list(report.get("tasks") or dict.fromkeys(t for r in rows for t in report["rows"][r]["tasks"]))
    values = np.array(
        [
            [score_or_nan(report["rows"][r]["tasks"].get(t), f"rows.{r}.tasks.{t}") for r in rows]
            for t in tasks
        ],
        dtype=float,
    ).reshape(len(tasks), len(rows))
    return tasks, rows, values


def results_tasks_figure(report: dict[str, Any]) -> Figure:
    """Heatmap of the score of every task (rows) for every setting (columns), each cell annotated, the
    best score of each task in bold: readable with a dozen settings where grouped bars are not."""
    validate_report(report)
    tasks, rows, values = task_matrix(report)
    metric = str(report.get("metric", "score"))
    n, m = len(tasks), len(rows)
    label_w = 0.065 * max(len(short(t, 40)) for t in tasks) + 0.3
    head_h = 0.068 * max(len(short(r, 28)) for r in rows) + 0.2  # setting names upright above the columns
    cell_w, cell_h = 0.62, 0.3
    width = label_w + cell_w * m + 1.3
    height = head_h + cell_h * n + 1.0
    fig = new_figure(max(width, 4.5), max(height, 2.5))
    left, right = label_w / fig.get_figwidth(), 1 - 1.15 / fig.get_figwidth()
    top, bottom = 1 - (head_h + 0.45) / fig.get_figheight(), 0.3 / fig.get_figheight()
    ax = fig.add_axes((left, bottom, right - left, top - bottom))
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    cmap = colormaps["YlGnBu"]
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=lo, vmax=hi, aspect="auto")
    best = np.nanmax(np.where(np.isfinite(values), values, -np.inf), axis=1)
    worst = np.nanmin(np.where(np.isfinite(values), values, np.inf), axis=1)
    best[best <= worst] = np.inf  # every setting scores the same: no best to mark
    for i in range(n):
        for j in range(m):
            v = values[i, j]
            if not math.isfinite(v):
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.4")
                continue
            dark = (v - lo) / (hi - lo) > 0.55  # light text on the dark end of the map
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
                fontweight="bold" if v >= best[i] - 1e-12 else "normal",
            )
    ax.set_yticks(np.arange(n), [short(t, 40) for t in tasks], fontsize=8)
    ax.set_xticks(np.arange(m), [short(r, 28) for r in rows], fontsize=8, rotation=90, ha="center")
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(m + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    cax = fig.add_axes((right + 0.2 / fig.get_figwidth(), bottom, 0.14 / fig.get_figwidth(), top - bottom))
    bar = fig.colorbar(im, cax=cax)
    bar.set_label(metric, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{metric} per task (rows) and setting (columns); the best of each task in bold (not on ties)",
        fontsize=10,
        x=0.02,
        ha="left",
        y=1 - 0.12 / fig.get_figheight(),
        va="top",
    )
    return fig


def results_mean_figure(report: dict[str, Any]) -> Figure:
    """One horizontal bar per setting: the mean score over tasks, with its 95% interval where the report
    has one (``rows[*].ci95``), and its value written beside it."""
    validate_report(report)
    rows = setting_order(report)
    metric = str(report.get("metric", "score"))
    m = len(rows)
    label_w = 0.07 * max(len(short(r, 28)) for r in rows) + 0.4
    fig = new_figure(max(6.0, label_w + 5.0), max(2.4, 0.36 * m + 1.3))
    ax = fig.add_subplot()
    colors = setting_colors(rows)
    means = np.array([score_or_nan(report["rows"][r]["mean"], f"rows.{r}.mean") for r in rows])
    cis = [row_interval(report["rows"][r]) for r in rows]
    y = np.arange(m)
    ax.barh(y, np.nan_to_num(means), color=[colors[r] for r in rows], height=0.66)
    ends = []
    for i, (v, ci) in enumerate(zip(means, cis)):
        if ci is not None:
            ax.errorbar(
                v,
                i,
                xerr=[[max(v - ci[0], 0.0)], [max(ci[1] - v, 0.0)]],
                fmt="none",
                ecolor="0.15",
                capsize=3,
                linewidth=1.0,
            )
        end = max(v if math.isfinite(v) else 0.0, ci[1] if ci else -math.inf)
        ends.append(end)
        text = "n/a" if math.isnan(v) else f"{v:.3f}" + (f"  [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
        ax.annotate(text, (end, i), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(y, [short(r, 28) for r in rows], fontsize=9)
    ax.set_ylim(m - 0.5, -0.5)
    top = max([e for e in ends if math.isfinite(e)], default=1.0)
    ax.set_xlim(0, max(top * (1.45 if any(cis) else 1.2), 1e-3))
    ax.set_xlabel(f"mean {metric} over tasks" + (" (bars: 95% interval)" if any(cis) else ""))
    ax.set_title(f"Mean {metric} per setting", fontsize=10)
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
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
