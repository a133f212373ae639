"""The training run object: its saved state, the one tune() entry point, and the strategies behind it."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_tuning import adapter_tensors, make_tasks

from mint.models import load_model
from mint.tuning import RunOptions, TuneConfig, tune, tune_concurrent, tune_groups
from mint.tuning import modes as modes_mod
from mint.tuning.trainer import RunState

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
CFG = dict(batch_size=4, epochs=1, lr=0.02, dropout=0.0, checkpoint_every=0, seed=1)


def test_run_state_round_trips_with_its_keys_in_place():
    saved = {
        "config": {"rank": 8},
        "groups": {"g": ["a"]},
        "meta": {"suite": "s"},
        "done": {"g": {"steps": 2}},
        "checkpoint": "g-step-000002",
        "log_lines": 2,
        "evals": {"0": {}},
        "snapshot": None,
        "complete": True,
        "mint_version": "x",
        "schema": 1,
    }
    state = RunState.from_json(saved, ["config", "groups"])
    assert state.identity == {"config": {"rank": 8}, "groups": {"g": ["a"]}}
    assert state.extra == {"evals": {"0": {}}, "snapshot": None} and state.complete
    again = state.to_json()
    assert list(again) == [k for k in saved if k not in ("mint_version", "schema")]
    assert again == {k: v for k, v in saved.items() if k not in ("mint_version", "schema")}
    state.complete = False
    assert "complete" not in state.to_json()


@pytest.mark.parametrize(
    "setting,strategy",
    [
        ({}, "run_sequential"),
        ({"concurrent": True, "dropout": 0.0}, "run_concurrent"),
        ({"continual": "sequential"}, "run_continual"),
    ],
)
def test_tune_picks_the_strategy_the_config_asks_for(monkeypatch, setting, strategy):
    called = []
    for name in ("run_sequential", "run_concurrent", "run_continual"):
        monkeypatch.setattr(modes_mod, name, lambda run, _n=name: called.append((_n, run)) or {})
    options = RunOptions(progress=False)
    config = TuneConfig(**setting)
    tune(None, make_tasks(n_train=2), GROUPS, "out", config, options)
    assert [name for name, _ in called] == [strategy]
    run = called[0][1]
    assert run.config is config and run.options is options and run.members == GROUPS


def test_tune_equals_the_public_wrappers(llava, tmp_path):
    """tune() with RunOptions trains exactly what tune_groups / tune_concurrent train with keywords."""
    tasks = make_tasks(n_train=4)
    for concurrent, wrapper in ((False, tune_groups), (True, tune_concurrent)):
        config = TuneConfig(**CFG, concurrent=concurrent)
        a, b = load_model(llava), load_model(llava)
        ra = tune(a, tasks, GROUPS, tmp_path / f"a{concurrent}", config, RunOptions(progress=False))
        rb = wrapper(b, tasks, GROUPS, tmp_path / f"b{concurrent}", config, progress=False)
        assert {g: s["final_loss"] for g, s in ra["adapters"].items()} == {
            g: s["final_loss"] for g, s in rb["adapters"].items()
        }
        for g in GROUPS:
            wa, wb = adapter_tensors(a.model, g), adapter_tensors(b.model, g)
            assert all(torch.equal(wa[k], wb[k]) for k in wa)
        state = json.loads((tmp_path / f"a{concurrent}" / "checkpoints" / "state.json").read_text())
        assert state["complete"] and set(state["done"]) == set(GROUPS) and state["checkpoint"] is None
