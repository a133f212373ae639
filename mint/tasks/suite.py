"""Suite files (YAML or JSON): parsing and validation with errors that name the file, line and field.

A suite is a ``tasks:`` list (or a top-level list) of task entries; docs/tasks.md has the full format::

    tasks:
      - name: shapes                 # one JSONL file; each record has "split": "train" | "test"
        jsonl: data/shapes.jsonl
        image_root: data/images      # default: the JSONL file's folder
        instruction: "What shape is shown? Answer with one word."
        metric: exact                # exact | f1 | choice
        answers: [circle, square]
      - name: colors                 # separate files (a task may have test only)
        train: data/train.jsonl
        test: data/test.jsonl
      - name: vqa                    # a Hugging Face dataset from the local cache or a save_to_disk folder
        hf: user/dataset
        train: train                 # split names; `split: x` is short for `test: x`
        test: validation
        columns: {image: img, text: question, answer: label}
        cache_dir: ~/hf-cache
      - builtin: vqa_color           # a built-in task, or a built-in suite (default, mini, full)

Relative paths resolve against the suite file's folder.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mint.errors import MintError
from mint.io import parse_json, parse_yaml, read_text
from mint.metrics import check_available, known_metric, metric_names
from mint.tasks.builtin import BUILTIN_SUITES, BUILTIN_TASKS, DEFAULT_CAPS, build_suite, build_task
from mint.tasks.loaders import SPLITS, read_hf_samples, read_jsonl_samples
from mint.tasks.schema import KINDS, MODALITIES, Sample, Task, task_name_problem

LOADERS = ("jsonl", "hf", "builtin")
TASK_KEYS = {
    "name",
    "jsonl",
    "hf",
    "builtin",
    "image_root",
    "train",
    "test",
    "split",
    "columns",
    "config",
    "cache_dir",
    "instruction",
    "metric",
    "answers",
    "description",
    "kind",
    "dominant",
    "max_train",
    "max_test",
    "check_images",
}
COLUMN_KEYS = ("id", "image", "text", "answer", "answers")


@dataclass
class _Ctx:
    """Where an entry lives: the suite file and line numbers of the entry and its keys."""

    path: Path
    line: int | None
    key_lines: dict[str, int]
    name: str | None = None

    def loc(self, field: str | None = None) -> str:
        """``file:line`` of the entry, or of its key ``field``."""
        line = self.key_lines.get(field, self.line) if field else self.line
        return f"{self.path}:{line}" if line else str(self.path)

    def at(self, field: str | None = None) -> str:
        loc = self.loc(field)
        who = f" task {self.name!r}:" if self.name else ""
        return f"{loc}:{who} field {field!r}" if field else f"{loc}:{who}".rstrip(":")

    def error(self, field: str | None, msg: str) -> MintError:
        return MintError(f"{self.at(field)}: {msg}")


def _positions(text: str) -> list[tuple[int, dict[str, int]]] | None:
    """Line numbers (1-based) of each task entry and of its keys, from the YAML/JSON node tree."""
    import yaml

    try:
        root = yaml.compose(text)
    except (yaml.YAMLError, RecursionError):
        return None
    if isinstance(root, yaml.MappingNode):
        root = next((v for k, v in root.value if getattr(k, "value", None) == "tasks"), None)
    if not isinstance(root, yaml.SequenceNode):
        return None
    out = []
    for node in root.value:
        keys = {}
        if isinstance(node, yaml.MappingNode):
            keys = {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
        out.append((node.start_mark.line + 1, keys))
    return out


def read_suite_file(path: Path) -> tuple[list[Any], list[tuple[int, dict[str, int]]] | None]:
    """The task entries of a suite file and their line numbers (None where they cannot be told)."""

    text = read_text(path, "suite file")
    if not text.strip():
        raise MintError(f"{path}: empty suite file")
    if path.suffix.lower() == ".json":
        data = parse_json(text, path)
    else:
        data = parse_yaml(text, path)
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"tasks", "name", "description"})
        if unknown:
            raise MintError(
                f"{path}: unknown top-level key {unknown[0]!r} (expected tasks, name, description)"
            )
        if "tasks" not in data:
            raise MintError(f"{path}: missing field 'tasks' (a list of tasks)")
        data = data["tasks"]
    if not isinstance(data, list):
        raise MintError(f"{path}: field 'tasks' must be a list of tasks, got {type(data).__name__}")
    if not data:
        raise MintError(f"{path}: field 'tasks': the suite has no tasks")
    return data, _positions(text)


def _str(entry: dict, key: str, ctx: _Ctx, default: str | None = None) -> str | None:
    value = entry.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ctx.error(key, f"must be a string, got {type(value).__name__}")
    return value


def _cap(entry: dict, key: str, ctx: _Ctx, call: int | None, default: int | None = None) -> int | None:
    """A task's sample cap: the smaller of the entry's ``key`` and the ``load_suite`` argument, where
    given; ``default`` when neither is."""
    value = entry.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ctx.error(key, f"must be a non-negative integer, got {value!r}")
    given = [v for v in (value, call) if v is not None]
    return min(given) if given else default


def _resolve(base: Path, p: str) -> Path:
    q = Path(os.path.expanduser(p))
    return q if q.is_absolute() else base / q


def _subsample(samples: list[Sample], n: int | None, seed: int, name: str, split: str) -> list[Sample]:
    if n is None or len(samples) <= n:
        return samples
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(split.encode())])
    keep = np.sort(rng.choice(len(samples), size=n, replace=False))
    return [samples[i] for i in keep]


def _answers(entry: dict, ctx: _Ctx) -> list[str] | None:
    answers = entry.get("answers")
    if answers is None:
        return None
    if not isinstance(answers, list) or not answers:
        raise ctx.error("answers", "must be a non-empty list of strings")
    out = []
    for a in answers:
        if isinstance(a, bool) or not isinstance(a, (str, int)):
            raise ctx.error("answers", f"must be a list of strings, got {a!r}")
        if str(a) in out:
            raise ctx.error("answers", f"duplicate answer {str(a)!r}")
        out.append(str(a))
    return out


def _default_instruction(answers: list[str] | None) -> str:
    if answers:
        return "Answer with one of: " + ", ".join(answers) + "."
    return "Answer briefly."


def _load_user_task(
    entry: dict, ctx: _Ctx, base: Path, seed: int, max_train: int | None, max_test: int | None
) -> Task:
    loader = "hf" if "hf" in entry else "jsonl"
    name = ctx.name
    metric, answers, kind, dominant = _labels(entry, ctx)
    check_images = entry.get("check_images", True)
    if not isinstance(check_images, bool):
        raise ctx.error("check_images", "must be true or false")
    if loader == "jsonl":
        found = _jsonl_samples(entry, ctx, base, check_images)
    else:
        found = _hf_samples(entry, ctx, base)
    _check_samples(found, ctx, answers, metric)
    instruction = _str(entry, "instruction", ctx)
    return Task(
        name=name,
        instruction=_default_instruction(answers) if instruction is None else instruction,
        train=_subsample(
            [s for _, s in found["train"]], _cap(entry, "max_train", ctx, max_train), seed, name, "train"
        ),
        test=_subsample(
            [s for _, s in found["test"]], _cap(entry, "max_test", ctx, max_test), seed, name, "test"
        ),
        metric=metric,
        answers=answers,
        kind=kind,
        dominant=dominant,
        description=_str(entry, "description", ctx, "") or "",
        source=f"{loader}: {entry.get('hf') or entry.get('jsonl') or ', '.join(str(entry[s]) for s in SPLITS if s in entry)}",
    )


def _labels(entry: dict, ctx: _Ctx) -> tuple[str, list[str] | None, str | None, str | None]:
    """The task's metric (known and available), closed answer set, documented kind and dominant modality."""
    metric = _str(entry, "metric", ctx, "exact")
    if not known_metric(metric):
        raise ctx.error("metric", f"unknown metric {metric!r} (expected {metric_names()})")
    try:
        check_available(metric)
    except MintError as e:
        raise ctx.error("metric", str(e)) from None
    answers = _answers(entry, ctx)
    kind = _str(entry, "kind", ctx)
    if kind is not None and kind not in KINDS:
        raise ctx.error("kind", f"unknown interaction kind {kind!r} (expected {', '.join(KINDS)})")
    dominant = _str(entry, "dominant", ctx)
    if dominant is not None and dominant not in MODALITIES:
        raise ctx.error("dominant", f"unknown modality {dominant!r} (expected {', '.join(MODALITIES)})")
    return metric, answers, kind, dominant


