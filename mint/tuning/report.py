"""``report.json`` + ``report.md`` + ``figures/`` from the eval.json of compared runs (docs/design.md, file formats).

Rows are named by each run's grouping method (``all``, ``random``, ``single``, ``mint``, ...) plus
``zero_shot`` (the bare backbone); every number is read from or computed from the eval.json files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mint.errors import MintError
from mint.io import atomic_write_json, atomic_write_text, check_output, read_json, stamp

ZERO_SHOT = "zero_shot"
_METRIC_NAMES = {
    "exact": "accuracy",
    "choice": "accuracy",
    "f1": "f1",
    "rouge_l": "ROUGE-L",
    "bleu": "BLEU",
    "cider": "CIDEr",
}


def row_names(evals: list[dict[str, Any]]) -> list[str]:
    """A row name per eval.json: its run's method, made unique with ``_2``, ``_3``... on repeats."""
    names: list[str] = []
    for ev in evals:
        base = str(ev.get("method") or "custom")
        name, k = base, 2
        while name in names or name == ZERO_SHOT:
            name, k = f"{base}_{k}", k + 1
        names.append(name)
    return names


def rows_from_runs(run_dirs: list[str | os.PathLike]) -> dict[str, dict[str, Any]]:
    """``{row name: eval.json}`` for finished, evaluated runs (in the order given)."""
    evals = [read_json(Path(r) / "eval.json", "eval.json (run mint evaluate on it first)") for r in run_dirs]
    return dict(zip(row_names(evals), evals))


def _row(ev: dict[str, Any], tasks: list[str], name: str, source: str) -> dict[str, Any]:
    scores = ev.get("tasks")
    if not isinstance(scores, dict):
        raise MintError(f"{source}: tasks: expected an object of task -> score")
    missing = [t for t in tasks if t not in scores]
    if missing:
        raise MintError(f"{source}: row {name!r} has no score for task {missing[0]!r}")
    per_task = {t: scores[t]["score"] for t in tasks}
    values = [v for v in per_task.values() if v is not None]
    return {
        "mean": float(np.mean(values)) if values else None,
        "tasks": per_task,
        "n": {t: scores[t].get("n") for t in tasks},
    }


