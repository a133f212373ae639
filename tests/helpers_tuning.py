"""Small hand-made tasks and helpers shared by the tuning tests (and the DDP script they launch)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from mint.tasks.builtin import DEFAULT_TASKS
from mint.tasks.schema import Sample, Task

#: the tasks of ``builtin:mini`` (the default suite's tasks), and the two groups the CLI tests tune
MINI = list(DEFAULT_TASKS)
MINI_GROUPS = {"first": MINI[:6], "second": MINI[6:]}

#: (task name, answer set, question): image colour decides the answer; words known to the tiny tokenizer
SPECS = (
    ("color", ["red", "blue", "green"], "what color is the shape ?"),
    ("presence", ["yes", "no"], "does the image contain a circle ?"),
    ("shape", ["circle", "triangle", "rectangle"], "which shape is in the image ?"),
)


def make_tasks(n_train: int = 8, n_test: int = 4, seed: int = 0, flip: str | None = None) -> list[Task]:
    """Three closed-answer image tasks whose answer is a function of the image's colour channel.

    ``flip`` names a task whose training answers are rotated (a different training signal, same inputs).
    """
    rng = np.random.default_rng(seed)
    tasks = []
    for name, answers, question in SPECS:
        samples = []
        for i in range(n_train + n_test):
            c = int(rng.integers(0, 3))
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., c] = 255
            answer = answers[c % len(answers)]
            if flip == name and i < n_train:
                answer = answers[(c + 1) % len(answers)]
            samples.append(Sample(id=f"{name}-{i}", text=question, answer=answer, image=img))
        tasks.append(
            Task(
                name=name,
                instruction="answer with one word .",
                train=samples[:n_train],
                test=samples[n_train:],
                answers=list(answers),
            )
        )
    return tasks


def adapter_tensors(peft_model, name: str) -> dict:
    """A copy of adapter ``name``'s weights (keys without the adapter name)."""
    from peft.utils import get_peft_model_state_dict

    return {
        k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model, adapter_name=name).items()
    }


def tune_on_two_ranks_and_one(tmp_path, options: list) -> tuple[Path, Path]:
    """``mint tune OPTIONS`` as two CPU processes (torchrun, gloo) with batch 2 into ``tmp_path/ddp`` and as one
    process with batch 4 into ``tmp_path/one`` (the same global batch); returns the two run folders."""
    from click.testing import CliRunner
    from paths import TORCHRUN_2, child_env

    from mint.cli import main

    ddp, one = tmp_path / "ddp", tmp_path / "one"
    tune = ["-m", "mint.cli", "tune", "--out", str(ddp), "--batch-size", "2", *map(str, options)]
    proc = subprocess.run([*TORCHRUN_2, *tune], env=child_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = CliRunner().invoke(main, ["tune", "--out", str(one), "--batch-size", "4", *map(str, options)])
    assert res.exit_code == 0, res.output
    return ddp, one


def mini_groups_file(tmp_path: Path, groups: dict | None = None) -> Path:
    """A groups.json in ``tmp_path`` with ``groups`` (default :data:`MINI_GROUPS`)."""
    path = tmp_path / "groups.json"
    payload = {
        "mint_version": "0",
        "schema": 1,
        "method": "mint",
        "params": {},
        "groups": groups or MINI_GROUPS,
    }
    path.write_text(json.dumps(payload))
    return path


def mini_tune(model, groups, *options) -> list[str]:
    """The arguments of ``mint tune`` on ``builtin:mini`` with ``model`` and ``groups``, then ``options``."""
    return [
        "tune",
        "--suite",
        "builtin:mini",
        "--model",
        str(model),
        "--groups",
        str(groups),
        *map(str, options),
    ]