def _jsonl_samples(
    entry: dict, ctx: _Ctx, base: Path, check_images: bool
) -> dict[str, list[tuple[str, Sample]]]:
    """split -> [(where, sample)] from the entry's JSONL file(s); ``where`` names the file and line."""
    found: dict[str, list[tuple[str, Sample]]] = {s: [] for s in SPLITS}
    for key in ("columns", "config", "cache_dir", "split"):
        if key in entry:
            raise ctx.error(key, "only applies to the 'hf' loader")
    has_split_files = any(s in entry for s in SPLITS)
    if "jsonl" in entry and has_split_files:
        raise ctx.error(
            "jsonl",
            "give either 'jsonl' (one file with a 'split' field) or 'train'/'test' files, not both",
        )
    if "jsonl" not in entry and not has_split_files:
        raise ctx.error(None, "no loader: give 'jsonl', 'train'/'test' files, 'hf' or 'builtin'")
    files = {None: entry["jsonl"]} if "jsonl" in entry else {s: entry[s] for s in SPLITS if s in entry}
    root = _str(entry, "image_root", ctx)
    for split, rel in files.items():
        field = "jsonl" if split is None else split
        if not isinstance(rel, str):
            raise ctx.error(field, f"must be a path to a JSONL file, got {type(rel).__name__}")
        path = _resolve(base, rel)
        if not path.is_file():
            raise ctx.error(field, f"JSONL file not found: {path}")
        image_root = _resolve(base, root) if root is not None else path.parent
        if root is not None and not image_root.is_dir():
            raise ctx.error("image_root", f"image folder not found: {image_root}")
        for s, rows in read_jsonl_samples(path, image_root, split=split, check_images=check_images).items():
            found[s].extend((f"{path}:{lineno}", sample) for lineno, sample in rows)
    return found


