"""``plot_all``: every figure for a profiles.json (+ groups, + report) and ``index.json``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mint.artifacts.profiles import validate_profiles
from mint.artifacts.report import validate_report
from mint.errors import MintError
from mint.io import atomic_write_json, stamp
from mint.plotting.dendrogram import dendrogram_chart
from mint.plotting.pid_bars import pid_chart
from mint.plotting.results import results_mean_figure, results_tasks_figure
from mint.plotting.scores import score_chart
from mint.plotting.style import check_format, save, task_groups
from mint.plotting.ternary import interaction_map

#: name -> (title, why it can be missing)
FIGURES: dict[str, str] = {
    "interaction_map": "Interaction map (ternary: redundancy / uniqueness / synergy shares)",
    "mint_scores": "MINT score per task with 95% interval and thresholds",
    "pid_atoms": "PID atoms per task (bits)",
    "dendrogram": "Task dendrogram and distance heatmap",
    "results_tasks": "Score per task for each compared setting",
    "results_mean": "Mean score per setting",
}


def planned_files(out_dir: str | os.PathLike, fmt: str, with_results: bool) -> list[Path]:
    """Every file plot_all may write (figures and index.json)."""
    names = [n for n in FIGURES if with_results or not n.startswith("results_")]
    return [Path(out_dir) / f"{n}.{fmt}" for n in names] + [Path(out_dir) / "index.json"]


def plot_all(
    profiles: dict[str, Any],
    groups: dict[str, Any] | None = None,
    results: dict[str, Any] | None = None,
    *,
    out_dir: str | os.PathLike,
    fmt: str = "png",
    dpi: int = 150,
    force: bool = False,
) -> list[Path]:
    """Write every figure into ``out_dir`` as ``fmt`` (png, svg or pdf), plus ``index.json`` listing what was
    written and what was skipped and why. Returns the paths written (index.json last).

    Inputs are checked before anything is written; existing files are refused unless ``force``.
    """
    check_format(fmt)
    validate_profiles(profiles)
    if groups is not None:
        task_groups(list(profiles["tasks"]), groups)
    if results is not None:
        validate_report(results)
    if not force:
        existing = [str(p) for p in planned_files(out_dir, fmt, results is not None) if p.exists()]
        if existing:
            raise MintError(f"{existing[0]} already exists (use --force to overwrite)")
    makers: dict[str, Callable[[], Figure | None]] = {
        "interaction_map": lambda: interaction_map(profiles, groups),
        "mint_scores": lambda: score_chart(profiles, groups),
        "pid_atoms": lambda: pid_chart(profiles, groups),
        "dendrogram": lambda: dendrogram_chart(profiles, groups),
    }
    if results is not None:
        makers["results_tasks"] = lambda: results_tasks_figure(results)
        makers["results_mean"] = lambda: results_mean_figure(results)
    reasons = {"pid_atoms": "no task in the profiles has PID", "dendrogram": "fewer than two tasks"}
    written: list[Path] = []
    figures, skipped = [], []
    for name, make in makers.items():
        fig = make()
        if fig is None:
            skipped.append({"name": name, "reason": reasons[name]})
            continue
        path = save(fig, Path(out_dir) / f"{name}.{fmt}", fmt, dpi)
        written.append(path)
        figures.append({"name": name, "file": path.name, "title": FIGURES[name]})
    if results is None:
        skipped.append({"name": "results", "reason": "no report given (--results)"})
    index = stamp(
        {
            "format": fmt,
            "dpi": dpi,
            "tasks": len(profiles["tasks"]),
            "grouping": groups.get("method") if groups else None,
            "figures": figures,
            "skipped": skipped,
        }
    )
    written.append(atomic_write_json(Path(out_dir) / "index.json", index))
    return written
