"""Sharded prediction: two CPU processes (torchrun, gloo) write the same predictions file as one process, and
a relaunch after one process was killed recomputes that process's block only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from paths import TORCHRUN_2, child_env

from mint.errors import MintError
from mint.models.predict import run_predict

ARGS = dict(
    suite="builtin:mini", model="tiny", max_samples=12, batch_size=2, max_new_tokens=2, progress=False
)


def _cli_args() -> list[str]:
    return [
        "--suite", "builtin:mini", "--model", "tiny", "--max-samples", "12", "--batch-size", "2",
        "--max-new-tokens", "2", "--no-progress",
    ]  # fmt: skip


def _torchrun(out: Path, cache: Path) -> None:
    pytest.importorskip("torch.distributed.run")
    env = child_env()
    cmd = [*TORCHRUN_2]
    cmd += ["-m", "mint.cli", "predict", *_cli_args(), "--out", str(out), "--cache-dir", str(cache)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "preds.jsonl"
    meta = run_predict(out=out, **ARGS)
    assert meta["processes"] == 1
    return out


def test_two_processes_write_the_single_process_file(tmp_path, single):
    out = tmp_path / "preds.jsonl"
    _torchrun(out, tmp_path / "cache")
    assert out.read_bytes() == single.read_bytes()
    meta = json.loads((tmp_path / "preds.jsonl.meta.json").read_text())
    assert meta["processes"] == 2
    n_tasks = len(meta["tasks"])
    # every task split in two blocks of whole chunks (12 samples, chunks of 8): 2 x (3 modes + features)
    assert meta["parts"] == {"computed": 2 * 4 * n_tasks, "cached": 0}
    # the blocks were merged into whole-task parts: a one-process run reuses them all
    again = run_predict(out=tmp_path / "again.jsonl", cache_dir=tmp_path / "cache", **ARGS)
    assert again["parts"] == {"computed": 0, "cached": 4 * n_tasks}
    assert (tmp_path / "again.jsonl").read_bytes() == single.read_bytes()


def test_a_killed_process_resumes_alone(tmp_path, single):
    from mint.models import load_model
    from mint.models.runner import PredictionCache, Shards, model_setting, predict_suite
    from mint.tasks import load_suite

    cache_dir = tmp_path / "cache"
    tasks = load_suite("builtin:mini", seed=0, max_test=12)
    vlm = load_model("tiny", max_new_tokens=2)
    from mint.models import resolve_model

    cache = PredictionCache(cache_dir, model_setting(vlm, "tiny", resolve_model("tiny"), "float32"))
    # process 0 of 2 finishes its blocks; process 1 was killed, so there is nothing to merge yet
    with pytest.raises(MintError, match="did not write its part"):
        predict_suite(vlm, tasks, cache, batch_size=2, progress=False, shards=Shards(0, 2))
    out = tmp_path / "preds.jsonl"
    _torchrun(out, cache_dir)
    meta = json.loads((tmp_path / "preds.jsonl.meta.json").read_text())
    assert meta["parts"] == {"computed": 4 * len(tasks), "cached": 4 * len(tasks)}
    assert out.read_bytes() == single.read_bytes()