def _hf_samples(entry: dict, ctx: _Ctx, base: Path) -> dict[str, list[tuple[str, Sample]]]:
    """split -> [(where, sample)] from the entry's Hugging Face dataset; ``where`` names the dataset row."""
    found: dict[str, list[tuple[str, Sample]]] = {s: [] for s in SPLITS}
    if "image_root" in entry:
        raise ctx.error("image_root", "only applies to the 'jsonl' loader")
    hf_name = _str(entry, "hf", ctx)
    if "split" in entry and "test" in entry:
        raise ctx.error("split", "give either 'split' (the test split) or 'test', not both")
    splits = {"test": entry.get("split", entry.get("test", "test"))}
    if "train" in entry:
        splits["train"] = entry["train"]
    columns = entry.get("columns", {})
    if not isinstance(columns, dict):
        raise ctx.error("columns", "must be a mapping such as {image: img, text: question, answer: label}")
    for k, v in columns.items():
        if k not in COLUMN_KEYS:
            raise ctx.error("columns", f"unknown key {k!r} (expected {', '.join(COLUMN_KEYS)})")
        if not isinstance(v, str):
            raise ctx.error("columns", f"column name for {k!r} must be a string")
    cache_dir = _str(entry, "cache_dir", ctx)
    cache_dir = str(_resolve(base, cache_dir)) if cache_dir else None
    for split, split_name in splits.items():
        field = "split" if split == "test" and "split" in entry else split
        if not isinstance(split_name, str):
            raise ctx.error(field, "must be a split name such as 'train' or 'test'")
        samples = read_hf_samples(
            hf_name,
            split_name,
            columns,
            config=_str(entry, "config", ctx),
            cache_dir=cache_dir,
            base=base,
            where=ctx.at(field),
            row_id_prefix="train-" if split == "train" else "",  # row-number ids unique across splits
        )
        found[split].extend((f"{hf_name}[{split_name}] row {i}", s) for i, s in enumerate(samples))
    return found


def _check_samples(
    found: dict[str, list[tuple[str, Sample]]], ctx: _Ctx, answers: list[str] | None, metric: str
) -> None:
    """Some test samples; ids unique across splits; answers within the task's answer set; choices where the
    metric needs them (errors name the sample's file and line, or dataset row)."""
    name = ctx.name
    if not found["test"]:
        total = len(found["train"])
        raise ctx.error(
            None,
            "empty task: no test samples"
            + (f" ({total} train samples)" if total else " (no samples at all)"),
        )
    seen: dict[str, str] = {}
    for split in SPLITS:
        for where, s in found[split]:
            if s.id in seen:
                raise MintError(
                    f"{where}: field 'id': duplicate id {s.id!r} in task {name!r} (first at {seen[s.id]})"
                )
            seen[s.id] = where
            if answers is not None and s.answer not in answers:
                raise MintError(
                    f"{where}: field 'answer': {s.answer!r} is not in task {name!r}'s answers ({', '.join(answers)})"
                )
            if metric == "choice" and answers is None and "choices" not in s.meta:
                raise MintError(
                    f"{where}: field 'choices': metric 'choice' needs per-sample 'choices' or the task's 'answers'"
                )


