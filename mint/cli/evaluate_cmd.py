"""``mint evaluate``: route every task to its group's adapter, score the test splits, compare runs.

Writes ``eval.json`` into each run folder (kept and reused unless ``--force``) and, with ``--baseline``
runs or ``--out``, a report (report.json + report.md + figures/) comparing them with the zero-shot backbone.
"""

from __future__ import annotations

from pathlib import Path

import click

from mint.api import report
from mint.artifacts import Evaluation, Report, Routes
from mint.cli.types import bounded_int, progress_option
from mint.errors import MintError
from mint.io import allow_replacing, check_output
from mint.models.devices import DEVICE_HELP, single_process
from mint.models.load_options import LoadOptions, loading_options
from mint.plotting.style import FORMATS
from mint.tasks.demos import DEMO_SELECTION
from mint.tuning.evaluate import (
    cached_eval,
    eval_request,
    evaluate_run,
    generation_setting,
    load_run_model,
    load_run_tasks,
    load_tune,
)
from mint.tuning.report import report_paths, row_names


@click.command("evaluate")
@click.argument("run", type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Another run folder to compare with (repeatable).",
)
@click.option("--suite", help="Suite to evaluate on (default: the run's, from tune.json).")
@click.option("--model", help="Backbone (default: the run's, from tune.json).")
@click.option(
    "--zero-shot/--no-zero-shot",
    default=True,
    show_default=True,
    help="Also score the bare backbone (the zero_shot row).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="report.json path or folder (default with --baseline: RUN/report.json).",
)
@click.option(
    "--max-test", type=bounded_int(), default=None, help="Test samples per task (default: the run's suite)."
)
@click.option("--batch-size", type=bounded_int(), default=8, show_default=True)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@loading_options
@click.option("--no-figures", is_flag=True, help="Skip the result charts.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="png",
    show_default=True,
    help="Format of the result charts in figures/ (report.html draws its own, inline).",
)
@click.option(
    "--in-context",
    "in_context",
    type=bounded_int(min=0),
    default=None,
    metavar="K",
    help="Demonstrations from each task's train split before every test prompt (default: the run's).",
)
@click.option(
    "--demo-selection",
    type=click.Choice(DEMO_SELECTION),
    default=None,
    help="random or similar (default: the run's).",
)
@click.option(
    "--max-new-tokens",
    type=bounded_int(min=1),
    default=None,
    help="Open-answer tasks: new tokens at most [default: 16].",
)
@click.option(
    "--num-beams",
    type=bounded_int(min=1),
    default=None,
    help="Open-answer tasks: 1 = greedy, more = beam search [default: 1].",
)
@click.option(
    "--routes",
    "routes_path",
    type=click.Path(path_type=Path),
    default=None,
    help="routes.json from mint route for RUN's groups: also score these tasks, in no group of RUN, with "
    "the adapter each is routed to (the report's unseen tasks).",
)
@click.option("--force", is_flag=True, help="Re-evaluate existing eval.json files and overwrite the report.")
@progress_option
def command(
    run: Path,
    baselines: tuple[Path, ...],
    suite: str | None,
    model: str | None,
    zero_shot: bool,
    out: Path | None,
    max_test: int | None,
    batch_size: int,
    device: str,
    no_figures: bool,
    force: bool,
    fmt: str,
    progress: bool,
    in_context: int | None = None,
    demo_selection: str | None = None,
    max_new_tokens: int | None = None,
    num_beams: int | None = None,
    device_map: str | None = None,
    attn_implementation: str | None = None,
    routes_path: Path | None = None,
) -> None:
    """Evaluate the tuning run RUN (and any --baseline runs); write eval.json and a report."""
    single_process("mint evaluate")
    allow_replacing(force)
    if batch_size < 1:
        raise MintError(f"--batch-size must be at least 1, got {batch_size}")
    LoadOptions(device_map=device_map, attn_implementation=attn_implementation).check(device)
    runs = [run, *baselines]
    if len({p.resolve() for p in runs}) != len(runs):
        raise MintError("the same run folder is given twice")
    if out is None and baselines:
        out = run
    if out is not None:
        json_path = report_paths(out)[0]
        for p in (json_path, json_path.with_suffix(".md"), json_path.with_suffix(".html")):
            check_output(p, force)
    tunes = [load_tune(r) for r in runs]
    generation = generation_setting(max_new_tokens, num_beams)
    routes = Routes.load(routes_path).routes if routes_path is not None else None
    requests = [
        eval_request(
            t,
            suite,
            model,
            max_test,
            in_context,
            demo_selection,
            generation,
            routes=routes if i == 0 else None,
        )
        for i, t in enumerate(tunes)
    ]
    _one_suite_and_model(requests)
    tasks = vlm = None
    evals = []
    for i, (r, tune, request) in enumerate(zip(runs, tunes, requests)):
        zs = zero_shot and i == 0  # the bare backbone is the same for every run: score it once
        cached = cached_eval(r, request, zs, force)
        if cached is not None:
            evals.append(cached)
            continue
        tasks = tasks if tasks is not None else load_run_tasks(tune, suite, max_test)
        vlm = vlm if vlm is not None else load_run_model(tune, model, device, device_map, attn_implementation)
        evals.append(
            evaluate_run(
                r,
                tasks,
                vlm=vlm,
                zero_shot=zs,
                batch_size=batch_size,
                progress=progress,
                suite=suite,
                model=model,
                max_test=max_test,
                in_context=in_context,
                demo_selection=demo_selection,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                routes=routes if i == 0 else None,
            )
        )
    main = evals[0]
    click.echo(
        f"{run}/eval.json: mean {main['mean']:.3f} over {len(main['tasks'])} tasks"
        + (f" (zero-shot {main['zero_shot']['mean']:.3f})" if main.get("zero_shot") else "")
    )
    if out is None:
        return
    rows, config = _rows_and_configs(runs, tunes, evals)
    _print_report(report(rows, out, force=force, figures=not no_figures, fmt=fmt, config=config), out)


