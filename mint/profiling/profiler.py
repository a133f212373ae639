"""Assemble the ``profiles.json`` content (docs/design.md, file formats) from validated predictions."""

from __future__ import annotations

import math
import os
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mint.artifacts.predictions import (
    Predictions,
    PredictionSet,
    TaskPredictions,
    load_predictions,
    validate_records,
)
from mint.artifacts.profiles import Profiles
from mint.errors import MintError
from mint.io import stamp
from mint.profiling.discretize import discretize, encode_labels, joint_table
from mint.profiling.pid import broja_pid_many
from mint.profiling.score import check_delta, score_task
from mint.profiling.similarity import Similarity, get_similarity, normalize_answer
from mint.vocabulary import DEFAULT_THRESHOLDS, interaction_of

DEFAULT_SIZE = 50


def parse_thresholds(value: str | Sequence[float]) -> tuple[float, float]:
    """``"1.5,0.5"`` (or a pair) -> (high, low): score >= high is redundancy, >= low uniqueness."""
    try:
        parts = [float(v) for v in (value.split(",") if isinstance(value, str) else value)]
    except (TypeError, ValueError):
        parts = []
    if len(parts) != 2 or not all(math.isfinite(v) for v in parts) or parts[0] <= parts[1]:
        raise MintError(
            f"--thresholds: expected two numbers HIGH,LOW with HIGH > LOW (e.g. 1.5,0.5), got {value!r}"
        )
    return parts[0], parts[1]


def dominant_modality(interaction: str, per_modality: Mapping[str, float]) -> str | None:
    """For uniqueness, the modality whose answers agree more with the multimodal ones (None on a tie)."""
    if interaction != "uniqueness":
        return None
    (m1, a1), (m2, a2) = per_modality.items()
    if math.isclose(a1, a2, abs_tol=1e-12):
        return None
    return m1 if a1 > a2 else m2


