"""``report.json`` and ``report.md`` from the eval.json of compared runs (docs/design.md, file formats).

Building the report depends on no figure code: callers draw the figures and the page from the
:class:`~mint.artifacts.report.Report` (:mod:`mint.plotting`) and hand their paths to :func:`write_report`
(:func:`mint.report` does all of it).

Rows are named by each run's grouping method (``all``, ``random``, ``single``, ``mint``, ...) plus
``zero_shot`` (the bare backbone); every number is read from or computed from the eval.json files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mint.artifacts.report import Report
from mint.artifacts.runs import EVAL, Evaluation
from mint.errors import MintError
from mint.io import atomic_write_json, atomic_write_text, check_output, stamp
from mint.tuning.stats import RowScores, compare, macro_estimate, paired_difference, task_effects

ZERO_SHOT = "zero_shot"
_METRIC_NAMES = {
    "exact": "accuracy",
    "choice": "accuracy",
    "f1": "f1",
    "rouge_l": "ROUGE-L",
    "bleu": "BLEU",
    "cider": "CIDEr",
}


#: the rows every other grouping is compared with (when present)
BASELINES = (ZERO_SHOT, "all", "random", "single")
#: the row a task's transfer is measured against: the task trained on its own
OWN_ADAPTER = "single"
STATISTICS = (
    "95% intervals and paired differences from seed and test-sample variance components, "
    "t-based with Welch-Satterthwaite degrees of freedom; p-values Holm-corrected across the comparisons"
)


def row_names(evals: Sequence[Mapping[str, Any]]) -> list[str]:
    """A row name per eval.json: its run's method; runs of one method with different seeds share the row
    (its repeats), a second run of the same method and seed gets ``_2``, ``_3``..."""
    names: list[str] = []
    seeds: dict[str, set[Any]] = {}
    for ev in evals:
        base = str(ev.get("method") or "custom")
        name, k = base, 2
        while name == ZERO_SHOT or ev.get("seed") in seeds.get(name, ()):
            name, k = f"{base}_{k}", k + 1
        seeds.setdefault(name, set()).add(ev.get("seed"))
        names.append(name)
    return names


def rows_from_runs(run_dirs: list[str | os.PathLike]) -> dict[str, list[Evaluation]]:
    """``{row name: [the eval.json of each seed]}`` for finished, evaluated runs (in the order given)."""
    evals = [Evaluation.load(Path(r) / EVAL) for r in run_dirs]
    rows: dict[str, list[Evaluation]] = {}
    for name, ev in zip(row_names(evals), evals):
        rows.setdefault(name, []).append(ev)
    return rows


def _task_scores(block: Any, tasks: list[str], name: str, source: str) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise MintError(f"{source}: tasks: expected an object of task -> score")
    missing = [t for t in tasks if t not in block]
    if missing:
        raise MintError(f"{source}: row {name!r} has no score for task {missing[0]!r}")
    return block


def _row(blocks: list[dict[str, Any]], tasks: list[str], name: str, sources: list[str]) -> dict[str, Any]:
    """Mean and per-task scores of a row from each seed's task scores (the mean over its seeds)."""
    blocks = [_task_scores(b, tasks, name, src) for b, src in zip(blocks, sources)]
    per_task: dict[str, float | None] = {}
    for t in tasks:
        values = [b[t]["score"] for b in blocks if b[t]["score"] is not None]
        per_task[t] = float(np.mean(values)) if values else None
    values = [v for v in per_task.values() if v is not None]
    return {
        "mean": float(np.mean(values)) if values else None,
        "tasks": per_task,
        "n": {t: blocks[0][t].get("n") for t in tasks},
    }


def _sample_matrix(
    blocks: list[dict[str, Any]], tasks: list[str], ids: dict[str, list[str]], name: str
) -> dict[str, np.ndarray] | None:
    """``{task: [seed, sample]}`` per-sample scores of a row, samples in the order of ``ids`` (filled from
    the first row); None when an eval.json predates per-sample scores."""
    out: dict[str, np.ndarray] = {}
    for t in tasks:
        lines = []
        for b in blocks:
            entry = b[t]
            if "sample_scores" not in entry or "ids" not in entry:
                return None
            got = [str(i) for i in entry["ids"]]
            ref = ids.setdefault(t, got)
            if sorted(got) != sorted(ref) or len(set(got)) != len(got):
                raise MintError(
                    f"row {name!r}, task {t!r}: scored on other test samples than the first row "
                    "(compare runs evaluated on one suite sample: the same data seed and test cap)"
                )
            order = {i: k for k, i in enumerate(got)}
            lines.append([float(entry["sample_scores"][order[i]]) for i in ref])
        out[t] = np.asarray(lines, dtype=float)
    return out


