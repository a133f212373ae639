"""A run killed after k steps and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_tuning import adapter_tensors, make_tasks

from mint.errors import MintError
from mint.models import load_model
from mint.tuning import TrainingStopped, TuneConfig, tune_groups

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
# dropout > 0 so that the restored RNG state matters; grad accumulation and warmup exercise the scheduler
CFG = TuneConfig(
    batch_size=2, grad_accum=2, epochs=2, lr=0.02, dropout=0.2, warmup_ratio=0.2, checkpoint_every=2, seed=3
)


@pytest.fixture(scope="module")
def uninterrupted(llava, tmp_path_factory):
    vlm = load_model(llava)
    out = tmp_path_factory.mktemp("runs") / "full"
    tune_groups(vlm, make_tasks(), GROUPS, out, CFG, progress=False)
    return vlm, out


def _kill_at(group, step):
    def on_step(row):
        if row["group"] == group and row["step"] == step:
            raise TrainingStopped(f"killed at {group} step {step}")

    return on_step


def _log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("group,step", [("g1", 3), ("g2", 2)])
def test_resume_equals_uninterrupted(llava, uninterrupted, tmp_path, group, step):
    full_vlm, full_out = uninterrupted
    out = tmp_path / "run"
    with pytest.raises(TrainingStopped):
        tune_groups(
            load_model(llava), make_tasks(), GROUPS, out, CFG, progress=False, on_step=_kill_at(group, step)
        )
    assert not (out / "tune.json").exists()
    with pytest.raises(MintError, match="already holds a tuning run"):
        tune_groups(load_model(llava), make_tasks(), GROUPS, out, CFG, progress=False)
    vlm = load_model(llava)
    result = tune_groups(vlm, make_tasks(), GROUPS, out, CFG, resume=True, progress=False)
    for g in GROUPS:
        a, b = adapter_tensors(full_vlm.model, g), adapter_tensors(vlm.model, g)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=f"{g} {k}")
    full_log, log = _log(full_out), _log(out)
    assert [(r["group"], r["step"]) for r in log] == [(r["group"], r["step"]) for r in full_log]
    for r, f in zip(log, full_log):
        assert r["loss"] == pytest.approx(f["loss"], abs=1e-6) and r["lr"] == pytest.approx(f["lr"])
    assert (
        result["adapters"][group]["steps"]
        == json.loads((full_out / "tune.json").read_text())["adapters"][group]["steps"]
    )


def test_resume_refuses_other_options(llava, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingStopped):
        tune_groups(
            load_model(llava), make_tasks(), GROUPS, out, CFG, progress=False, on_step=_kill_at("g1", 2)
        )
    other = TuneConfig(**{**CFG.to_dict(), "lr": 0.5})
    with pytest.raises(MintError, match="cannot resume: option lr"):
        tune_groups(load_model(llava), make_tasks(), GROUPS, out, other, resume=True, progress=False)
    with pytest.raises(MintError, match="nothing to resume"):
        tune_groups(
            load_model(llava), make_tasks(), GROUPS, tmp_path / "empty", CFG, resume=True, progress=False
        )
