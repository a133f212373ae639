"""Fault injection in a tuning run's checkpoints, through ``mint tune --resume``: a planted pickle never
runs, a damaged or missing piece is one ``Error:`` line naming the file (exit 2), an intact one resumes."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_models import make_tiny_llava
from helpers_tuning import MINI, mini_tune

import mint.tuning.checkpoint as ckpt
from mint.cli import main
from mint.tuning import TrainingStopped

GROUPS = {"first": MINI[:6], "second": MINI[6:]}


def _cli(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _tune_args(model, groups, out):
    return mini_tune(
        model,
        groups,
        "--max-train",
        1,
        "--batch-size",
        4,
        "--checkpoint-every",
        1,
        "--no-progress",
        "--out",
        out,
    )


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run folder killed right after its first checkpoint (as a killed process leaves it)."""
    root = tmp_path_factory.mktemp("faults")
    model = make_tiny_llava(root / "model")
    groups = root / "groups.json"
    groups.write_text(json.dumps({"mint_version": "0", "schema": 1, "method": "mint", "groups": GROUPS}))
    out = root / "run"
    prune = ckpt.prune

    def prune_then_die(ckpt_dir, keep):
        prune(ckpt_dir, keep)
        if keep is not None:
            raise TrainingStopped("killed after the first checkpoint")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ckpt, "prune", prune_then_die)
        res = _cli(_tune_args(model, groups, out))
    assert res.exit_code == 1 and "killed after the first checkpoint" in res.output, res.output
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["checkpoint"] and not (out / "tune.json").exists()
    return model, groups, out, out / "checkpoints" / state["checkpoint"]


def _copy(killed_run, tmp_path):
    model, groups, out, folder = killed_run
    run = tmp_path / "run"
    shutil.copytree(out, run)
    return model, groups, run, run / "checkpoints" / folder.name


def _resume(model, groups, run):
    return _cli(_tune_args(model, groups, run) + ["--resume"])


def _one_error(res, *needles):
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


class _Payload:
    """Unpickling this creates a marker file: proof that code from the checkpoint ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_intact_checkpoint_resumes(killed_run, tmp_path):
    model, groups, run, _ = _copy(killed_run, tmp_path)
    old = os.umask(0o022)
    try:
        res = _resume(model, groups, run)
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert json.loads((run / "tune.json").read_text())["adapters"].keys() == GROUPS.keys()
    written = [run / "tune.json", *(run / "adapters").rglob("*")]
    modes = {str(p.relative_to(run)): stat.S_IMODE(p.stat().st_mode) for p in written}
    assert modes == {k: 0o755 if (run / k).is_dir() else 0o644 for k in modes}


def test_second_run_on_one_folder_fails(killed_run, tmp_path, monkeypatch):
    """Two runs started on one --out: the one that writes its state second fails and changes nothing."""
    import mint.tuning.trainer as trainer

    model, groups, *_ = killed_run
    out = tmp_path / "run"
    real = trainer._clear_out

    def checked_then_other_run_starts(*a, **k):
        real(*a, **k)
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "checkpoints" / "state.json").write_text('{"other": "run"}')

    monkeypatch.setattr(trainer, "_clear_out", checked_then_other_run_starts)
    _one_error(_cli(_tune_args(model, groups, out)), "state.json", "already exists")
    assert json.loads((out / "checkpoints" / "state.json").read_text()) == {"other": "run"}


def test_checkpoint_holds_no_pickle(killed_run):
    *_, folder = killed_run
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "adapter_model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "position.json",
        "rng-0.json",
        "rng-0.safetensors",
        "scheduler.json",
    ]
    for p in folder.iterdir():
        head = p.read_bytes()[:2]
        assert head != b"\x80\x04" and not head.startswith(b"PK"), p  # neither a pickle nor torch's zip


@pytest.mark.parametrize(
    "target,needle",
    [
        ("optimizer.pt", "optimizer.json"),  # an old-format file in place of the JSON one
        ("optimizer.json", "optimizer.json"),
        ("optimizer.safetensors", "optimizer.safetensors"),
        ("rng-0.json", "rng-0.json"),
        ("adapter_model.safetensors", "adapter_model.safetensors"),
    ],
)
def test_planted_pickle_never_runs(killed_run, tmp_path, target, needle):
    model, groups, run, folder = _copy(killed_run, tmp_path)
    marker = tmp_path / "pwned"
    if target.endswith(".pt"):
        (folder / target.replace(".pt", ".json")).unlink()
    (folder / target).write_bytes(pickle.dumps(_Payload(marker)))
    _one_error(_resume(model, groups, run), needle)
    assert not marker.exists()


@pytest.mark.parametrize(
    "target", ["adapter_model.safetensors", "optimizer.safetensors", "rng-0.safetensors"]
)
@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_safetensors(killed_run, tmp_path, target, damage):
    model, groups, run, folder = _copy(killed_run, tmp_path)
    data = (folder / target).read_bytes()
    (folder / target).write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    _one_error(_resume(model, groups, run), target)
    assert not (run / "tune.json").exists()


@pytest.mark.parametrize(
    "target", ["position.json", "rng-0.json", "optimizer.json", "scheduler.json", "adapter_model.safetensors"]
)
def test_missing_piece(killed_run, tmp_path, target):
    model, groups, run, folder = _copy(killed_run, tmp_path)
    (folder / target).unlink()
    _one_error(_resume(model, groups, run), target)


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda s: {**s, "checkpoint": "../../elsewhere"}, "checkpoint"),
        (lambda s: {**s, "checkpoint": 7}, "checkpoint"),
    ],
)
def test_state_points_outside(killed_run, tmp_path, edit, needle):
    model, groups, run, _ = _copy(killed_run, tmp_path)
    path = run / "checkpoints" / "state.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    _one_error(_resume(model, groups, run), "state.json", needle)


def test_malformed_structure(killed_run, tmp_path):
    model, groups, run, folder = _copy(killed_run, tmp_path)
    (folder / "optimizer.json").write_text(json.dumps({"state": 5, "param_groups": []}))
    _one_error(_resume(model, groups, run), "optimizer.json")