def make_report(eval_results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The report.json payload for ``{row name: eval.json}``; the ``zero_shot`` row comes from the first
    eval.json that has zero-shot scores (unless a row of that name is given)."""
    if not eval_results:
        raise MintError("no evaluated runs to report on")
    first_name, first = next(iter(eval_results.items()))
    tasks = list(first.get("tasks") or {})
    if not tasks:
        raise MintError(f"row {first_name!r}: eval.json has no task scores")
    metrics = {t: first["tasks"][t].get("metric", "exact") for t in tasks}
    rows: dict[str, dict[str, Any]] = {}
    zs_source = next((ev for ev in eval_results.values() if ev.get(ZERO_SHOT)), None)
    if zs_source is not None and ZERO_SHOT not in eval_results:
        row = _row(zs_source[ZERO_SHOT], tasks, ZERO_SHOT, str(zs_source.get("run", "eval.json")))
        rows[ZERO_SHOT] = {
            **row,
            "groups": {},
            "trainable_params": 0,
            "train_seconds": 0.0,
            "method": ZERO_SHOT,
            "run": zs_source.get("run"),
        }
    for name, ev in eval_results.items():
        source = str(ev.get("run", name))
        extra = set(ev.get("tasks") or {}) - set(tasks)
        if extra:
            raise MintError(
                f"{source}: row {name!r} scores task {sorted(extra)[0]!r}, which row "
                f"{first_name!r} does not (compare runs on the same suite)"
            )
        row = _row(ev, tasks, name, source)
        rows[name] = {
            **row,
            "groups": ev.get("groups") or {},
            "trainable_params": ev.get("trainable_params"),
            "train_seconds": ev.get("train_seconds"),
            "method": ev.get("method"),
            "run": ev.get("run"),
        }
    kinds = sorted(
        {
            _METRIC_NAMES.get(m, "embedding cosine" if m.startswith("embedding:") else m)
            for m in metrics.values()
        }
    )
    return stamp(
        {
            "metric": kinds[0]
            if len(kinds) == 1
            else "macro mean over tasks of each task's own metric (" + ", ".join(kinds) + ")",
            "task_metrics": metrics,
            "tasks": tasks,
            "rows": rows,
        }
    )


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def report_markdown(
    report: dict[str, Any],
    figures: list[Path] = (),
    base: Path | None = None,
    profile_figures: list[Path] = (),
) -> str:
    """A readable report: summary table, per-task table, groups of each setting, figures (the results',
    then the task profiles' where given)."""
    rows, tasks = report["rows"], report["tasks"]
    lines = [
        "# mint report",
        "",
        f"Metric: {report['metric']} (mean over {len(tasks)} tasks' test splits).",
        "",
        "| setting | mean | groups | trainable params | train seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    best = max((r["mean"] for r in rows.values() if r["mean"] is not None), default=None)
    for name, r in rows.items():
        mean = _fmt(r["mean"])
        if best is not None and r["mean"] == best:
            mean = f"**{mean}**"
        lines.append(
            f"| {name} | {mean} | {len(r['groups'])} | {_fmt(r['trainable_params'])} | "
            f"{_fmt(r['train_seconds'], 1)} |"
        )
    metrics = report.get("task_metrics") or {}
    lines += [
        "",
        "## Per task",
        "",
        "| task | metric | " + " | ".join(rows) + " |",
        "|---|---|" + "---:|" * len(rows),
    ]
    for t in tasks:
        m = metrics.get(t, "exact")
        label = _METRIC_NAMES.get(m, "embedding cosine" if m.startswith("embedding:") else m)
        lines.append(f"| {t} | {label} | " + " | ".join(_fmt(r["tasks"][t]) for r in rows.values()) + " |")
    lines += ["", "## Groups", ""]
    for name, r in rows.items():
        if r["groups"]:
            lines.append(
                f"- **{name}**: " + "; ".join(f"{g}: {', '.join(m)}" for g, m in r["groups"].items())
            )
    for title, paths in (("Figures", figures), ("Task profiles", profile_figures)):
        if paths:
            lines += ["", f"## {title}", ""]
            for f in paths:
                rel = os.path.relpath(f, base) if base else str(f)
                image = "" if Path(f).suffix == ".pdf" else "!"  # a PDF is linked, not shown
                lines.append(f"{image}[{Path(f).stem}]({rel})")
    return "\n".join(lines) + "\n"


def report_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(report.json, report.md, figures/) for ``out``: a ``.json`` file or a folder."""
    out = Path(out)
    json_path = out if out.suffix == ".json" else out / "report.json"
    return json_path, json_path.with_suffix(".md"), json_path.parent / "figures"


def build_report(
    eval_results: dict[str, dict[str, Any]],
    out: str | os.PathLike,
    *,
    force: bool = False,
    figures: bool = True,
    fmt: str = "png",
    profile_figures: list[Path] = (),
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write report.json, report.md, report.html and the result figures for ``{row name: eval.json}``;
    return the report.

    ``out`` is the report.json path or its folder; existing reports are kept unless ``force``.
    ``profile_figures``: figures of the task profiles already written (``mint plot``), linked from report.md
    and embedded in report.html; ``config``: the configuration shown in report.html.
    """
    json_path, md_path, fig_dir = report_paths(out)
    html_path = json_path.with_suffix(".html")
    for path in (json_path, md_path, html_path):
        check_output(path, force)
    report = make_report(eval_results)
    written: list[Path] = []
    if figures:
        from mint.plotting import results_chart

        written = results_chart(report, fig_dir, fmt=fmt)
    atomic_write_json(json_path, report)
    atomic_write_text(md_path, report_markdown(report, written, json_path.parent, list(profile_figures)))
    from mint.tuning.report_html import report_html

    page = report_html(
        report, profile_figures=profile_figures, base=json_path.parent, config=config, result_figures=figures
    )
    atomic_write_text(html_path, page)
    return report
