"""The files of a run folder (``mint tune``): ``tune.json`` (how the run was made: suite, model, seed,
groups, options, trainable parameters, time) as :class:`TuneRun`, and ``eval.json`` (every task's score with
its group's adapter, per-sample scores, the zero-shot backbone's) as :class:`Evaluation`
(docs/design.md, file formats)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mint.artifacts._base import Artifact, Key, Where, check_schema, is_number, mapping
from mint.errors import MintError

TUNE = "tune.json"
EVAL = "eval.json"


def _in_folder(path: str | os.PathLike, name: str) -> Path:
    """``path`` itself, or ``path/name`` when ``path`` is a run folder."""
    path = Path(path)
    if path.is_dir():
        return path / name
    if path.name != name and not path.parent.is_dir():
        raise MintError(f"{path}: no such run folder")
    return path


def _optional_str(data: dict[str, Any], at: Where, *keys: str) -> None:
    for key in keys:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise at.error(key, message=f"expected a string, got {data[key]!r}")


def _int(data: dict[str, Any], at: Where, key: str) -> None:
    v = data.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise at.error(key, message=f"expected an integer, got {v!r}")


def _check_groups_field(v: Any, at: Where, key: str) -> None:
    if v is None:
        return
    mapping(v, at, key)
    for name, members in v.items():
        if not isinstance(members, list) or not all(isinstance(t, str) for t in members):
            raise at.error(key, name, message="expected a list of task names")


@dataclass(frozen=True, eq=False)
class TuneRun(Artifact):
    """A run folder's checked ``tune.json``."""

    WHAT = "tune.json (is this a finished mint tune run?)"

    @classmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise at.error(message="expected a JSON object")
        check_schema(data, at, required=False)
        _optional_str(data, at, "suite", "model", "method")
        for key in ("seed", "data_seed", "trainable_params"):
            _int(data, at, key)
        _check_groups_field(data.get("groups"), at, "groups")
        if data.get("config") is not None:
            mapping(data["config"], at, "config")
        if data.get("train_seconds") is not None and not is_number(data["train_seconds"]):
            raise at.error("train_seconds", message=f"expected a number, got {data['train_seconds']!r}")
        return data

    @classmethod
    def load(cls, path: str | os.PathLike) -> TuneRun:
        """A run folder's tune.json (``path``: the folder or the file)."""
        path = Path(path)
        if not path.exists():
            raise MintError(f"{path}: no such run folder")
        return super().load(_in_folder(path, TUNE))

    @property
    def folder(self) -> Path:
        return Path(self.source).parent

    @property
    def suite(self) -> str | None:
        return self.data.get("suite")

    @property
    def model(self) -> str | None:
        return self.data.get("model")

    @property
    def method(self) -> str:
        return str(self.data.get("method") or "custom")

    @property
    def seed(self) -> int:
        return int(self.data.get("seed", 0))

    @property
    def data_seed(self) -> int:
        """The seed the suite was sampled with (``data_seed``, else the run's seed)."""
        return int(self.data.get("data_seed", self.seed))

    @property
    def groups(self) -> dict[str, list[str]]:
        return {g: list(m) for g, m in (self.data.get("groups") or {}).items()}

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.data.get("config") or {})


def _check_scores(block: Any, at: Where, *path: Key) -> None:
    """``{task: {score, n, metric, ids, sample_scores}}``."""
    mapping(block, at, *path)
    for task, entry in block.items():
        mapping(entry, at, *path, task)
        if "score" not in entry:
            raise at.error(*path, task, message="missing key 'score'")
        if entry["score"] is not None and not is_number(entry["score"]):
            raise at.error(*path, task, "score", message=f"expected a number or null, got {entry['score']!r}")
        scores, ids = entry.get("sample_scores"), entry.get("ids")
        if scores is not None:
            if not isinstance(scores, list) or not all(is_number(v) for v in scores):
                raise at.error(*path, task, "sample_scores", message="expected a list of numbers")
            if not isinstance(ids, list) or len(ids) != len(scores):
                raise at.error(*path, task, "ids", message="expected one id per sample score")


@dataclass(frozen=True, eq=False)
class Evaluation(Artifact):
    """A run folder's checked ``eval.json``."""

    WHAT = "eval.json (run mint evaluate on it first)"

    @classmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise at.error(message="expected a JSON object")
        check_schema(data, at, required=False)
        if "tasks" not in data:
            raise at.error(message="missing key 'tasks'")
        _check_scores(data["tasks"], at, "tasks")
        if data.get("unseen") is not None:
            _check_scores(data["unseen"], at, "unseen")
        zs = data.get("zero_shot")
        if zs:
            mapping(zs, at, "zero_shot")
            _check_scores(zs.get("tasks") or {}, at, "zero_shot", "tasks")
            if zs.get("unseen") is not None:
                _check_scores(zs["unseen"], at, "zero_shot", "unseen")
        _check_groups_field(data.get("groups"), at, "groups")
        return data

    @classmethod
    def load(cls, path: str | os.PathLike) -> Evaluation:
        """A run folder's eval.json (``path``: the folder or the file)."""
        return super().load(_in_folder(path, EVAL))

    @property
    def tasks(self) -> list[str]:
        return list(self.data["tasks"])

    def score(self, task: str) -> float | None:
        return self.data["tasks"][task]["score"]

    @property
    def mean(self) -> float | None:
        return self.data.get("mean")

    @property
    def method(self) -> str:
        return str(self.data.get("method") or "custom")

    @property
    def seed(self) -> int | None:
        return self.data.get("seed")

    @property
    def zero_shot_mean(self) -> float | None:
        return (self.data.get("zero_shot") or {}).get("mean")