def _statistics(report: dict[str, Any], scores: dict[str, RowScores], tasks: list[str]) -> dict[str, Any]:
    """Intervals of every row, comparisons of each grouping with each baseline, transfer vs ``single``."""
    rows = report["rows"]
    for name, rs in scores.items():
        rows[name]["ci95"] = macro_estimate(rs.tasks).ci95
    baselines = [b for b in BASELINES if b in scores]
    pairs = [
        (r, b)
        for r in scores
        if r not in BASELINES
        for b in baselines
        if scores[b].seedless or scores[r].seedless or set(scores[r].seeds) & set(scores[b].seeds)
    ]
    extra: dict[str, Any] = {"statistics": STATISTICS}
    if pairs:
        extra["comparisons"] = compare(scores, pairs)
    if OWN_ADAPTER in scores:
        own = set(scores[OWN_ADAPTER].seeds)
        tuned = {n: rs for n, rs in scores.items() if n != ZERO_SHOT and set(rs.seeds) & own}
        effects = task_effects(tuned, OWN_ADAPTER)
        extra["transfer"] = {t: {g: e["delta"] for g, e in effects[t].items()} for t in tasks if t in effects}
        extra["transfer_effects"] = [
            {"task": t, "grouping": g, "delta": e["delta"], "ci95": e["ci95"], "effect": e["effect"]}
            for t in tasks
            for g, e in effects.get(t, {}).items()
            if e["effect"] != "none"
        ]
    return extra


def _unseen(runs: dict[str, list[dict[str, Any]]], zs_source: dict[str, Any] | None) -> dict[str, Any]:
    """``{task: {row: {"group", "score", "zero_shot", "diff", "ci95"}}}`` for the tasks kept out of
    training and routed to a group (eval.json ``unseen``); ``diff`` is the score minus zero-shot's, its
    interval paired on the same samples (:mod:`mint.tuning.stats`)."""
    zs = ((zs_source or {}).get(ZERO_SHOT) or {}).get("unseen") or {}
    out: dict[str, dict[str, Any]] = {}
    for name, evs in runs.items():
        blocks = [ev.get("unseen") or {} for ev in evs]
        for t in blocks[0]:
            entries = [b[t] for b in blocks if t in b]
            if len(entries) != len(evs):
                raise MintError(f"row {name!r}: unseen task {t!r} was not scored for every seed")
            entry: dict[str, Any] = {
                "group": entries[0].get("group"),
                "score": float(np.mean([e["score"] for e in entries])),
                "zero_shot": zs[t]["score"] if t in zs else None,
            }
            if t in zs:
                ids: dict[str, list[str]] = {}
                try:
                    z = _sample_matrix([zs], [t], ids, ZERO_SHOT)
                    m = _sample_matrix([{t: e} for e in entries], [t], ids, name)
                except MintError:  # scored on other samples: no paired interval
                    z = m = None
                if z is not None and m is not None:
                    seeds = [ev.get("seed") for ev in evs]
                    est = paired_difference(RowScores(seeds, m), RowScores([None], z))
                    entry.update({"diff": est.value, "ci95": est.ci95})
            out.setdefault(t, {})[name] = entry
    return out


