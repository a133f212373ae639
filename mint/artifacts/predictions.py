"""A predictions file (docs/design.md, file formats): what ``mint predict`` writes and ``mint profile`` reads.

One JSON object a line::

    {"task": "vqa_color", "id": "17", "answer": "blue",
     "predictions": {"both": "blue", "image": "blue", "text": "red"},
     "features": {"image": [0.12, -0.4], "text": [0.9, 0.1]}}

``answer`` and ``features`` (or integer ``codes``) are optional, but within a task either every
record has them or none does. The two modality names default to ``image`` and ``text``; any two
names work if every line uses the same ones. Every problem is a :class:`MintError` naming the file,
line and field. Beside the file, ``<file>.meta.json`` records how it was made (model, modes, seed, tasks);
files from other models or APIs have none.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mint.errors import MintError
from mint.io import (
    atomic_path,
    atomic_write_json,
    check_output,
    dumps_json,
    read_json,
    read_jsonl,
    stamp,
)
from mint.tasks.schema import task_name_problem
from mint.vocabulary import BOTH, DEFAULT_MODALITIES


@dataclass
class TaskPredictions:
    """The validated records of one task, as columns."""

    name: str
    ids: list[str]
    lines: list[int]
    both: list[str]
    unimodal: dict[str, list[str]]
    answers: list[str] | None = None
    features: dict[str, np.ndarray] | None = None
    codes: dict[str, np.ndarray] | None = None

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass
class PredictionSet:
    """A validated predictions file: the two modality names and the tasks in file order."""

    source: str
    modalities: tuple[str, str]
    tasks: dict[str, TaskPredictions] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(t.n for t in self.tasks.values())


def _answer_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and math.isfinite(value):
        return str(value)
    raise MintError(f"{where}: expected a string or a number, got {json_type(value)}")


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    return {
        bool: "boolean",
        str: "string",
        int: "number",
        float: "number",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _modalities_of(preds: Mapping[str, Any], where: str, expected: tuple[str, str] | None) -> tuple[str, str]:
    keys = list(preds)
    if BOTH not in keys:
        raise MintError(f"{where}: field 'predictions' lacks the multimodal key '{BOTH}'")
    others = [k for k in keys if k != BOTH]
    if expected is not None:
        for k in others:
            if k not in expected:
                raise MintError(
                    f"{where}: unknown modality key 'predictions.{k}' (expected '{BOTH}', "
                    f"'{expected[0]}', '{expected[1]}')"
                )
        for k in expected:
            if k not in preds:
                raise MintError(f"{where}: field 'predictions' lacks the modality key '{k}'")
        return expected
    if len(others) != 2:
        raise MintError(
            f"{where}: field 'predictions' must hold '{BOTH}' and exactly two modality keys, "
            f"got {', '.join(repr(k) for k in keys)}"
        )
    if set(others) == set(DEFAULT_MODALITIES):
        return DEFAULT_MODALITIES
    return (others[0], others[1])


def _vector(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise MintError(f"{where}: expected a non-empty array of numbers, got {json_type(value)}")
    if set(map(type, value)) <= {int, float}:  # fast path; bools and strings take the slow one
        arr = np.asarray(value, dtype=np.float64)
        if np.isfinite(arr).all():
            return arr
    for i, v in enumerate(value):  # find the offending value for the message
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise MintError(f"{where}[{i}]: expected a number, got {json_type(v)}")
        if not math.isfinite(v):
            break
    raise MintError(f"{where}[{i}]: feature is NaN or infinite")


def _per_modality(
    rec: Mapping[str, Any], key: str, where: str, modalities: tuple[str, str]
) -> dict[str, Any]:
    value = rec[key]
    if not isinstance(value, dict):
        raise MintError(f"{where}: field '{key}' must be an object keyed by modality, got {json_type(value)}")
    for k in value:
        if k not in modalities:
            raise MintError(
                f"{where}: unknown modality key '{key}.{k}' (expected '{modalities[0]}', '{modalities[1]}')"
            )
    for m in modalities:
        if m not in value:
            raise MintError(f"{where}: field '{key}' lacks the modality key '{m}'")
    return value


class _TaskBuilder:
    def __init__(self, name: str, first_line: int):
        self.name = name
        self.first_line = first_line
        self.ids: list[str] = []
        self.lines: list[int] = []
        self.both: list[str] = []
        self.uni: dict[str, list[str]] = {}
        self.answers: list[str | None] = []
        self.features: dict[str, list[np.ndarray]] | None = None
        self.codes: dict[str, list[int]] | None = None
        self.has: dict[str, bool] = {}

    def consistent(self, key: str, present: bool, where: str) -> None:
        """Within a task, an optional field is on every record or on none."""
        if key not in self.has:
            self.has[key] = present
        elif self.has[key] != present:
            first = f"line {self.first_line}"
            if present:
                raise MintError(
                    f"{where}: field '{key}' is present, but the first record of task "
                    f"'{self.name}' ({first}) has none; give it on every record of the task or none"
                )
            raise MintError(
                f"{where}: field '{key}' is missing, but other records of task "
                f"'{self.name}' (from {first}) have it; give it on every record of the task or none"
            )

    def build(self, modalities: tuple[str, str]) -> TaskPredictions:
        features = None
        if self.features is not None:
            features = {m: np.stack(self.features[m]) for m in modalities}
        codes = None
        if self.codes is not None:
            codes = {m: np.asarray(self.codes[m], dtype=np.int64) for m in modalities}
        answers = list(self.answers) if self.has.get("answer") else None  # type: ignore[arg-type]
        return TaskPredictions(
            self.name,
            self.ids,
            self.lines,
            self.both,
            {m: self.uni[m] for m in modalities},
            answers,
            features,
            codes,
        )


def validate_records(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    source: str = "<records>",
    modalities: Sequence[str] | None = None,
) -> PredictionSet:
    """Validate ``(line_number, record)`` pairs into a :class:`PredictionSet`.

    ``modalities``: the two expected modality names; ``None`` takes them from the first record.
    """
    expected: tuple[str, str] | None = None
    if modalities is not None:
        mods = tuple(str(m).strip() for m in modalities)
        if len(mods) != 2 or len(set(mods)) != 2 or BOTH in mods or not all(mods):
            raise MintError(
                f"modalities: expected two distinct names other than '{BOTH}', got {list(modalities)}"
            )
        expected = (mods[0], mods[1])
    builders: dict[str, _TaskBuilder] = {}
    seen: dict[tuple[str, str], int] = {}
    for lineno, rec in rows:
        where = f"{source}:{lineno}"
        if not isinstance(rec, Mapping):
            raise MintError(f"{where}: expected a JSON object, got {json_type(rec)}")
        for key in ("task", "id", "predictions"):
            if key not in rec:
                raise MintError(f"{where}: missing field '{key}'")
        task = rec["task"]
        if not isinstance(task, str) or not task.strip():
            raise MintError(f"{where}: field 'task' must be a non-empty string, got {json_type(task)}")
        problem = task_name_problem(task)
        if problem:
            raise MintError(f"{where}: field 'task': {problem}")
        rid = rec["id"]
        if isinstance(rid, bool) or not isinstance(rid, (str, int)):
            raise MintError(f"{where}: field 'id' must be a string or an integer, got {json_type(rid)}")
        rid = str(rid)
        if (task, rid) in seen:
            raise MintError(
                f"{where}: duplicate id '{rid}' in task '{task}' (first at line {seen[task, rid]})"
            )
        seen[task, rid] = lineno
        preds = rec["predictions"]
        if not isinstance(preds, dict):
            raise MintError(f"{where}: field 'predictions' must be an object, got {json_type(preds)}")
        expected = _modalities_of(preds, where, expected)

        b = builders.get(task)
        if b is None:
            b = builders[task] = _TaskBuilder(task, lineno)
        b.ids.append(rid)
        b.lines.append(lineno)
        b.both.append(_answer_text(preds[BOTH], f"{where}: field 'predictions.{BOTH}'"))
        for m in expected:
            b.uni.setdefault(m, []).append(_answer_text(preds[m], f"{where}: field 'predictions.{m}'"))

        has_answer = rec.get("answer") is not None
        b.consistent("answer", has_answer, where)
        b.answers.append(_answer_text(rec["answer"], f"{where}: field 'answer'") if has_answer else None)

        has_features = rec.get("features") is not None
        b.consistent("features", has_features, where)
        if has_features:
            feats = _per_modality(rec, "features", where, expected)
            if b.features is None:
                b.features = {m: [] for m in expected}
            for m in expected:
                vec = _vector(feats[m], f"{where}: field 'features.{m}'")
                if b.features[m] and len(vec) != len(b.features[m][0]):
                    raise MintError(
                        f"{where}: field 'features.{m}' has {len(vec)} values, but task '{task}' "
                        f"started with {len(b.features[m][0])} (line {b.first_line}); lengths must agree"
                    )
                b.features[m].append(vec)

        has_codes = rec.get("codes") is not None
        b.consistent("codes", has_codes, where)
        if has_codes:
            codes = _per_modality(rec, "codes", where, expected)
            if b.codes is None:
                b.codes = {m: [] for m in expected}
            for m in expected:
                c = codes[m]
                if isinstance(c, bool) or not isinstance(c, int):
                    raise MintError(
                        f"{where}: field 'codes.{m}' must be an integer, got {json_type(c)} {c!r}"
                    )
                b.codes[m].append(c)
    if expected is None:
        raise MintError(f"{source}: no records")
    return PredictionSet(source, expected, {name: b.build(expected) for name, b in builders.items()})


def load_predictions(path: str | os.PathLike, modalities: Sequence[str] | None = None) -> PredictionSet:
    """Read and validate a predictions JSONL file (errors name the file, line and field)."""
    return validate_records(read_jsonl(path), source=os.fspath(path), modalities=modalities)


def meta_path(path: str | os.PathLike) -> Path:
    """The metadata sidecar of a predictions file: ``preds.jsonl`` -> ``preds.jsonl.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def write_predictions(
    path: str | os.PathLike,
    rows: Iterable[Mapping[str, Any]],
    meta: dict[str, Any] | None,
    replace: bool | None = None,
) -> Path:
    """Write the predictions JSONL and (with ``meta``) its sidecar, both atomically; no sidecar is left
    without its predictions."""
    path = Path(path)
    if meta is not None:
        atomic_write_json(meta_path(path), stamp(meta), replace=replace)
    try:
        with atomic_path(path, replace) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(dumps_json(r, indent=None))
    except BaseException:
        if meta is not None:
            meta_path(path).unlink(missing_ok=True)
        raise
    return path


