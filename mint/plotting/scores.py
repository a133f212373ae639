"""The score that decided each task's interaction label (the chance-corrected score, or the MINT score
with ``decide_by: raw``) with its 95% interval, sorted, with the interaction thresholds."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from mint.artifacts.profiles import ProfileSet
from mint.plotting.style import UNGROUPED, group_colors, new_figure, ordered_groups, task_groups


def task_height(n: int, per_task: float = 0.26, extra: float = 1.6) -> float:
    """Figure height in inches for a chart with one row per task."""
    return max(3.0, per_task * n + extra)


def score_chart(
    profiles: dict[str, Any], groups: dict[str, Any] | None = None, ax: Axes | None = None
) -> Figure:
    """Horizontal chart of each task's deciding score (:meth:`ProfileSet.decider`) and 95% interval,
    sorted by score, coloured by group, with vertical lines at the thresholds (``config.thresholds``,
    default 1.5 / 0.5) that turned it into the interaction label."""
    ps = ProfileSet.from_dict(profiles)
    score, score_ci, what = ps.decider(), ps.decider_ci(), ps.decider_name
    n = len(ps.tasks)
    if ax is None:
        fig = new_figure(8.0, task_height(n))
        ax = fig.add_subplot()
    fig = ax.figure
    order = np.argsort(score, kind="stable")
    y = np.arange(n)
    assign = task_groups(ps.tasks, groups)
    names = ordered_groups(assign)
    colors = group_colors(names)
    for g in names:
        rows = [r for r, i in enumerate(order) if assign[ps.tasks[i]] == g]
        idx = order[rows]
        lo = np.clip(score[idx] - score_ci[idx, 0], 0, None)
        hi = np.clip(score_ci[idx, 1] - score[idx], 0, None)
        ax.errorbar(
            score[idx],
            y[rows],
            xerr=[lo, hi],
            fmt="o",
            ms=5,
            capsize=2.5,
            color=colors[g],
            label=g if g != UNGROUPED or groups is not None else f"{what}, 95% interval",
        )
    hi_t, lo_t = ps.thresholds
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for t in (hi_t, lo_t):
        ax.axvline(t, color="0.4", ls="--", lw=0.9, zorder=0)
    xmax = max(2.0, float(score_ci[:, 1].max()))
    xmin = min(0.0, float(score_ci[:, 0].min()))
    for x0, x1, name in ((xmin, lo_t, "synergy"), (lo_t, hi_t, "uniqueness"), (hi_t, xmax, "redundancy")):
        ax.text((x0 + x1) / 2, 1.01, name, transform=top, ha="center", va="bottom", fontsize=9, color="0.3")
    ax.set_xlim(xmin - 0.05, xmax + 0.05)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_yticks(y, [ps.tasks[i] for i in order], fontsize=8)
    if ps.decider_name == "MINT score":
        ax.set_xlabel(
            f"MINT score (agreement of {ps.modalities[0]}-only and {ps.modalities[1]}-only "
            "with the joint prediction, 0..2)"
        )
    else:
        ax.set_xlabel(
            f"chance-corrected score (kappa of {ps.modalities[0]}-only + kappa of {ps.modalities[1]}-only "
            "with the joint prediction, -2..2)"
        )
    ax.set_title(
        f"{what[0].upper()}{what[1:]} per task with 95% interval: it decides the label "
        f"(thresholds {hi_t:g} / {lo_t:g})",
        pad=20,
    )
    ax.grid(axis="x", color="0.92")
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
        title="group" if groups is not None else None,
    )
    return fig
