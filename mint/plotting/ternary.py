"""The interaction map: a ternary plot of (redundancy, uniqueness, synergy) shares per task."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from mint.artifacts.profiles import ProfileSet
from mint.plotting.labels import place_labels
from mint.plotting.style import group_colors, new_figure, ordered_groups, short, task_groups

H = np.sqrt(3) / 2
CORNERS = {"redundancy": (0.0, 0.0), "uniqueness": (1.0, 0.0), "synergy": (0.5, H)}
NAME_LIMIT = 15  #: above this many tasks, points carry numbers and a key lists the names


def shares(ps: ProfileSet) -> tuple[np.ndarray, str]:
    """(T, 3) shares of redundancy, uniqueness, synergy per task, and where they come from.

    From PID when every task has it: (R, U1 + U2, S) clipped at 0 and normalised. Otherwise from the
    agreement rates a1, a2: (min(a1, a2), |a1 - a2|, 1 - max(a1, a2)), which already sum to 1.
    """
    if ps.pid is not None:
        p = np.clip(ps.pid, 0.0, None)
        raw = np.column_stack([p[:, 0], p[:, 1] + p[:, 2], p[:, 3]])
        tot = raw.sum(axis=1, keepdims=True)
        return np.divide(raw, tot, out=np.full_like(raw, 1 / 3), where=tot > 0), "pid"
    a = ps.agreement
    raw = np.column_stack([a.min(axis=1), np.abs(a[:, 0] - a[:, 1]), 1.0 - a.max(axis=1)])
    return raw / raw.sum(axis=1, keepdims=True), "agreement"


def project(s: np.ndarray) -> np.ndarray:
    """Barycentric (R, U, S) -> 2-D: R at (0, 0), U at (1, 0), S at (0.5, sqrt(3)/2)."""
    s = np.asarray(s, float)
    return np.column_stack([s[:, 1] + s[:, 2] / 2, s[:, 2] * H])


def _frame(ax: Axes) -> None:
    tri = np.array([CORNERS["redundancy"], CORNERS["uniqueness"], CORNERS["synergy"], CORNERS["redundancy"]])
    ax.plot(tri[:, 0], tri[:, 1], color="0.2", lw=1.0, zorder=2)
    for f in (0.2, 0.4, 0.6, 0.8):  # grid lines of constant share
        for a, b in (
            ((f, 1 - f, 0), (f, 0, 1 - f)),
            ((1 - f, f, 0), (0, f, 1 - f)),
            ((1 - f, 0, f), (0, 1 - f, f)),
        ):
            seg = project(np.array([a, b]))
            ax.plot(seg[:, 0], seg[:, 1], color="0.88", lw=0.6, zorder=0)
    ax.set_xlim(-0.16, 1.16)
    ax.set_ylim(-0.12, H + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")


def interaction_map(
    profiles: dict[str, Any], groups: dict[str, Any] | None = None, ax: Axes | None = None
) -> Figure:
    """Ternary map of each task's (redundancy, uniqueness, synergy) shares, coloured by group.

    ``profiles``: a profiles.json dict; ``groups``: a groups.json dict. Up to 15 tasks are labelled by
    name, more by number with a key beside the map. Returns the figure (``ax.figure`` if ``ax``).
    """
    ps = ProfileSet.from_dict(profiles)
    n = len(ps.tasks)
    numbered = n > NAME_LIMIT
    if ax is None:
        fig = new_figure(11.5 if numbered else 8.0, 7.0)
        ax = fig.add_axes((0.02, 0.03, 0.56 if numbered else 0.96, 0.86))
    fig = ax.figure
    _frame(ax)
    s, source = shares(ps)
    xy = project(s)
    assign = task_groups(ps.tasks, groups)
    names = ordered_groups(assign)
    colors = group_colors(names)
    for g in names:
        idx = [i for i, t in enumerate(ps.tasks) if assign[t] == g]
        ax.scatter(
            xy[idx, 0],
            xy[idx, 1],
            s=42,
            color=colors[g],
            edgecolor="white",
            linewidth=0.6,
            label=f"{g} ({len(idx)})",
            zorder=4,
        )
    _mark_disagreements(ax, xy, ps.tasks, profiles.get("reference"))
    corner_texts = [
        ax.text(0.0, -0.03, "redundancy", ha="center", va="top", fontsize=11, weight="bold"),
        ax.text(1.0, -0.03, "uniqueness", ha="center", va="top", fontsize=11, weight="bold"),
        ax.text(0.5, H + 0.03, "synergy", ha="center", va="bottom", fontsize=11, weight="bold"),
    ]
    legend = None
    if (groups is not None or profiles.get("reference")) and len(names) <= 12:
        title = "group" if groups is not None else None
        legend = ax.legend(loc="upper left", title=title, fontsize=8, title_fontsize=9, frameon=False)
    m1, m2 = ps.modalities
    if source == "pid":
        sub = f"shares of PID atoms: R, U_{m1} + U_{m2}, S (normalised)"
    else:
        sub = (
            f"no PID: from agreement rates a = (a_{m1}, a_{m2}): R = min(a), U = |a_1 - a_2|, S = 1 - max(a)"
        )
    ax.set_title(f"Interaction map of {n} tasks\n{sub}", fontsize=11)
    fig.canvas.draw()  # final axes position before measuring text
    renderer = fig.canvas.get_renderer()
    obstacles = [t.get_window_extent(renderer).padded(2) for t in corner_texts]
    if legend is not None:
        obstacles.append(legend.get_window_extent(renderer).padded(2))
    texts = [str(i + 1) if numbered else t for i, t in enumerate(ps.tasks)]
    place_labels(
        ax, xy, texts, [colors[assign[t]] for t in ps.tasks], obstacles, fontsize=7 if numbered else 8
    )
    if numbered:
        _key(ax, ps.tasks, [colors[assign[t]] for t in ps.tasks])
    return fig


def _mark_disagreements(ax: Axes, xy: np.ndarray, tasks: list[str], reference: Any) -> None:
    """Ring the tasks whose computed label differs from their reference label (profiles' ``reference``)."""
    if not isinstance(reference, dict):
        return
    idx = [i for i, t in enumerate(tasks) if t in set(reference.get("disagree") or ())]
    n = reference.get("n", len(idx))
    ax.scatter(
        xy[idx, 0],
        xy[idx, 1],
        s=150,
        facecolor="none",
        edgecolor="#d62728",
        linewidth=1.6,
        label=f"computed \u2260 reference ({len(idx)} of {n})",
        zorder=5,
    )


def _key(ax: Axes, tasks: list[str], colors: list[str]) -> None:
    """Numbered list of task names to the right of the map, in up to two columns."""
    kax = ax.inset_axes((1.03, 0.0, 0.62, 1.0))
    kax.axis("off")
    cols = 1 if len(tasks) <= 25 else 2
    rows = -(-len(tasks) // cols)
    step = min(0.05, 1.0 / rows)
    for i, (t, c) in enumerate(zip(tasks, colors)):
        col, row = divmod(i, rows)
        kax.text(
            col * 0.5,
            1.0 - row * step,
            f"{i + 1:>2}  {short(t, 26)}",
            fontsize=8,
            color=c,
            va="top",
            ha="left",
            family="monospace",
        )
