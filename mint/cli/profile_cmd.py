"""``mint profile``: per-task MINT score, chance-corrected score, PID and interaction label.

Input sources are options that each yield a :class:`~mint.artifacts.predictions.PredictionSet`
(``--predictions FILE``, or ``--suite S --model M``, which predicts first with ``mint predict``'s
code, cached in a work folder); :func:`_load_input` picks the one given. Everything after loading
(options, profiling, the atomic write) is shared by all sources.
"""

from __future__ import annotations

from pathlib import Path

import click

from mint.artifacts.predictions import load_predictions, meta_path
from mint.artifacts.profiles import Profiles
from mint.cli.predict_cmd import model_options
from mint.cli.types import bounded_int
from mint.errors import MintError
from mint.io import allow_replacing, check_output, read_json
from mint.models.devices import single_process
from mint.models.predict import run_predict
from mint.profiling.profiler import parse_thresholds, profile_predictions
from mint.profiling.reference import attach_reference, read_reference_csv, reference_from_meta, summary_lines
from mint.seeds import seed_type
from mint.vocabulary import DEFAULT_THRESHOLDS, INTERACTIONS

_SOURCES = "--predictions FILE, or --suite S [--model M]"


def _predict_suite(suite: str, out: str, work_dir: str | None, options: dict) -> str | None:
    """``--suite/--model``: predict into ``<work dir>/<out stem>.predictions.jsonl`` (cached per model, task
    and mode in the work dir, so a re-run or a killed run costs no repeated model work) and return it; None
    on the non-main processes of a sharded run (``accelerate launch`` / ``torchrun``)."""
    work = Path(work_dir) if work_dir else Path(out).parent / ".mint-cache"
    preds = work / f"{Path(out).stem}.predictions.jsonl"
    options = dict(options)
    cache_dir = options.pop("cache_dir", None) or work
    meta = run_predict(suite=suite, out=preds, cache_dir=cache_dir, **options)
    if not meta["main_process"]:
        return None  # another process of a sharded run: the main one merges and profiles
    click.echo(f"Predictions -> {preds}", err=True)
    return str(preds)


def _load_input(
    predictions: str | None,
    modalities: list[str] | None,
    suite: str | None = None,
    out: str = "",
    work_dir: str | None = None,
    predict_options: dict | None = None,
):
    """The predictions set of whichever input source was given."""

    if predictions is not None and suite is not None:
        raise MintError("give either --predictions or --suite (with --model), not both")
    if suite is not None:
        predictions = _predict_suite(suite, out, work_dir, predict_options or {})
        if predictions is None:
            return None  # a non-main process of a sharded prediction: its work is done
    if predictions is None:
        raise MintError(f"no input: give {_SOURCES}")
    return load_predictions(predictions, modalities=modalities)


def _modalities(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1] or "both" in names:
        raise MintError(f"--modalities: expected two distinct names such as image,text, got {value!r}")
    return names


def _add_reference(
    profiles: Profiles, reference: str | None, labels: dict | None, predictions: str, seed: int
) -> Profiles:
    """``profiles`` with the computed labels compared with ``--reference`` (``labels``), else with the kinds
    recorded in the predictions' sidecar (a suite's ``kind`` / ``dominant`` keys), when there are any."""

    if labels is not None:
        source = reference
    else:
        sidecar = meta_path(predictions)
        if not Path(sidecar).is_file():
            return profiles
        labels, source = (
            reference_from_meta(read_json(sidecar, "predictions metadata")),
            f"{sidecar} (suite kinds)",
        )
        if not labels or not set(labels) & set(profiles.tasks):
            return profiles
    profiles = attach_reference(profiles, labels, seed=seed, source=str(source))
    for line in summary_lines(profiles["reference"]):
        click.echo(line, err=True)
    return profiles