def _one_suite_and_model(requests: list[dict]) -> None:
    """The compared runs are evaluated on one suite with one backbone."""
    for key in ("suite", "model"):
        if len({str(q[key]) for q in requests}) > 1:
            raise MintError(
                f"the runs were tuned with different {key}s ({', '.join(sorted({str(q[key]) for q in requests}))}); "
                f"compare runs of one {key}, or pass --{key}"
            )


def _rows_and_configs(
    runs: list[Path], tunes: list[dict], evals: list[Evaluation]
) -> tuple[dict[str, list[Evaluation]], dict[str, dict]]:
    """The report's rows (runs of one method with different seeds: one row) and each row's configuration
    (its first run stands for it)."""
    names = row_names(evals)
    rows: dict[str, list[Evaluation]] = {}
    config: dict[str, dict] = {}
    for name, r, tune, ev in zip(names, runs, tunes, evals):
        rows.setdefault(name, []).append(ev)
        config.setdefault(
            name,
            {
                "run": str(r),
                **{k: tune.get(k) for k in ("suite", "model", "seed", "method") if tune.get(k) is not None},
                "tune": tune.get("config"),
            },
        )
    return rows, config


def _print_report(built: Report, out: Path) -> None:
    """The files written, each row's mean (with its interval) and the comparisons' sentences."""
    json_path, md_path, _ = report_paths(out)
    click.echo(f"wrote {json_path}, {md_path} and {json_path.with_suffix('.html')}")
    width = max(len(n) for n in built.rows)
    for name, row in built.rows.items():
        mean = "n/a" if row["mean"] is None else f"{row['mean']:.3f}"
        ci = f" [{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]" if row.get("ci95") else ""
        click.echo(
            f"  {name:<{width}}  {mean}{ci}  ({len(row['groups'])} groups, {row['trainable_params']} params)"
        )
    for c in built.comparisons:
        click.echo(f"  {c['sentence']}")
