"""Dendrogram of the tasks and the task-distance heatmap in the dendrogram's leaf order."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.cluster.hierarchy import dendrogram, linkage, optimal_leaf_ordering
from scipy.spatial.distance import squareform

from mint.artifacts.profiles import ProfileSet
from mint.errors import MintError
from mint.plotting.scores import task_height
from mint.plotting.style import group_colors, new_figure, ordered_groups, task_groups

DISTANCES = ("score", "profile")


def leaf_order(d: np.ndarray, method: str = "average") -> tuple[np.ndarray, list[int]]:
    """Linkage of a square distance matrix with optimal leaf ordering, and its leaf order."""
    y = squareform(np.asarray(d, float), checks=False)
    z = optimal_leaf_ordering(linkage(y, method=method), y)
    return z, dendrogram(z, no_plot=True)["leaves"]


def dendrogram_chart(
    profiles: dict[str, Any], groups: dict[str, Any] | None = None, distance: str = "score"
) -> Figure | None:
    """Average-linkage dendrogram (optimal leaf ordering) beside the distance heatmap in leaf order.

    ``distance``: ``score`` for |score(A) - score(B)| of the score that decides the labels (the
    chance-corrected score, or the MINT score with ``decide_by: raw``), ``profile`` for the Euclidean
    distance of standardised profile vectors. ``None`` for fewer than two tasks.
    """
    if distance not in DISTANCES:
        raise MintError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
    ps = ProfileSet.from_dict(profiles)
    n = len(ps.tasks)
    if n < 2:
        return None
    d = ps.score_distance() if distance == "score" else ps.profile_distance()
    z, leaves = leaf_order(d)
    side = max(4.0, task_height(n, 0.24, 1.0))
    names = [ps.tasks[i] for i in leaves]
    fontsize = 8 if n <= 30 else 7
    label_h = 0.075 * fontsize / 8 * max(len(t) for t in names) + 0.15  # task names above the columns
    height = side + 1.2 + label_h
    fig = new_figure(side + 4.0, height)
    gs = fig.add_gridspec(
        2,
        2,
        width_ratios=(1.0, side / 2.2),
        height_ratios=(side, 0.22),
        wspace=0.02,
        hspace=0.08,
        left=0.04,
        right=0.72,
        top=1 - (0.75 + label_h) / height,
        bottom=0.06,
    )
    ax_d = fig.add_subplot(gs[0, 0])
    ax_h = fig.add_subplot(gs[0, 1])
    ax_c = fig.add_subplot(gs[1, 1])
    dendrogram(
        z, orientation="left", no_labels=True, ax=ax_d, color_threshold=0, above_threshold_color="0.25"
    )
    ax_d.set_ylim(0, 10 * n)
    ax_d.axis("off")
    ordered = d[np.ix_(leaves, leaves)]
    im = ax_h.imshow(
        ordered,
        vmin=0.0,  # distances: the scale starts at 0 (and stays readable when all are 0)
        vmax=max(float(ordered.max()), 1e-6),
        cmap="viridis_r",
        origin="lower",
        aspect="auto",
        extent=(-0.5, n - 0.5, -0.5, n - 0.5),
        interpolation="nearest",
    )
    # both axes name the tasks (rows on the right, columns on top), in the dendrogram's leaf order
    ax_h.set_yticks(np.arange(n), names, fontsize=fontsize)
    ax_h.yaxis.tick_right()
    ax_h.set_xticks(np.arange(n), names, fontsize=fontsize, rotation=90)
    ax_h.xaxis.tick_top()
    ax_h.tick_params(length=2)
    assign = task_groups(ps.tasks, groups)
    if groups is not None:
        colors = group_colors(ordered_groups(assign))
        for tick, t in [*zip(ax_h.get_yticklabels(), names), *zip(ax_h.get_xticklabels(), names)]:
            tick.set_color(colors[assign[t]])
    symbol = "MINT" if ps.decider_name == "MINT score" else "corrected"
    what = (
        f"d(A,B) = |{symbol}(A) - {symbol}(B)| ({ps.decider_name})"
        if distance == "score"
        else "distance of standardised profile vectors"
    )
    cb = fig.colorbar(im, cax=ax_c, orientation="horizontal")
    cb.set_label(what, fontsize=8)
    cb.ax.xaxis.set_major_locator(MaxNLocator(5))
    cb.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"Task dendrogram (average linkage, optimal leaf order) and distances\n{what}; "
        "rows and columns in leaf order" + ("; names coloured by group" if groups is not None else ""),
        fontsize=10,
        x=0.42,
        y=1 - 0.1 / height,
        va="top",
    )
    return fig
