"""PID atoms per task as stacked horizontal bars (bits)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mint.artifacts.profiles import ProfileSet
from mint.plotting.scores import task_height
from mint.plotting.style import PID_COLORS, group_colors, new_figure, ordered_groups, task_groups


def pid_chart(
    profiles: dict[str, Any], groups: dict[str, Any] | None = None, ax: Axes | None = None
) -> Figure | None:
    """Stacked bars of redundancy, the two uniquenesses and synergy per task, in bits, in the order of
    the score chart; task names coloured by group. ``None`` when no task has PID."""
    ps = ProfileSet.from_dict(profiles)
    if not ps.pid_mask.any():
        return None
    n = len(ps.tasks)
    if ax is None:
        fig = new_figure(8.0, task_height(n))
        ax = fig.add_subplot()
    fig = ax.figure
    recs = [profiles["tasks"][t].get("pid") for t in ps.tasks]
    m1, m2 = ps.modalities
    atoms = np.zeros((n, 4))
    for i, p in enumerate(recs):
        if p is not None:
            atoms[i] = [
                p["redundancy"],
                p.get(f"unique_{m1}", p.get("unique_1")),
                p.get(f"unique_{m2}", p.get("unique_2")),
                p["synergy"],
            ]
    atoms = np.clip(atoms, 0.0, None)  # estimators leave tiny negatives
    order = np.argsort(ps.score, kind="stable")
    y = np.arange(n)
    left = np.zeros(n)
    labels = ("redundancy", f"unique {m1}", f"unique {m2}", "synergy")
    for a, (lab, col) in enumerate(zip(labels, PID_COLORS)):
        vals = atoms[order, a]
        ax.barh(y, vals, left=left, height=0.7, color=col, label=lab, edgecolor="white", linewidth=0.4)
        left += vals
    for r, i in enumerate(order):
        if not ps.pid_mask[i]:
            ax.text(0.0, r, " no PID", va="center", ha="left", fontsize=7, color="0.4")
    assign = task_groups(ps.tasks, groups)
    colors = group_colors(ordered_groups(assign))
    ax.set_yticks(y, [ps.tasks[i] for i in order], fontsize=8)
    if groups is not None:
        for tick, i in zip(ax.get_yticklabels(), order):
            tick.set_color(colors[assign[ps.tasks[i]]])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, max(float(left.max()) * 1.05, 1e-3))
    units = next((p.get("units", "bits") for p in recs if p is not None), "bits")
    ax.set_xlabel(f"information about the answer ({units})")
    ax.set_title(
        "PID atoms per task (sorted by MINT score" + ("; names coloured by group)" if groups else ")")
    )
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="PID atom")
    return fig