def _task_seed(seed: int, task: str) -> np.random.SeedSequence:
    """A per-task stream, so a task's numbers do not depend on the other tasks in the file."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(task.encode("utf-8"))])


def _pid_table(
    task: TaskPredictions, modalities: tuple[str, str], *, bins: int, seed: int, target: str
) -> tuple[np.ndarray | None, dict[str, Any] | str]:
    """The joint table ``p[x1, x2, y]`` of a task's PID and what its entry records besides the atoms, or
    (None, the reason it has no PID)."""
    if task.codes is None and task.features is None:
        return None, "no 'features' or 'codes' in the records"
    if target == "answer":
        if task.answers is None:
            return None, "no 'answer' in the records (needed for --pid-target answer)"
        labels = [normalize_answer(a) for a in task.answers]
    else:
        labels = [normalize_answer(a) for a in task.both]

    y, classes = encode_labels(labels)
    if len(classes) < 2:
        return (
            None,
            f"the PID target ({target}) has one class ({classes[0]!r}): there is no information to decompose",
        )
    if task.codes is not None:
        source = "codes"
        xs = [np.unique(task.codes[m], return_inverse=True)[1] for m in modalities]
        used_bins = None
    else:
        source = "features"
        used_bins = bins
        xs = [discretize(task.features[m], bins=bins, seed=seed) for m in modalities]  # type: ignore[index]
    shape = [int(xs[0].max()) + 1, int(xs[1].max()) + 1, len(classes)]
    return joint_table(xs[0], xs[1], y), {
        "bins": used_bins,
        "source": source,
        "target": target,
        "shape": shape,
    }


def _pid_entry(res: dict[str, Any], meta: dict[str, Any], modalities: tuple[str, str]) -> dict[str, Any]:
    m1, m2 = modalities
    return {
        "redundancy": res["redundancy"],
        f"unique_{m1}": res["unique_1"],
        f"unique_{m2}": res["unique_2"],
        "synergy": res["synergy"],
        "units": "bits",
        "estimator": "exact",
        "bins": meta["bins"],
        "source": meta["source"],
        "target": meta["target"],
        "mutual_information": {m1: res["mi_1"], m2: res["mi_2"], "joint": res["mi_joint"]},
        "shape": meta["shape"],
        "gap": res["gap"],
    }


def _pids(
    tasks: Mapping[str, TaskPredictions], modalities: tuple[str, str], *, bins: int, seed: int, target: str
) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
    """Each task's PID entry, or (None, the reason it has none). The tables are solved together by
    :func:`~mint.profiling.pid.broja_pid_many` (those of one shape side by side); a table's result does not
    depend on the others solved with it, and equals a one-table :func:`~mint.profiling.pid.broja_pid` to
    within its certified gap."""
    prepared = {
        name: _pid_table(t, modalities, bins=bins, seed=seed, target=target) for name, t in tasks.items()
    }
    names = [name for name, (table, _) in prepared.items() if table is not None]
    solved = dict(zip(names, broja_pid_many([prepared[name][0] for name in names]), strict=True))
    return {
        name: (_pid_entry(solved[name], meta, modalities), None) if table is not None else (None, meta)
        for name, (table, meta) in prepared.items()
    }


def profile_task(
    task: TaskPredictions,
    modalities: tuple[str, str],
    similarity: Similarity,
    *,
    samples: int = 10,
    size: int | None = None,
    seed: int = 0,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    decide_by: str = "corrected",
    bins: int = 20,
    pid_target: str = "answer",
    n_boot: int = 1000,
    source: str = "<records>",
    warn: Callable[[str], None] | None = None,
    pid: tuple[dict[str, Any] | None, str | None] | None = None,
) -> dict[str, Any]:
    """One task's entry of ``profiles.json``. ``pid``: the task's PID entry (or None and the reason), solved
    beforehand with other tasks' (:func:`profile_predictions`); None: solved here."""
    warnings: list[str] = []
    reasons: dict[str, str] = {}

    def _warn(msg: str) -> None:
        warnings.append(msg)
        if warn is not None:
            warn(f"task '{task.name}': {msg}")

    n = task.n
    if n < 2:
        raise MintError(
            f"{source}:{task.lines[0]}: task '{task.name}' has {n} sample; the MINT score needs at least 2"
        )
    if size is None:
        c = min(DEFAULT_SIZE, n)
    elif size > n:
        c = n
        _warn(f"{n} samples, fewer than the requested subset size {size}: using size {n}")
    else:
        c = size
    scores = score_task(
        task.unimodal,
        task.both,
        similarity,
        samples=samples,
        size=c,
        n_boot=n_boot,
        seed=_task_seed(seed, task.name),
    )
    corrected = scores["chance_corrected"]
    for m in corrected["degenerate"]:
        _warn(
            f"the '{m}' and multimodal answers are one and the same answer throughout: chance "
            "agreement is 1 and its kappa is set to 0"
        )

    if task.answers is not None:
        accuracy: dict[str, float] | None = {
            name: float(
                np.mean(check_delta([similarity(p, a) for p, a in zip(preds, task.answers)], similarity))
            )
            for name, preds in [("both", task.both), *task.unimodal.items()]
        }
    else:
        accuracy = None
        reasons["accuracy"] = "no 'answer' in the records"

    if pid is None:
        pid = _pids({task.name: task}, modalities, bins=bins, seed=seed, target=pid_target)[task.name]
    pid, why = pid
    if why is not None:
        reasons["pid"] = why
        if task.codes is not None or task.features is not None:
            _warn(f"PID not computed: {why}")

    if decide_by == "raw":
        decider, per_modality = scores["mint_score"]["mean"], scores["agreement"]
    else:
        decider, per_modality = corrected["mean"], corrected["kappa"]
    interaction = interaction_of(decider, thresholds)
    return {
        "n": n,
        "mint_score": scores["mint_score"],
        "agreement": scores["agreement"],
        "chance_corrected": corrected,
        "pid": pid,
        "interaction": interaction,
        "dominant_modality": dominant_modality(interaction, per_modality),
        "accuracy": accuracy,
        "reasons": reasons,
        "warnings": warnings,
    }


