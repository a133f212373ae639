"""Computed interaction labels against reference labels: confusion matrix, agreement, Cohen's kappa.

A reference label is a task's documented kind (``kind`` / ``dominant`` in a suite file, recorded in the
predictions' ``.meta.json`` by ``mint predict``), a row of a labels CSV (``task,interaction[,dominant]``),
or a row of the shipped HEMM table (``hemm``, :mod:`mint.benchmarks`). :func:`compare_labels` returns the
``reference`` section of profiles.json; :func:`attach_reference` adds it, and each task's own comparison,
to a profiles dict. The kappa interval is a percentile bootstrap over tasks (tasks resampled with
replacement); replicates where kappa is undefined (one label only) are dropped and counted.
"""

from __future__ import annotations

import copy
import csv
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mint.artifacts.profiles import Profiles
from mint.benchmarks import hemm_table_path
from mint.errors import MintError
from mint.vocabulary import DEFAULT_MODALITIES, INTERACTIONS

MODALITY_KEYS = DEFAULT_MODALITIES
HEMM = "hemm"


def _check_label(value: Any, where: str, field: str) -> str:
    if value not in INTERACTIONS:
        raise MintError(
            f"{where}: field {field!r}: unknown interaction {value!r} (expected {', '.join(INTERACTIONS)})"
        )
    return value


def read_reference_csv(path: str | os.PathLike) -> dict[str, dict[str, str | None]]:
    """``{task: {"interaction", "dominant"}}`` from a CSV with a header: ``task`` (or ``key``), ``interaction``
    (or ``kind``), optional ``dominant``; other columns are ignored. ``hemm`` reads the shipped HEMM table."""
    if str(path) == HEMM:
        path = hemm_table_path()
    path = Path(path)
    if not path.is_file():
        raise MintError(f"{path}: no such reference labels file")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        task_col = next((c for c in ("task", "key") if c in header), None)
        label_col = next((c for c in ("interaction", "kind") if c in header), None)
        if task_col is None or label_col is None:
            missing = "task" if task_col is None else "interaction"
            raise MintError(f"{path}:1: missing column {missing!r} (header: {', '.join(header) or 'none'})")
        out: dict[str, dict[str, str | None]] = {}
        for row in reader:
            where = f"{path}:{reader.line_num}"
            task = (row.get(task_col) or "").strip()
            if not task:
                raise MintError(f"{where}: field {task_col!r} is empty")
            if task in out:
                raise MintError(f"{where}: field {task_col!r}: duplicate task {task!r}")
            label = _check_label((row.get(label_col) or "").strip(), where, label_col)
            dominant = (row.get("dominant") or "").strip() or None
            if dominant is not None and label != "uniqueness":
                raise MintError(f"{where}: field 'dominant': only a uniqueness task has a dominant modality")
            out[task] = {"interaction": label, "dominant": dominant}
    if not out:
        raise MintError(f"{path}: no reference labels")
    return out


def reference_from_meta(meta: Mapping[str, Any]) -> dict[str, dict[str, str | None]]:
    """The suite's documented kinds recorded in a predictions ``.meta.json`` (tasks without one left out)."""
    out: dict[str, dict[str, str | None]] = {}
    for task, info in (meta.get("tasks") or {}).items():
        if isinstance(info, Mapping) and info.get("kind") in INTERACTIONS:
            out[task] = {"interaction": info["kind"], "dominant": info.get("dominant")}
    return out


def _kappa(y_ref: list[str], y_comp: list[str]) -> float:
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined kappa (one label throughout) comes back as nan
        value = cohen_kappa_score(y_ref, y_comp, labels=list(INTERACTIONS))
    return float(value)