def _load_builtin(
    entry: dict, ctx: _Ctx, seed: int, max_train: int | None, max_test: int | None
) -> list[Task]:
    which = _str(entry, "builtin", ctx)
    allowed = {"builtin", "name", "max_train", "max_test", "instruction"}
    for key in entry:
        if key not in allowed:
            raise ctx.error(key, f"cannot be set for a built-in task (allowed: {', '.join(sorted(allowed))})")
    if which in BUILTIN_SUITES:
        for key in ("name", "instruction"):
            if key in entry:
                raise ctx.error(key, f"cannot be set for the whole built-in suite {which!r}")
        _, cap_train, cap_test = BUILTIN_SUITES[which]
        return build_suite(
            which,
            seed=seed,
            max_train=_cap(entry, "max_train", ctx, max_train, cap_train),
            max_test=_cap(entry, "max_test", ctx, max_test, cap_test),
        )
    if which not in BUILTIN_TASKS:
        raise ctx.error(
            "builtin",
            f"unknown built-in task or suite {which!r} (tasks: {', '.join(BUILTIN_TASKS)}; "
            f"suites: {', '.join(BUILTIN_SUITES)})",
        )
    cap_train, cap_test = DEFAULT_CAPS
    task = build_task(
        which,
        seed=seed,
        max_train=_cap(entry, "max_train", ctx, max_train, cap_train),
        max_test=_cap(entry, "max_test", ctx, max_test, cap_test),
    )
    if "name" in entry:
        task.name = ctx.name
    if "instruction" in entry:
        task.instruction = _str(entry, "instruction", ctx)
    return [task]


def load_suite_file(
    path: str | os.PathLike, *, seed: int = 0, max_train: int | None = None, max_test: int | None = None
) -> list[Task]:
    """Load and validate every task of a suite file (see the module docstring for the format)."""
    path = Path(path)
    entries, positions = read_suite_file(path)
    base = path.parent
    tasks: list[Task] = []
    names: dict[str, str] = {}
    for i, entry in enumerate(entries):
        line, key_lines = positions[i] if positions and i < len(positions) else (None, {})
        ctx = _Ctx(path, line, key_lines)
        if not isinstance(entry, dict):
            raise ctx.error(
                None, f"task {i + 1}: expected a mapping with a name and a loader, got {type(entry).__name__}"
            )
        ctx.name = entry.get("name") if isinstance(entry.get("name"), str) else None
        unknown = sorted(set(entry) - TASK_KEYS)
        if unknown:
            raise ctx.error(
                unknown[0],
                f"unknown key or loader (loaders: {', '.join(LOADERS)}; other keys: "
                f"{', '.join(sorted(TASK_KEYS - set(LOADERS)))})",
            )
        loaders = [k for k in ("jsonl", "hf", "builtin") if k in entry]
        if len(loaders) > 1:
            raise ctx.error(loaders[1], f"a task has one loader; got {' and '.join(loaders)}")
        name = _str(entry, "name", ctx)
        if name is None and "builtin" not in entry:
            raise ctx.error(None, f"task {i + 1}: missing field 'name'")
        if name is not None and not name.strip():
            raise ctx.error("name", "is empty")
        ctx.name = name
        if "builtin" in entry:
            new = _load_builtin(entry, ctx, seed, max_train, max_test)
        else:
            new = [_load_user_task(entry, ctx, base, seed, max_train, max_test)]
        for task in new:
            here = ctx.at("name" if "name" in entry else "builtin")
            problem = task_name_problem(task.name)
            if problem:
                raise MintError(f"{here}: {problem}")
            if task.name.lower() in names:  # names that differ only in case share files on some systems
                raise MintError(
                    f"{here}: duplicate task name {task.name!r} (first at {names[task.name.lower()]})"
                )
            names[task.name.lower()] = ctx.loc("name" if "name" in entry else "builtin")
            tasks.append(task)
    return tasks
