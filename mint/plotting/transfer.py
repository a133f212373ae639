"""The transfer heatmap of a report.json: per task (rows) and grouping (columns), the task's score under
that grouping minus its score with its own adapter (``single``); cells whose 95% interval excludes zero
are marked (``+`` helps, ``-`` hurts)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from mint.plotting.scores import task_height
from mint.plotting.style import check_format, new_figure, save, short


def transfer_figure(report: dict[str, Any]) -> Figure:
    """Tasks x groupings heatmap of ``report["transfer"]`` (diverging colours, zero white)."""
    transfer = report["transfer"]
    tasks = list(transfer)
    groupings = list(dict.fromkeys(g for per in transfer.values() for g in per))
    values = np.array([[transfer[t].get(g, np.nan) for g in groupings] for t in tasks], dtype=float)
    marks = {(e["task"], e["grouping"]): e["effect"] for e in report.get("transfer_effects") or []}
    span = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    span = max(span, 1e-3)
    fig = new_figure(1.6 + 0.9 * len(groupings), task_height(len(tasks), 0.35, 1.4))
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="RdBu", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    for i, t in enumerate(tasks):
        for j, g in enumerate(groupings):
            if np.isfinite(values[i, j]):
                mark = {"helps": " +", "hurts": " -"}.get(marks.get((t, g), ""), "")
                ax.text(j, i, f"{values[i, j]:+.2f}{mark}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(groupings)), [short(g, 18) for g in groupings], rotation=30, ha="right")
    ax.set_yticks(range(len(tasks)), [short(t) for t in tasks])
    ax.set_title("Transfer: score minus the task's own adapter (+/-: 95% interval excludes 0)", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label=f"difference in {report.get('metric', 'score')}")
    return fig


def transfer_chart(
    report: dict[str, Any], out_dir: str | os.PathLike, fmt: str = "png", dpi: int = 150
) -> list[Path]:
    """Write ``transfer.<fmt>`` into ``out_dir`` when the report has a transfer table; return the paths."""
    check_format(fmt)
    if not report.get("transfer"):
        return []
    return [save(transfer_figure(report), Path(out_dir) / f"transfer.{fmt}", fmt, dpi)]
