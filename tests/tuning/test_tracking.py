"""Experiment tracking (--report-to): TensorBoard event files read back against train_log.jsonl; a tracker
whose package is missing is one exit-2 error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_tuning import make_tasks
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # the dev extra has it

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.tuning import TuneConfig, tune_groups
from mint.tuning.tracking import Tracking, check_report_to, log_run_evaluation

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}


def _scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_tensorboard_series_match_the_training_log(tmp_path, llava):
    run, tb = tmp_path / "run", tmp_path / "tracking"
    config = TuneConfig(batch_size=4, epochs=2, lr=0.05, dropout=0.0, checkpoint_every=0, max_grad_norm=0.5)
    with Tracking("tensorboard", tb, "mint", config.seed, config.to_dict()) as tracking:
        tune_groups(load_model(llava), make_tasks(), GROUPS, run, config, progress=False)
    assert not tracking.trackers  # every group's run was closed
    log = _log(run)
    for group in GROUPS:
        rows = [r for r in log if r["group"] == group]
        series = _scalars(tb / "mint" / group / "seed0")
        assert {
            "train/loss",
            "train/lr",
            "train/grad_norm",
            "train/samples_per_second",
            "train/epoch",
        } <= set(series)
        steps = [r["step"] for r in rows]
        for key in ("loss", "lr", "grad_norm", "epoch"):
            got = series[f"train/{key}"]
            assert [s for s, _ in got] == steps, key
            assert [v for _, v in got] == pytest.approx([r[key] for r in rows], rel=1e-6), key
        assert all(r["grad_norm"] > 0 and r["samples"] >= 1 for r in rows)
        throughput = dict(series["train/samples_per_second"])
        first = rows[0]
        assert throughput[1] == pytest.approx(first["samples"] / first["seconds"], rel=1e-5)
        assert sorted(throughput) == steps
    # nothing was tracked outside the session
    assert sorted(p.name for p in (tb / "mint").iterdir()) == sorted(GROUPS)


def test_evaluation_scores_go_to_an_eval_run(tmp_path):
    tune = {"seed": 3, "method": "mint", "tracking": {"report_to": "tensorboard", "dir": str(tmp_path)}}
    evaluation = {
        "run": "r",
        "tasks": {"a": {"score": 0.5}, "b": {"score": 1.0}},
        "zero_shot": {"tasks": {"a": {"score": 0.25}, "b": {"score": 0.0}}},
    }
    log_run_evaluation(tune, evaluation)
    series = _scalars(tmp_path / "mint" / "eval" / "seed3")
    assert series["eval/a"] == [(0, 0.5)] and series["eval/b"] == [(0, 1.0)]
    assert series["eval/mean"] == [(0, 0.75)] and series["zero_shot/a"] == [(0, 0.25)]
    log_run_evaluation({"seed": 0, "method": "all"}, evaluation)  # an untracked run logs nothing
    assert not (tmp_path / "all").exists()


def test_resumed_group_hides_the_redone_steps(tmp_path):
    """A group whose logging starts again at step k (resume, re-run) purges what was logged from k on."""
    for first, losses in ((1, [3.0, 2.0, 1.0]), (2, [5.0, 4.0])):
        with Tracking("tensorboard", tmp_path, "all", 0) as t:
            for i, loss in enumerate(losses):
                t.log_step({"group": "all", "step": first + i, "epoch": 0, "loss": loss, "lr": 0.1})
    assert _scalars(tmp_path / "all" / "all" / "seed0")["train/loss"] == [(1, 3.0), (2, 5.0), (3, 4.0)]


def test_missing_tracker_package_is_one_exit_2_error(tmp_path, llava, monkeypatch):
    import accelerate.utils

    with pytest.raises(MintError, match="expected one of none, tensorboard, wandb, mlflow"):
        check_report_to("comet")
    monkeypatch.setattr(accelerate.utils, "is_wandb_available", lambda: False)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"schema": 1, "method": "mint", "groups": {"all": ["vqa_color"]}}))
    args = ["tune", "--suite", "builtin:mini", "--model", llava, "--groups", str(groups)]
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run"), "--report-to", "wandb"])
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert errors == [
        "Error: --report-to: wandb is not installed (pip install wandb, or pip install 'mint[tracking]')"
    ]
    assert not (tmp_path / "run").exists()
    cfg = tmp_path / "tune.yaml"
    cfg.write_text("report_to: wandb\n")
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "run"), "--config", str(cfg)])
    assert res.exit_code == 2 and f"Error: {cfg}: report_to: wandb is not installed" in res.output


def test_run_config_report_to_is_checked(tmp_path):
    from mint.pipeline import load_run_config

    cfg = tmp_path / "run.yaml"
    cfg.write_text("report_to: neptune\n")
    with pytest.raises(MintError, match=r"run.yaml: report_to: expected one of none, tensorboard"):
        load_run_config(cfg)
    cfg.write_text("tune: {report_to: tensorboard}\n")
    with pytest.raises(MintError, match="tune.report_to: set it at the top level"):
        load_run_config(cfg)
    cfg.write_text("report_to: tensorboard\n")
    assert load_run_config(cfg)["report_to"] == "tensorboard"