def _stderr_warning(msg: str) -> None:
    print(f"Warning: {msg}", file=sys.stderr)


def profile_predictions(
    records: Predictions | PredictionSet | Iterable[Mapping[str, Any]] | str | os.PathLike,
    *,
    samples: int = 10,
    size: int | None = None,
    seed: int = 0,
    similarity: str | Similarity = "exact",
    thresholds: str | Sequence[float] = DEFAULT_THRESHOLDS,
    decide_by: str = "corrected",
    bins: int = 20,
    pid_target: str = "answer",
    modalities: Sequence[str] | None = None,
    n_boot: int = 1000,
    warn: Callable[[str], None] | None = _stderr_warning,
) -> Profiles:
    """Profile every task of a predictions set; return the ``profiles.json`` as a :class:`Profiles`.

    ``records``: a :class:`Predictions` or :class:`PredictionSet` (from :func:`load_predictions`), a path to a predictions
    JSONL file, or an iterable of record dicts in the file format. ``size=None`` means
    ``min(50, n)`` per task; a larger explicit size is shrunk to n with a warning. ``decide_by``:
    ``corrected`` (the chance-corrected score, default: right on small answer sets, where raw agreement
    is inflated by chance) or ``raw`` (the MINT score, the paper's rule) picks the interaction label;
    both scores are reported either way.
    ``warn`` receives warning lines (default: stderr); each is also kept in the task's ``warnings``.
    """
    if isinstance(records, Predictions):
        records = records.records
    if isinstance(records, (str, os.PathLike)):
        records = load_predictions(records, modalities=modalities)
    elif not isinstance(records, PredictionSet):
        records = validate_records(enumerate(records, 1), modalities=modalities)
    elif modalities is not None and tuple(modalities) != records.modalities:
        raise MintError(f"modalities: the predictions use {list(records.modalities)}, not {list(modalities)}")
    for name, value, low in (
        ("samples", samples, 1),
        ("size", size, 1),
        ("bins", bins, 2),
        ("n_boot", n_boot, 1),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low
        ):
            raise MintError(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {value!r}")
    if decide_by not in ("raw", "corrected"):
        raise MintError(f"--decide-by: expected 'raw' or 'corrected', got {decide_by!r}")
    if pid_target not in ("answer", "both"):
        raise MintError(f"--pid-target: expected 'answer' or 'both', got {pid_target!r}")
    high_low = parse_thresholds(thresholds)
    if isinstance(similarity, str):
        sim_name, sim = similarity, get_similarity(similarity)
    elif callable(similarity):
        sim_name, sim = getattr(similarity, "__name__", repr(similarity)), similarity
    else:
        raise MintError(f"--similarity: expected a name or a callable, got {type(similarity).__name__}")

    for task in records.tasks.values():  # fail before any work
        if task.n < 2:
            raise MintError(
                f"{records.source}:{task.lines[0]}: task '{task.name}' has {task.n} sample; "
                "the MINT score needs at least 2"
            )
    pids = _pids(records.tasks, records.modalities, bins=bins, seed=seed, target=pid_target)
    tasks = {
        name: profile_task(
            task,
            records.modalities,
            sim,
            samples=samples,
            size=size,
            seed=seed,
            thresholds=high_low,
            decide_by=decide_by,
            bins=bins,
            pid_target=pid_target,
            n_boot=n_boot,
            source=records.source,
            warn=warn,
            pid=pids[name],
        )
        for name, task in records.tasks.items()
    }
    config = {
        "predictions": records.source,
        "modalities": list(records.modalities),
        "samples": samples,
        "size": size,
        "seed": seed,
        "similarity": sim_name,
        "thresholds": list(high_low),
        "decide_by": decide_by,
        "bins": bins,
        "pid_target": pid_target,
        "bootstrap": n_boot,
        "ci": "percentile bootstrap: samples resampled with replacement, subset draw repeated per replicate",
    }
    return Profiles.from_dict(stamp({"config": config, "tasks": tasks}), "profiles")