def compare_labels(
    computed: Mapping[str, str],
    reference: Mapping[str, Mapping[str, Any]],
    *,
    computed_dominant: Mapping[str, str | None] | None = None,
    seed: int = 0,
    n_boot: int = 1000,
    source: str = "",
) -> dict[str, Any]:
    """Computed (``{task: label}``) vs reference labels over the tasks both have.

    Returns ``{"source", "labels", "tasks": {task: {"computed", "reference", "agrees", ...}},
    "confusion": {"rows": "reference", "columns": "computed", "matrix"}, "n", "agreement",
    "kappa": {"value", "ci95", "bootstrap", "undefined"}, "dominant", "unlabelled", "missing"}``.
    """
    from sklearn.metrics import confusion_matrix

    if n_boot < 1:
        raise MintError(f"--bootstrap: expected an integer >= 1, got {n_boot!r}")
    tasks = [t for t in computed if t in reference]
    if not tasks:
        raise MintError(
            f"no task has both a computed and a reference label (computed: {', '.join(list(computed)[:5])}; "
            f"reference: {', '.join(list(reference)[:5])})"
        )
    comp = [computed[t] for t in tasks]
    ref = [str(reference[t]["interaction"]) for t in tasks]
    per_task: dict[str, dict[str, Any]] = {}
    dominant_pairs = 0
    dominant_agree = 0
    for t, c, r in zip(tasks, comp, ref):
        entry: dict[str, Any] = {"computed": c, "reference": r, "agrees": c == r}
        ref_dom = reference[t].get("dominant")
        comp_dom = (computed_dominant or {}).get(t)
        if ref_dom is not None:
            entry["reference_dominant"] = ref_dom
            if c == r == "uniqueness":
                entry["computed_dominant"] = comp_dom
                entry["dominant_agrees"] = comp_dom == ref_dom
                dominant_pairs += 1
                dominant_agree += int(comp_dom == ref_dom)
        per_task[t] = entry
    matrix = confusion_matrix(ref, comp, labels=list(INTERACTIONS))
    kappa = _kappa(ref, comp)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(tasks), size=(n_boot, len(tasks)))
    boots = np.array([_kappa([ref[i] for i in row], [comp[i] for i in row]) for row in idx])
    defined = boots[np.isfinite(boots)]
    ci = [float(np.percentile(defined, 2.5)), float(np.percentile(defined, 97.5))] if defined.size else None
    return {
        "source": source,
        "labels": list(INTERACTIONS),
        "n": len(tasks),
        "agreement": float(np.mean([c == r for c, r in zip(comp, ref)])),
        "kappa": {
            "value": kappa if np.isfinite(kappa) else None,
            "ci95": ci,
            "bootstrap": n_boot,
            "undefined": int(n_boot - defined.size),
            "seed": seed,
            "method": "Cohen's kappa (scikit-learn); percentile bootstrap over tasks resampled with replacement",
        },
        "confusion": {"rows": "reference", "columns": "computed", "matrix": matrix.tolist()},
        "dominant": {"compared": dominant_pairs, "agree": dominant_agree},
        "tasks": per_task,
        "disagree": [t for t in tasks if not per_task[t]["agrees"]],
        "unlabelled": [t for t in computed if t not in reference],
        "missing": [t for t in reference if t not in computed],
    }


def attach_reference(
    profiles: Profiles | dict[str, Any],
    reference: Mapping[str, Mapping[str, Any]],
    *,
    seed: int = 0,
    n_boot: int = 1000,
    source: str = "",
) -> Profiles:
    """``profiles`` (a :class:`Profiles` or its payload, left as it is) with the comparison added: the
    top-level ``reference`` section and each compared task's ``reference`` entry."""
    profiles = Profiles.from_dict(profiles)
    data = copy.deepcopy(profiles.data)
    tasks = data["tasks"]
    result = compare_labels(
        {t: v["interaction"] for t, v in tasks.items()},
        reference,
        computed_dominant={t: v.get("dominant_modality") for t, v in tasks.items()},
        seed=seed,
        n_boot=n_boot,
        source=source,
    )
    for t, entry in result["tasks"].items():
        tasks[t]["reference"] = {k: v for k, v in entry.items() if k != "computed"}
    data["reference"] = result
    return Profiles.from_dict(data, profiles.source)


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """A readable summary: the per-task table, the confusion matrix, agreement and kappa."""
    lines = [f"{'task':<28} {'computed':<11} {'reference':<11} agrees"]
    for t, e in result["tasks"].items():
        lines.append(
            f"{t[:28]:<28} {e['computed']:<11} {e['reference']:<11} {'yes' if e['agrees'] else 'NO'}"
        )
    labels = result["labels"]
    lines += [
        "",
        "confusion (rows: reference, columns: computed)",
        " " * 12 + "".join(f"{x:>12}" for x in labels),
    ]
    for name, row in zip(labels, result["confusion"]["matrix"]):
        lines.append(f"{name:<12}" + "".join(f"{v:>12}" for v in row))
    k = result["kappa"]
    value = "undefined" if k["value"] is None else f"{k['value']:.3f}"
    ci = "n/a" if k["ci95"] is None else f"[{k['ci95'][0]:.3f}, {k['ci95'][1]:.3f}]"
    lines += [
        "",
        f"{result['n']} task(s) compared: agreement {result['agreement']:.3f}, Cohen's kappa {value} "
        f"(95% bootstrap interval {ci}, {k['bootstrap']} replicates, {k['undefined']} undefined)",
    ]
    if result["unlabelled"]:
        lines.append(f"no reference label: {', '.join(result['unlabelled'])}")
    if result["missing"]:
        lines.append(f"reference tasks not profiled: {', '.join(result['missing'])}")
    return lines