@click.command("profile")
@click.option(
    "--predictions", metavar="FILE", help="Predictions JSONL (task, id, predictions{both,image,text}, ...)."
)
@click.option(
    "--suite",
    metavar="S",
    default=None,
    help="Instead of --predictions: predict this suite with --model first (see mint predict).",
)
@model_options
@click.option(
    "--features/--no-features",
    default=True,
    show_default=True,
    help="With --suite: extract per-modality features (needed for the PID).",
)
@click.option(
    "--work-dir",
    default=None,
    metavar="DIR",
    help="With --suite: where predictions and their cache go [default: .mint-cache beside --out].",
)
@click.option("--out", required=True, metavar="FILE", help="Where to write profiles.json.")
@click.option(
    "--samples", default=10, show_default=True, type=bounded_int(), help="S: subsets drawn per task."
)
@click.option("--size", default=None, type=bounded_int(), help="C: samples per subset [default: min(50, n)].")
@click.option(
    "--seed", default=0, show_default=True, type=seed_type(), help="Seed for subsets, bootstrap and k-means."
)
@click.option(
    "--similarity",
    default="exact",
    show_default=True,
    help="δ: exact, f1, numeric, numeric:REL_TOL, embedding:MODEL (cosine of sentence embeddings), a "
    "registered name, or package.module:function (this imports the module and runs the function: "
    "name only code you trust).",
)
@click.option(
    "--thresholds",
    default=",".join(f"{t:g}" for t in DEFAULT_THRESHOLDS),
    show_default=True,
    metavar="HIGH,LOW",
    help="score >= HIGH: redundancy; >= LOW: uniqueness; else synergy.",
)
@click.option(
    "--decide-by",
    type=click.Choice(["raw", "corrected"]),
    default="corrected",
    show_default=True,
    help="Which score decides the interaction label: the chance-corrected score, or raw (the MINT "
    "score, the paper's rule; inflated by chance on small answer sets). Both are reported.",
)
@click.option(
    "--bins", default=20, show_default=True, type=bounded_int(), help="k-means clusters per modality for PID."
)
@click.option(
    "--pid-target",
    type=click.Choice(["answer", "both"]),
    default="answer",
    show_default=True,
    help="Y of the PID: the reference answer or the multimodal prediction.",
)
@click.option(
    "--modalities",
    default=None,
    metavar="A,B",
    help="The two modality keys [default: taken from the file; image,text].",
)
@click.option(
    "--reference",
    default=None,
    metavar="CSV",
    help="Reference labels (task,interaction[,dominant]) or 'hemm' [default: the suite's kind/dominant keys, "
    "recorded in the predictions' .meta.json].",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def command(
    predictions: str | None,
    out: str,
    samples: int,
    size: int | None,
    seed: int,
    similarity: str,
    thresholds: str,
    decide_by: str,
    bins: int,
    pid_target: str,
    modalities: str | None,
    force: bool,
    suite: str | None = None,
    work_dir: str | None = None,
    features: bool = True,
    reference: str | None = None,
    **predict_options,
) -> None:
    """Profile each task: how do the image and the text interact?"""
    single_process("mint profile")

    allow_replacing(force)
    check_output(out, force)
    high_low = parse_thresholds(thresholds)
    ref_labels = read_reference_csv(reference) if reference is not None else None
    records = _load_input(
        predictions,
        _modalities(modalities),
        suite,
        out,
        work_dir,
        dict(predict_options, features=features, seed=seed),
    )
    if records is None:
        return
    profiles = profile_predictions(
        records,
        samples=samples,
        size=size,
        seed=seed,
        similarity=similarity,
        thresholds=high_low,
        decide_by=decide_by,
        bins=bins,
        pid_target=pid_target,
        warn=lambda msg: click.echo(f"Warning: {msg}", err=True),
    )
    profiles = _add_reference(profiles, reference, ref_labels, records.source, seed)
    profiles.save(out, force=force)
    labels = profiles.interactions()
    counts = ", ".join(f"{sum(1 for v in labels.values() if v == k)} {k}" for k in INTERACTIONS)
    click.echo(f"Profiled {len(labels)} task(s) ({counts}) -> {out}", err=True)
