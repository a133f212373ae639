"""The gradient and TAG baselines' per-task passes split over two processes (torchrun, gloo on CPU): the
same groups and, up to the order of floating-point sums, the same affinity matrix as one process."""

import json
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from paths import TORCHRUN_2, child_env

from mint.cli import main


def _args(method: str, model: str, out) -> list[str]:
    common = ["--suite", "builtin:mini", "--model", model, "--k", "2", "--steps", "2", "--max-samples", "4"]
    return ["cluster", "--method", method, *common, "--out", str(out)]


@pytest.mark.parametrize("method", ["gradient", "tag"])
def test_two_processes_give_the_one_process_grouping(tmp_path, llava, method):
    one = tmp_path / "one.json"
    result = CliRunner().invoke(main, _args(method, llava, one))
    assert result.exit_code == 0, result.output
    two = tmp_path / "two.json"
    env = child_env()
    cmd = [*TORCHRUN_2]
    proc = subprocess.run(
        [*cmd, "-m", "mint.cli", *_args(method, llava, two)], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["groups"] == b["groups"] and a["assignment"] == b["assignment"]
    assert np.allclose(a["params"]["matrix"], b["params"]["matrix"], atol=1e-5)
    assert proc.stdout.count("wrote") == 1  # one process writes the file


def test_other_methods_still_refuse_several_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(main, _args("instruction", "tiny", tmp_path / "g.json"))
    assert result.exit_code == 2 and "mint cluster --method instruction runs in one process" in result.output
