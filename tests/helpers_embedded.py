"""Checks shared by the tests of the embedded backbones built by tools/ (tiny, tiny-video, tiny-audio): the
package ships every built file, their profile of a generated suite, the answers to time-reversed inputs,
and ``mint run`` end to end on a suite."""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from paths import REPO

import mint
from mint.cli import main
from mint.models.runner import PredictionCache, predict_suite
from mint.profiling import profile_predictions
from mint.tasks import load_suite


def assert_package_data_covers(folder: Path) -> None:
    """pyproject's package data ships every file of the built backbone ``folder``."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["mint"]
    root = Path(mint.__file__).parent
    for path in folder.iterdir():
        relative = path.relative_to(root).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def suite_profiles(vlm: Any, suite: str, model: str, per_task: int, cache: Path, modality: str):
    """({task: (documented kind, dominant)}, the chance-corrected profile of ``vlm``'s real predictions of
    ``suite``, ``per_task`` test samples a task), after checking the three modes were predicted."""
    tasks = load_suite(suite, max_train=0, max_test=per_task)
    rows, _ = predict_suite(
        vlm, tasks, PredictionCache(cache, {"model": model}), batch_size=40, features=False, progress=False
    )
    assert {m for r in rows for m in r["predictions"]} == {"both", modality, "text"}
    kinds = {t.name: (t.kind, t.dominant) for t in tasks}
    return kinds, profile_predictions(rows, samples=10, seed=0, decide_by="corrected", warn=None)["tasks"]


def reversal_rates(
    vlm: Any, task: Any, reverse: Callable[[Any], None], opposite: dict[str, str]
) -> tuple[float, float]:
    """(share of ``task``'s test samples answered right, share answered with the opposite answer once
    ``reverse`` has turned a copy of each sample's input backwards in time)."""
    backwards = []
    for s in task.test:
        b = copy.copy(s)
        reverse(b)
        backwards.append(b)
    n = len(task.test)
    forward = vlm.predict(task, task.test, "both", batch_size=n, progress=False)
    reverse_answers = vlm.predict(task, backwards, "both", batch_size=n, progress=False)
    right = sum(p == s.answer for p, s in zip(forward, task.test)) / n
    flipped = sum(p == opposite[s.answer] for p, s in zip(reverse_answers, task.test)) / n
    return right, flipped


def run_end_to_end(tmp_path: Path, suite: str, model: str, modality: str) -> Path:
    """``mint run`` on a few samples of ``suite`` with ``model`` (tower auto); checks the profiles name the
    suite's modalities, the report has its rows and the predictions their three modes; returns the output."""
    cfg = {
        "suite": suite,
        "model": model,
        "out": "out",
        "threads": 1,
        "max_train": 8,
        "max_test": 4,
        "predict": {"batch_size": 16},
        "profile": {"samples": 3, "decide_by": "corrected"},
        "cluster": {"methods": ["mint", "all"], "bootstrap": 5},
        "tune": {"epochs": 1, "batch_size": 8, "checkpoint_every": 0, "tower": "auto"},
        "evaluate": {"batch_size": 16},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(main, ["run", str(tmp_path / "run.yaml"), "--no-progress"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    profiles = json.loads((out / "profiles.json").read_text())
    assert profiles["config"]["modalities"] == [modality, "text"]
    report = json.loads((out / "report.json").read_text())
    assert {"zero_shot", "all", "mint"} <= set(report["rows"]), list(report["rows"])
    first = (out / "predictions.jsonl").read_text().splitlines()[0]
    assert set(json.loads(first)["predictions"]) == {"both", modality, "text"}
    return out
