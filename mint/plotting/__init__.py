"""Figures for task profiles, groupings and results, drawn on the Agg canvas (no display needed).

Each function takes the loaded JSON dicts (profiles.json, groups.json, report.json) and returns a
matplotlib Figure; :func:`plot_all` writes them all with an ``index.json``.
"""

from mint.artifacts.report import validate_report
from mint.plotting.dendrogram import dendrogram_chart
from mint.plotting.pid_bars import pid_chart
from mint.plotting.plot_all import FIGURES, plot_all
from mint.plotting.results import results_chart, results_mean_figure, results_tasks_figure
from mint.plotting.scores import score_chart
from mint.plotting.ternary import interaction_map, project, shares

__all__ = [
    "interaction_map",
    "score_chart",
    "pid_chart",
    "dendrogram_chart",
    "results_tasks_figure",
    "results_mean_figure",
    "results_chart",
    "plot_all",
    "validate_report",
    "project",
    "shares",
    "FIGURES",
]