def _record(task: TaskPredictions, i: int, modalities: tuple[str, str]) -> dict[str, Any]:
    """Sample ``i`` of ``task`` as a file record."""
    rec: dict[str, Any] = {"task": task.name, "id": task.ids[i]}
    if task.answers is not None:
        rec["answer"] = task.answers[i]
    rec["predictions"] = {BOTH: task.both[i], **{m: task.unimodal[m][i] for m in modalities}}
    if task.features is not None:
        rec["features"] = {m: task.features[m][i].tolist() for m in modalities}
    if task.codes is not None:
        rec["codes"] = {m: int(task.codes[m][i]) for m in modalities}
    return rec


@dataclass(frozen=True, eq=False)
class Predictions:
    """A checked predictions file: its records by task (:class:`PredictionSet`) and, when it has one,
    the sidecar's metadata."""

    records: PredictionSet
    meta: dict[str, Any] | None = None

    #: the format's version (records carry none; the sidecar carries ``schema``)
    SCHEMA: ClassVar[int] = 1

    @classmethod
    def load(cls, path: str | os.PathLike, modalities: Sequence[str] | None = None) -> Predictions:
        """Read and check a predictions file and its sidecar (when there is one)."""
        records = load_predictions(path, modalities)
        side = meta_path(path)
        meta = read_json(side, "predictions metadata") if side.is_file() else None
        if meta is not None and not isinstance(meta, dict):
            raise MintError(f"{side}: expected a JSON object")
        return cls(records, meta)

    @classmethod
    def from_records(
        cls, records: Iterable[Mapping[str, Any]], modalities: Sequence[str] | None = None
    ) -> Predictions:
        """Check record dicts in the file format (errors name the record's position, from 1)."""
        return cls(validate_records(enumerate(records, 1), modalities=modalities))

    @property
    def source(self) -> str:
        return self.records.source

    @property
    def modalities(self) -> tuple[str, str]:
        return self.records.modalities

    @property
    def tasks(self) -> list[str]:
        """The task names, in file order."""
        return list(self.records.tasks)

    def task(self, name: str) -> TaskPredictions:
        return self.records.tasks[name]

    def rows(self) -> list[dict[str, Any]]:
        """The records as written, task by task."""
        mods = self.records.modalities
        return [_record(t, i, mods) for t in self.records.tasks.values() for i in range(t.n)]

    def save(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write the records (and the metadata, when there is some) atomically; existing files are
        replaced only with ``force``."""
        check_output(path, force)
        if self.meta is not None:
            check_output(meta_path(path), force)
        return write_predictions(path, self.rows(), self.meta, replace=True if force else None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Predictions):
            return NotImplemented
        return self.rows() == other.rows() and self.modalities == other.modalities
