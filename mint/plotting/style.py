"""Shared figure plumbing: Agg figures without pyplot (no display, no global state), group colours,
atomic saving."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mint.errors import MintError
from mint.io import atomic_path

FORMATS = ("png", "svg", "pdf")
UNGROUPED = "(no group)"
_FIXED = {
    "redundancy": "#1f77b4",
    "uniqueness": "#ff7f0e",
    "synergy": "#2ca02c",
    "all": "#7f7f7f",
    UNGROUPED: "#7f7f7f",
}
_CYCLE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#9edae5",
    "#dbdb8d",
    "#393b79",
]
PID_COLORS = ("#1f77b4", "#ff7f0e", "#ffd23f", "#2ca02c")  # R, U1, U2, S


def new_figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, independent of pyplot's global state."""
    fig = Figure(figsize=(width, height), layout=None)
    FigureCanvasAgg(fig)
    return fig


def distinct_colors(n: int, avoid: Sequence[str] = ()) -> list[str]:
    """``n`` different colours, none of them in ``avoid``: the qualitative cycle first, then hues spaced
    around the colour wheel (alternating in lightness) for as many more as are needed."""
    import colorsys

    taken = {c.lower() for c in avoid}
    out = [c for c in _CYCLE if c.lower() not in taken][:n]
    k = 0
    while len(out) < n:
        # golden-ratio hue steps never repeat; three lightness/saturation levels keep neighbours apart
        hue = (0.13 + 0.618034 * k) % 1.0
        light, sat = ((0.42, 0.75), (0.6, 0.65), (0.32, 0.55))[k % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, sat)
        c = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        if c not in taken and c not in out:
            out.append(c)
        k += 1
    return out


def group_colors(names: Sequence[str]) -> dict[str, str]:
    """A different colour per group name: fixed colours for interaction names, distinct ones for the rest."""
    colors: dict[str, str] = {}
    uniq = ["#ff7f0e", "#8c564b"]  # uniqueness_<mod1>, uniqueness_<mod2>
    used = {_FIXED[n] for n in names if n in _FIXED} | set(uniq)
    free = iter(distinct_colors(len(names), avoid=sorted(used)))
    for n in names:
        if n in _FIXED:
            colors[n] = _FIXED[n]
        elif n.startswith("uniqueness_") and uniq:
            colors[n] = uniq.pop(0)
        else:
            colors[n] = next(free)
    return colors


def task_groups(
    tasks: Sequence[str], groups: dict[str, Any] | None, source: str = "groups"
) -> dict[str, str]:
    """task -> group name from a groups.json dict (``groups`` mapping); tasks not in it are ungrouped.

    Raises MintError when the file names tasks that the profiles do not have.
    """
    if groups is None:
        return dict.fromkeys(tasks, UNGROUPED)
    g = groups.get("groups") if isinstance(groups, Mapping) else None
    if not isinstance(g, dict) or not g:
        raise MintError(f"{source}: missing or empty 'groups' (expected a groups.json)")
    out = dict.fromkeys(tasks, UNGROUPED)
    known = set(tasks)
    for name, members in g.items():
        if not isinstance(members, list):
            raise MintError(f"{source}: groups.{name}: expected a list of tasks")
        for t in members:
            if t not in known:
                raise MintError(f"{source}: groups.{name}: task {t!r} is not in the profiles")
            out[t] = str(name)
    return out


def ordered_groups(assign: dict[str, str]) -> list[str]:
    """Group names in first-appearance order, ungrouped last."""
    names = list(dict.fromkeys(assign.values()))
    return [n for n in names if n != UNGROUPED] + ([UNGROUPED] if UNGROUPED in names else [])


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise MintError(f"--format: {fmt!r} is not supported (choose from {', '.join(FORMATS)})")
    return fmt


def save(fig: Figure, path: str | os.PathLike, fmt: str = "png", dpi: int = 150) -> Path:
    """Write ``fig`` atomically as ``fmt`` (png, svg or pdf)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **save_options(fmt, dpi))
    return Path(path)


def save_options(fmt: str, dpi: int = 150) -> dict[str, Any]:
    """``savefig`` options for ``fmt``: tight bounds, and no creation date in svg / pdf files (so that the
    same figure gives the same bytes)."""
    options: dict[str, Any] = {
        "format": check_format(fmt),
        "dpi": dpi,
        "bbox_inches": "tight",
        "pad_inches": 0.15,
    }
    if fmt in ("svg", "pdf"):
        options["metadata"] = {"Date": None} if fmt == "svg" else {"CreationDate": None}
    return options


def short(name: str, width: int = 30) -> str:
    """Truncate a label to ``width`` characters with an ellipsis."""
    return name if len(name) <= width else name[: width - 1] + "\u2026"
