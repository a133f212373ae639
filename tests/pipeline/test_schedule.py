"""`mint run --jobs N` and `--print-stages` / `--stage`: the same outputs as a sequential run."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mint.cli import main


def _config(tmp: Path) -> Path:
    cfg = {
        "suite": "builtin:mini",
        "model": "tiny",
        "seeds": [0],
        "threads": 1,
        "max_train": 8,
        "max_test": 4,
        "profile": {"samples": 3},
        "cluster": {"methods": ["mint", "all"], "bootstrap": 5},
        "tune": {"epochs": 1, "batch_size": 8, "checkpoint_every": 0},
        "evaluate": {"merged": True},  # the merged row is part of the mint stage
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _mint(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _outputs(out: Path) -> dict[str, object]:
    """What a run produced, comparable between folders: report.json and every eval.json (the folder's
    path and the measured training seconds left out) and every adapter file's bytes."""

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k != "train_seconds"}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value.replace(str(out), "OUT") if isinstance(value, str) else value

    found: dict[str, object] = {"report": clean(json.loads((out / "report.json").read_text()))}
    for path in sorted((out / "runs").rglob("*")):
        if path.name == "eval.json":
            found[str(path.relative_to(out))] = clean(json.loads(path.read_text()))
        elif path.suffix == ".safetensors" and "checkpoints" not in path.parts:
            found[str(path.relative_to(out))] = path.read_bytes()
    return found


def _stages(out: Path) -> dict[str, bool]:
    return {s["stage"]: s["cached"] for s in json.loads((out / "pipeline.json").read_text())["stages"]}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schedule")
    cfg = _config(tmp)
    _mint("run", str(cfg), "--out", str(tmp / "seq"), "--no-progress")
    return cfg, _outputs(tmp / "seq")


def test_jobs_give_the_sequential_outputs_and_resume(sequential, tmp_path):
    cfg, expected = sequential
    out = tmp_path / "par"
    _mint("run", str(cfg), "--out", str(out), "--jobs", "2", "--no-progress")
    found = _outputs(out)
    assert sorted(found) == sorted(expected) and any(k.endswith(".safetensors") for k in found)
    assert found == expected
    # the folder is the same cache as a sequential run's: a stage left unfinished (its done marker gone)
    # is redone with its evaluation (a new run folder), and nothing else, to the same result
    (out / ".stages" / "tune__all__seed-0.done.json").unlink()
    _mint("run", str(cfg), "--out", str(out), "--no-progress")
    assert {name for name, cached in _stages(out).items() if not cached} == {
        "tune/all/seed-0",
        "evaluate/all/seed-0",
    }
    assert _outputs(out) == expected


def test_printed_stages_run_in_order_reproduce_the_report(sequential, tmp_path):
    cfg, expected = sequential
    out = tmp_path / "stg"
    printed = _mint("run", str(cfg), "--out", str(out), "--print-stages")
    assert not out.exists()  # printing runs nothing
    commands = [line for line in printed.splitlines() if line and not line.startswith("#")]
    ids = [shlex.split(c)[-1] for c in commands]
    assert ids == ["prepare", "mint/seed-0", "all/seed-0", "report"]
    needs = re.findall(r"^# stage (\S+); needs: (.*)$", printed, re.M)
    assert needs[1] == ("mint/seed-0", "prepare") and needs[-1] == ("report", "mint/seed-0, all/seed-0")

    # a stage whose needs have not run is one error line naming the missing stage
    early = CliRunner().invoke(main, shlex.split(commands[1])[1:])
    assert early.exit_code == 2 and "stage predict has not run" in early.output
    for command in commands:
        argv = shlex.split(command)
        assert argv[:2] == ["mint", "run"]
        _mint(*argv[1:])
    assert _outputs(out) == expected


def test_unknown_stage_is_a_usage_error(sequential):
    cfg, _ = sequential
    result = CliRunner().invoke(main, ["run", str(cfg), "--stage", "mint/seed-9"])
    assert result.exit_code == 2
    assert "'mint/seed-9' is not a stage" in result.output and "prepare" in result.output
