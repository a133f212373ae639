"""The notebook API: one verb per stage, each taking and returning the stages' files as objects
(:mod:`mint.artifacts`), each writing its file when given ``out`` (never replacing one without ``force``).

    predict -> Predictions -> profile -> Profiles -> group -> Grouping -> tune -> TuneRun
    -> evaluate -> Evaluation -> report -> Report;  plot draws the figures of any of them

The examples continue one another, as cells of a notebook do (``tmp`` is a scratch folder); a test runs
them in this order on the embedded ``tiny`` backbone.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from mint.artifacts import Artifact, Evaluation, Grouping, Predictions, Profiles, Report, TuneRun
from mint.clustering.group import group as group_profiles
from mint.io import check_output
from mint.models.load_options import LoadOptions
from mint.models.predict import run_predict
from mint.plotting.plot_all import plot_all
from mint.plotting.report_html import report_html
from mint.plotting.results import results_chart
from mint.plotting.transfer import transfer_chart
from mint.profiling.profiler import profile_predictions
from mint.tuning.config import TuneConfig
from mint.tuning.evaluate import evaluate_run
from mint.tuning.report import make_report, report_paths, rows_from_runs, write_report
from mint.tuning.tracking import check_report_to
from mint.tuning.tune_job import TuneJob, run_tune_job

PathLike = str | os.PathLike
A = TypeVar("A", bound=Artifact)


def _saved(artifact: A, out: PathLike | None, force: bool) -> A:
    """``artifact`` written to ``out`` (when given), named by it from then on."""
    if out is None:
        return artifact
    artifact.save(out, force=force)
    return replace(artifact, source=str(out))


def predict(
    suite: str,
    model: str = "tiny",
    out: PathLike | None = None,
    *,
    force: bool = False,
    seed: int = 0,
    progress: bool = False,
    **options: Any,
) -> Predictions:
    """Answer every task of ``suite`` with ``model`` from the image, the text and both (``mint predict``).

    ``options`` are :class:`mint.models.predict.PredictJob`'s (``modes``, ``split``, ``max_samples``,
    ``batch_size``, ``device``, ``dtype``, ``features``, ``in_context``...). With ``out`` the predictions
    file and its ``.meta.json`` are written there (work cached in ``.mint-cache`` beside it).

    >>> import mint
    >>> preds = mint.predict("builtin:mini", "tiny", max_samples=4, split="train")
    >>> preds.tasks[:3], preds.modalities
    (['vqa_color', 'digit_read', 'digit_next'], ('image', 'text'))
    """
    if out is not None:
        check_output(out, force)
        run_predict(suite=suite, model=model, out=out, seed=seed, progress=progress, **options)
        return Predictions.load(out)
    with tempfile.TemporaryDirectory(prefix="mint-predict-") as tmp:
        path = Path(tmp) / "predictions.jsonl"
        run_predict(suite=suite, model=model, out=path, seed=seed, progress=progress, **options)
        return Predictions.load(path)


def profile(
    predictions: Predictions | PathLike | Iterable[Mapping[str, Any]],
    out: PathLike | None = None,
    *,
    force: bool = False,
    seed: int = 0,
    **options: Any,
) -> Profiles:
    """Each task's MINT score, chance-corrected score, PID and interaction kind (``mint profile``).

    ``predictions``: a :class:`~mint.artifacts.Predictions`, a predictions file, or records in its format;
    ``options`` are :func:`mint.profiling.profiler.profile_predictions`'s (``samples``, ``size``,
    ``similarity``, ``thresholds``, ``decide_by``, ``bins``...).

    >>> profiles = mint.profile(preds, samples=2, n_boot=20, warn=None)
    >>> sorted(set(profiles.interactions().values())) <= ["redundancy", "synergy", "uniqueness"]
    True
    """
    return _saved(profile_predictions(predictions, seed=seed, **options), out, force)


def group(
    profiles: Profiles | PathLike | Mapping[str, Any],
    method: str = "mint",
    out: PathLike | None = None,
    *,
    force: bool = False,
    seed: int = 0,
    **options: Any,
) -> Grouping:
    """Group the profiled tasks (``mint cluster``): ``mint`` by interaction kind, a clustering
    (``agglomerative``, ``kmeans``, ``spectral``) or a baseline (``random``, ``all``, ``single``);
    ``options`` are :func:`mint.clustering.group.group`'s (``k``, ``split_uniqueness``, ``like``,
    ``bootstrap``).

    >>> grouping = mint.group(profiles, "mint", bootstrap=0)
    >>> grouping.method, grouping.group_of("vqa_color") in grouping.names, sorted(grouping.tasks) == sorted(preds.tasks)
    ('mint', True, True)
    """
    if isinstance(profiles, (str, os.PathLike)):
        profiles = Profiles.load(profiles)
    return _saved(group_profiles(profiles, method, seed=seed, **options), out, force)


def plot(
    profiles: Profiles | PathLike | Mapping[str, Any],
    grouping: Grouping | PathLike | Mapping[str, Any] | None = None,
    report: Report | PathLike | Mapping[str, Any] | None = None,
    *,
    out: PathLike,
    fmt: str = "png",
    force: bool = False,
) -> list[Path]:
    """Draw every figure of the profiles (with the grouping's colours and the report's results where given)
    into the folder ``out`` with an ``index.json`` (``mint plot``); returns the files written.

    >>> [p.name for p in mint.plot(profiles, grouping, out=tmp / "figures")][:2]
    ['interaction_map.png', 'mint_scores.png']
    """
    profiles = Profiles.load(profiles) if isinstance(profiles, (str, os.PathLike)) else profiles
    if isinstance(grouping, (str, os.PathLike)):
        grouping = Grouping.load(grouping)
    if isinstance(report, (str, os.PathLike)):
        report = Report.load(report)
    return plot_all(profiles, grouping, report, out_dir=out, fmt=fmt, force=force)


def tune(
    grouping: Grouping | PathLike | Mapping[str, Any],
    out: PathLike,
    *,
    suite: str = "builtin:default",
    model: str = "tiny",
    profiles: Profiles | PathLike | None = None,
    device: str = "auto",
    dtype: str | None = None,
    quantize: str | None = None,
    device_map: str | None = None,
    attn_implementation: str | None = None,
    max_test: int | None = None,
    report_to: str = "none",
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> TuneRun:
    """Train one LoRA adapter per group of ``grouping`` on ``model`` with the tasks of ``suite`` into the run
    folder ``out`` (``mint tune``, with the same loading options, ``report_to`` tracker and ``resume``);
    ``options`` are :class:`~mint.tuning.config.TuneConfig`'s (``epochs``, ``max_train``, ``rank``, ``lr``,
    ``seed``, ``concurrent``, ``continual``, ``tower``...).

    >>> run = mint.tune(grouping, tmp / "run", suite="builtin:mini", max_train=2, batch_size=4, checkpoint_every=0)
    >>> run.method, run.groups == grouping.groups, (run.folder / "adapters").is_dir()
    ('mint', True, True)
    """
    if isinstance(grouping, (str, os.PathLike)):
        grouping = Grouping.load(grouping)
    grouping = Grouping.from_dict(grouping, getattr(grouping, "source", "groups")).adapter_ready()
    if isinstance(profiles, (str, os.PathLike)):
        profiles = Profiles.load(profiles)
    job = TuneJob(
        suite=suite,
        model=model,
        grouping=grouping,
        out=Path(out),
        load=LoadOptions(dtype, device_map, attn_implementation, quantize),
        device=device,
        max_test=max_test,
        profiles=profiles.data if profiles is not None else None,
        profiles_source=profiles.source if profiles is not None else None,
        report_to=check_report_to(report_to, "report_to"),
        resume=resume,
        force=force,
        progress=progress,
    )
    run_tune_job(TuneConfig.from_dict(options, "options"), job)
    return TuneRun.load(out)


def evaluate(
    run: TuneRun | PathLike,
    *,
    zero_shot: bool = True,
    force: bool = False,
    progress: bool = False,
    **options: Any,
) -> Evaluation:
    """Answer every task's test split with its group's adapter and write ``<run>/eval.json``
    (``mint evaluate``); ``options`` are :func:`mint.tuning.evaluate.evaluate_run`'s (``suite``, ``model``,
    ``max_test``, ``batch_size``, ``device``, ``routes``...). An up-to-date eval.json is reused unless ``force``.

    >>> evaluation = mint.evaluate(run, max_test=2)
    >>> sorted(evaluation.tasks) == sorted(grouping.tasks), 0.0 <= evaluation.mean <= 1.0
    (True, True)
    """
    return evaluate_run(run, zero_shot=zero_shot, force=force, progress=progress, **options)


def report(
    evaluations: Mapping[str, Evaluation | Mapping[str, Any] | Sequence[Any]] | Sequence[PathLike | TuneRun],
    out: PathLike | None = None,
    *,
    force: bool = False,
    figures: bool = True,
    fmt: str = "png",
    profile_figures: Sequence[Path] = (),
    config: dict[str, Any] | None = None,
) -> Report:
    """Compare evaluated runs (``mint evaluate --baseline``): ``{row name: Evaluation or [one per seed]}``,
    or run folders (rows named by their grouping method). With ``out`` (report.json or its folder) write
    report.json, report.md, report.html and, with ``figures``, the result charts in ``figures/``.

    >>> rep = mint.report({"mint": evaluation}, tmp / "report")
    >>> rep.settings, sorted(p.name for p in (tmp / "report").iterdir())
    (['zero_shot', 'mint'], ['figures', 'report.html', 'report.json', 'report.md'])
    """
    if isinstance(evaluations, Mapping):
        rows = evaluations
    else:
        rows = rows_from_runs([r.folder if isinstance(r, TuneRun) else r for r in evaluations])
    if out is None:
        return make_report(rows)
    json_path, md_path, fig_dir = report_paths(out)
    for path in (json_path, md_path, json_path.with_suffix(".html")):
        check_output(path, force)  # before anything is drawn
    built = make_report(rows, str(json_path))
    drawn = (
        results_chart(built, fig_dir, fmt=fmt) + transfer_chart(built, fig_dir, fmt=fmt) if figures else []
    )
    page = report_html(
        built, profile_figures=profile_figures, base=json_path.parent, config=config, result_figures=figures
    )
    return write_report(built, out, html=page, figures=drawn, profile_figures=profile_figures, force=force)