def make_report(
    eval_results: Mapping[str, Evaluation | Mapping[str, Any] | Sequence[Evaluation | Mapping[str, Any]]],
    source: str = "report",
) -> Report:
    """The report for ``{row name: an eval.json (an :class:`Evaluation` or its payload) or one per seed}``;
    the ``zero_shot`` row comes from the first eval.json that has zero-shot scores (unless a row of that
    name is given). ``source`` names the report in error messages (its file, once written).

    Where every eval.json keeps per-sample scores, each row gains ``ci95`` and the report
    ``comparisons`` (each grouping vs each baseline) and, with a ``single`` row, ``transfer``
    (:mod:`mint.tuning.stats`)."""
    if not eval_results:
        raise MintError("no evaluated runs to report on")
    runs = {
        name: [
            Evaluation.from_dict(e, f"row {name!r}") for e in (ev if isinstance(ev, (list, tuple)) else [ev])
        ]
        for name, ev in eval_results.items()
    }
    first_name, first = next(iter(runs.items()))
    first = first[0]
    tasks = list(first.get("tasks") or {})
    if not tasks:
        raise MintError(f"row {first_name!r}: eval.json has no task scores")
    metrics = {t: first["tasks"][t].get("metric", "exact") for t in tasks}
    rows: dict[str, dict[str, Any]] = {}
    blocks_of: dict[str, list[dict[str, Any]]] = {}
    seeds_of: dict[str, list[Any]] = {}
    ids: dict[str, list[str]] = {}
    zs_source = next((ev for evs in runs.values() for ev in evs if ev.get(ZERO_SHOT)), None)
    if zs_source is not None and ZERO_SHOT not in runs:
        source = str(zs_source.get("run", "eval.json"))
        block = _task_scores(zs_source[ZERO_SHOT].get("tasks"), tasks, ZERO_SHOT, source)
        rows[ZERO_SHOT] = {
            **_row([block], tasks, ZERO_SHOT, [source]),
            "groups": {},
            "trainable_params": 0,
            "train_seconds": 0.0,
            "method": ZERO_SHOT,
            "run": zs_source.get("run"),
        }
        blocks_of[ZERO_SHOT] = [block]
        seeds_of[ZERO_SHOT] = [None]
    for name, evs in runs.items():
        sources = [str(ev.get("run", name)) for ev in evs]
        for ev, source in zip(evs, sources):
            extra = set(ev.get("tasks") or {}) - set(tasks)
            if extra:
                raise MintError(
                    f"{source}: row {name!r} scores task {sorted(extra)[0]!r}, which row "
                    f"{first_name!r} does not (compare runs on the same suite)"
                )
        blocks = [_task_scores(ev.get("tasks"), tasks, name, src) for ev, src in zip(evs, sources)]
        seeds = [ev.get("seed") for ev in evs]
        if len(set(map(str, seeds))) != len(seeds):
            raise MintError(f"row {name!r}: two runs with seed {seeds[0]!r}; give each repeat its own seed")
        seconds = [ev.get("train_seconds") for ev in evs if ev.get("train_seconds") is not None]
        rows[name] = {
            **_row(blocks, tasks, name, sources),
            "groups": evs[0].get("groups") or {},
            "trainable_params": evs[0].get("trainable_params"),
            "train_seconds": float(np.mean(seconds)) if seconds else None,
            "method": evs[0].get("method"),
            "run": evs[0].get("run"),
            "seeds": seeds,
            **({"runs": [ev.get("run") for ev in evs]} if len(evs) > 1 else {}),
        }
        blocks_of[name] = blocks
        seeds_of[name] = seeds
    kinds = sorted(
        {
            _METRIC_NAMES.get(m, "embedding cosine" if m.startswith("embedding:") else m)
            for m in metrics.values()
        }
    )
    report: dict[str, Any] = {
        "metric": kinds[0]
        if len(kinds) == 1
        else "macro mean over tasks of each task's own metric (" + ", ".join(kinds) + ")",
        "task_metrics": metrics,
        "tasks": tasks,
        "seeds": sorted({s for n, ss in seeds_of.items() if n != ZERO_SHOT for s in ss if s is not None}),
        "rows": rows,
    }
    unseen = _unseen(runs, zs_source)
    if unseen:
        report["unseen"] = unseen
    try:
        matrices = {n: _sample_matrix(b, tasks, ids, n) for n, b in blocks_of.items()}
    except MintError as e:  # e.g. runs tuned on other samples of a builtin suite (mint tune --seed)
        report["statistics"] = f"not computed: {e}"
        return Report.from_dict(stamp(report), source)
    if all(m is not None for m in matrices.values()):
        scores = {n: RowScores(seeds_of[n], m) for n, m in matrices.items() if m is not None}
        report.update(_statistics(report, scores, tasks))
    return Report.from_dict(stamp(report), source)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def report_markdown(
    report: Report | Mapping[str, Any],
    figures: list[Path] = (),
    base: Path | None = None,
    profile_figures: list[Path] = (),
) -> str:
    """A readable report: summary table, per-task table, groups of each setting, figures (the results',
    then the task profiles' where given)."""
    rows, tasks = report["rows"], report["tasks"]
    with_ci = any("ci95" in r for r in rows.values())
    seeds = report.get("seeds") or []
    lines = [
        "# mint report",
        "",
        f"Metric: {report['metric']} (mean over {len(tasks)} tasks' test splits"
        + (f"; tuned rows averaged over seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else "")
        + ").",
        "",
        "| setting | mean |" + (" 95% interval |" if with_ci else "") + " seeds | groups | trainable params "
        "| train seconds |",
        "|---|---:|" + ("---:|" if with_ci else "") + "---:|---:|---:|---:|",
    ]
    best = max((r["mean"] for r in rows.values() if r["mean"] is not None), default=None)
    for name, r in rows.items():
        mean = _fmt(r["mean"])
        if best is not None and r["mean"] == best:
            mean = f"**{mean}**"
        ci = r.get("ci95")
        interval = (f" [{ci[0]:.3f}, {ci[1]:.3f}] |" if ci else " n/a |") if with_ci else ""
        lines.append(
            f"| {name} | {mean} |{interval} {len(r.get('seeds') or []) or '-'} | {len(r['groups'])} | "
            f"{_fmt(r['trainable_params'])} | {_fmt(r['train_seconds'], 1)} |"
        )
    if report.get("comparisons"):
        lines += [
            "",
            "## Comparisons",
            "",
            "Each grouping minus each baseline, paired on the same seeds and test samples, with its 95% "
            "interval; p-values Holm-corrected across these comparisons (method: docs/tuning.md, "
            '"Statistics").',
            "",
        ]
        lines += [f"- {c['sentence']}" for c in report["comparisons"]]
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
    lines += _transfer_markdown(report)
    lines += _unseen_markdown(report)
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


def _unseen_markdown(report: dict[str, Any]) -> list[str]:
    """Tasks kept out of training: per grouping, the group each was routed to and its score against the
    zero-shot backbone's."""
    unseen = report.get("unseen")
    if not unseen:
        return []
    rows = list(dict.fromkeys(r for per in unseen.values() for r in per))
    lines = [
        "",
        "## Unseen tasks",
        "",
        "Tasks kept out of training, profiled like the others and routed to a group by the rule of each "
        'grouping (docs/pipeline.md, "Unseen tasks"): group, score, and the difference from zero-shot '
        "with its 95% interval.",
        "",
        "| task | zero_shot | " + " | ".join(rows) + " |",
        "|---|---:|" + "---:|" * len(rows),
    ]
    for t, per in unseen.items():
        zs = next((e["zero_shot"] for e in per.values() if e.get("zero_shot") is not None), None)
        cells = []
        for r in rows:
            e = per.get(r)
            if e is None:
                cells.append("n/a")
                continue
            cell = f"{e['group']}: {_fmt(e['score'])}"
            if "diff" in e:
                cell += f" ({e['diff']:+.3f} [{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}])"
            cells.append(cell)
        lines.append(f"| {t} | {_fmt(zs)} | " + " | ".join(cells) + " |")
    return lines


def _transfer_markdown(report: dict[str, Any]) -> list[str]:
    """The transfer table (each grouping's score on a task minus the task's own adapter's) and the tasks
    where training together measurably helps or hurts."""
    transfer = report.get("transfer")
    if not transfer:
        return []
    groupings = list(dict.fromkeys(g for per in transfer.values() for g in per))
    lines = [
        "",
        f"## Transfer (score minus the task's own adapter, `{OWN_ADAPTER}`)",
        "",
        "| task | " + " | ".join(groupings) + " |",
        "|---|" + "---:|" * len(groupings),
    ]
    for t, per in transfer.items():
        lines.append(
            f"| {t} | " + " | ".join(f"{per[g]:+.3f}" if g in per else "n/a" for g in groupings) + " |"
        )
    effects = report.get("transfer_effects") or []
    for kind, title in (("hurts", "hurts (negative transfer)"), ("helps", "helps (positive transfer)")):
        found = [e for e in effects if e["effect"] == kind]
        lines += ["", f"Training together measurably {title}:" + (" none." if not found else "")]
        lines += [
            f"- {e['task']} under {e['grouping']}: {e['delta']:+.3f} [{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}]"
            for e in found
        ]
    return lines


def report_paths(out: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(report.json, report.md, figures/) for ``out``: a ``.json`` file or a folder."""
    out = Path(out)
    json_path = out if out.suffix == ".json" else out / "report.json"
    return json_path, json_path.with_suffix(".md"), json_path.parent / "figures"


def write_report(
    report: Report | dict[str, Any],
    out: str | os.PathLike,
    *,
    html: str | None = None,
    figures: Sequence[Path] = (),
    profile_figures: Sequence[Path] = (),
    force: bool = False,
) -> Report:
    """Write report.json, report.md (linking ``figures`` and ``profile_figures``, drawn by the caller) and,
    given its page, report.html; ``out`` is the report.json path or its folder. Existing files are kept
    unless ``force`` (all are checked before any is written)."""
    report = Report.from_dict(report)
    json_path, md_path, _ = report_paths(out)
    html_path = json_path.with_suffix(".html")
    for path in (json_path, md_path, *([html_path] if html is not None else [])):
        check_output(path, force)
    atomic_write_json(json_path, report.to_dict())
    atomic_write_text(
        md_path, report_markdown(report.data, list(figures), json_path.parent, list(profile_figures))
    )
    if html is not None:
        atomic_write_text(html_path, html)
    return report
