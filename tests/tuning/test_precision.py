"""The precision policy (mint.tuning.precision): defaults, refused combinations, and non-finite steps that
are skipped, reported, and stop a run that keeps producing them."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_tuning import adapter_tensors, make_tasks

from mint.errors import MintError
from mint.models import load_model
from mint.tuning import TuneConfig, tune_groups
from mint.tuning import concurrent as concurrent_mod
from mint.tuning import trainer as trainer_mod
from mint.tuning.concurrent import tune_concurrent
from mint.tuning.precision import NONFINITE_LIMIT, training_precision

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
CFG = dict(batch_size=4, epochs=1, lr=0.05, dropout=0.0, checkpoint_every=0)


def test_defaults_and_refused_combinations(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert training_precision(None, "cpu").to_dict() == {"dtype": "float32", "mixed_precision": "no"}
    monkeypatch.setattr("mint.tuning.precision._bf16_supported", lambda kind: kind == "cuda")
    assert training_precision(None, "cuda").dtype == "bfloat16"  # bf16 by default on a GPU that has it
    fp16 = training_precision("float16", "cuda")
    assert fp16.mixed_precision == "fp16" and fp16.loss_scaling  # fp16 weights: always with the GradScaler
    assert training_precision("float32", "cuda", "fp16").loss_scaling  # classic AMP over float32 weights
    assert training_precision("bfloat16", "cpu", "bf16").mixed_precision == "bf16"
    with pytest.raises(MintError, match="float16 trains only with loss scaling"):
        training_precision("float16", "cpu")
    with pytest.raises(MintError, match="float16 conflicts with bf16 mixed precision"):
        training_precision("float16", "cuda", "bf16")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what accelerate launch --mixed_precision sets
    with pytest.raises(MintError, match="float16 conflicts with bf16"):
        training_precision("float16", "cuda")
    with pytest.raises(MintError, match="bfloat16 conflicts with fp16"):
        training_precision("bfloat16", "cuda", "fp16")
    with pytest.raises(MintError, match="auto could silently be float16"):
        training_precision("auto", "cuda", "no")
    with pytest.raises(MintError, match="'fp8' is not supported"):
        training_precision("float32", "cuda", "fp8")


def _poison(monkeypatch, module, name, bad_calls):
    """Make the loss of the listed calls (0-based) of ``module.name`` NaN."""
    real = getattr(module, name)
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        i = calls["n"]
        calls["n"] += 1
        if bad_calls == "all" or i in bad_calls:
            loss = out[0]
            nan = torch.tensor(float("nan"))
            loss = [x * nan for x in loss] if isinstance(loss, list) else loss * nan
            return (loss, *out[1:])
        return out

    monkeypatch.setattr(module, name, wrapped)


def test_a_nonfinite_step_is_skipped_and_reported(llava, tmp_path, monkeypatch):
    # g1: 16 examples, batch 4 -> 4 steps (one micro-batch each); the second step's loss is NaN
    _poison(monkeypatch, trainer_mod, "answer_loss", {1})
    vlm = load_model(llava)
    seen = []
    result = tune_groups(
        vlm,
        [t for t in make_tasks() if t.name in GROUPS["g1"]],
        {"g1": GROUPS["g1"]},
        tmp_path / "run",
        TuneConfig(**CFG),
        progress=False,
        on_step=lambda row: seen.append(adapter_tensors(vlm.model, "g1")),
    )
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r.get("skipped", False) for r in log] == [False, True, False, False]
    assert result["adapters"]["g1"]["nonfinite_steps"] == 1
    assert all(torch.equal(seen[0][k], seen[1][k]) for k in seen[0])  # the NaN step changed nothing
    assert log[0]["lr"] == log[1]["lr"] != log[2]["lr"]  # nor the learning-rate schedule
    for weights in seen:
        assert all(v.isfinite().all() for v in weights.values())


def test_a_run_that_keeps_producing_nonfinite_steps_stops(llava, tmp_path, monkeypatch):
    _poison(monkeypatch, trainer_mod, "answer_loss", "all")
    tasks = [t for t in make_tasks(n_train=4 * NONFINITE_LIMIT) if t.name == "shape"]
    with pytest.raises(MintError, match=f"{NONFINITE_LIMIT} optimizer steps in a row"):
        tune_groups(
            load_model(llava), tasks, {"g2": ["shape"]}, tmp_path / "run", TuneConfig(**CFG), progress=False
        )
    assert not (tmp_path / "run" / "adapters" / "g2").exists()  # nothing NaN is saved


def test_concurrent_skips_nonfinite_steps(llava, tmp_path, monkeypatch):
    _poison(monkeypatch, concurrent_mod, "segment_losses", {0})
    result = tune_concurrent(
        load_model(llava), make_tasks(), GROUPS, tmp_path / "run", TuneConfig(**CFG), progress=False
    )
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["concurrent_step"] for r in log if r.get("skipped")] == [1, 1]  # both groups' first step
    assert result["adapters"]["g1"]["nonfinite_steps"] == 1
