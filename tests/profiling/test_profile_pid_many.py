"""profile_predictions solves every task's PID table in one broja_pid_many call: each task's entry is the one it
gets profiled alone, and the one-table broja_pid result to within the solver's certified gap."""

from __future__ import annotations

import numpy as np
import pytest

import mint.profiling.profiler as profiler
from mint.profiling import profile_predictions
from mint.profiling.discretize import encode_labels, joint_table
from mint.profiling.pid import broja_pid

ATOMS = (("redundancy", "redundancy"), ("unique_image", "unique_1"), ("unique_text", "unique_2"))


def _task_rows(
    task: str, rng: np.random.Generator, n1: int, n2: int, ny: int, codes: bool = True
) -> list[dict]:
    rows = []
    for i in range(40):
        a, b = int(rng.integers(n1)), int(rng.integers(n2))
        y = (a + b * int(rng.integers(2)) + int(rng.random() < 0.3)) % ny
        rows.append(
            {
                "task": task,
                "id": str(i),
                "answer": f"c{y}",
                "predictions": {"both": f"c{y}", "image": f"c{a % ny}", "text": f"c{b % ny}"},
                **({"codes": {"image": a, "text": b}} if codes else {}),
            }
        )
    return rows


def _rows() -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for k in range(4):  # four tables of one shape, solved side by side
        rows += _task_rows(f"same_{k}", rng, 4, 3, 3)
    rows += _task_rows("other_shape", rng, 5, 2, 2)
    rows += _task_rows("no_codes", rng, 3, 3, 3, codes=False)
    return rows


def test_one_call_for_all_tables_and_each_entry_as_alone(monkeypatch):
    calls = []
    real = profiler.broja_pid_many
    monkeypatch.setattr(profiler, "broja_pid_many", lambda tables: calls.append(len(tables)) or real(tables))
    rows = _rows()
    together = profile_predictions(rows, n_boot=20, warn=None)["tasks"]
    assert calls == [5]  # one call for the five tables (the task without codes has none)
    assert together["no_codes"]["pid"] is None and "codes" in together["no_codes"]["reasons"]["pid"]
    for name, entry in together.items():
        alone = profile_predictions([r for r in rows if r["task"] == name], n_boot=20, warn=None)["tasks"][
            name
        ]
        assert alone == entry  # exactly: a task's numbers do not depend on the other tasks in the file


def test_each_pid_is_broja_pid_of_its_table():
    rows = _rows()
    tasks = profile_predictions(rows, n_boot=20, warn=None)["tasks"]
    for name, entry in tasks.items():
        if entry["pid"] is None:
            continue
        mine = [r for r in rows if r["task"] == name]
        x1 = np.unique([r["codes"]["image"] for r in mine], return_inverse=True)[1]
        x2 = np.unique([r["codes"]["text"] for r in mine], return_inverse=True)[1]
        y, _ = encode_labels([r["answer"] for r in mine])
        one = broja_pid(joint_table(x1, x2, y))
        pid = entry["pid"]
        assert pid["gap"] <= 1e-8 and pid["shape"] == list(joint_table(x1, x2, y).shape)
        for key, ref in ATOMS + (("synergy", "synergy"),):
            assert pid[key] == pytest.approx(one[ref], abs=2e-8), (name, key)
        assert pid["mutual_information"]["joint"] == pytest.approx(one["mi_joint"], abs=1e-12)
