"""Continual tuning: metric maths by hand, the stage x task matrix, shared vs per-group adapters, exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from helpers_tuning import (
    MINI,
    adapter_tensors,
    make_tasks,
    mini_groups_file,
    mini_tune,
    tune_on_two_ranks_and_one,
)
from peft import PeftModel

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.tuning import TrainingStopped, TuneConfig, active_adapter, evaluate_run
from mint.tuning import continual as continual_mod
from mint.tuning.continual import SHARED, stage_order, tune_continual
from mint.tuning.continual_metrics import continual_metrics

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
# dropout > 0 so that restored RNG states matter; checkpoints inside each stage
CFG = dict(batch_size=2, epochs=2, lr=0.05, dropout=0.2, checkpoint_every=3, seed=1)


# ---------------------------------------------------------------------------- metric maths
def test_metrics_hand_computed_3x3():
    a = [[0.8, None, None], [0.6, 0.9, None], [0.5, 0.7, 0.95]]
    m = continual_metrics(a, [0, 1, 2])
    assert m["fine_tune_accuracy"] == pytest.approx((0.8 + 0.9 + 0.95) / 3)
    assert m["final_accuracy"] == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert m["average_accuracy"] == pytest.approx((0.8 + 0.75 + 2.15 / 3) / 3)
    assert m["backward_transfer"] == pytest.approx(-0.25)
    assert m["forgetting"] == pytest.approx(0.25)
    # task 0 peaks at stage 1, task 1 ends above its fine-tune accuracy: BWT and forgetting part ways
    b = [[0.6, None, None], [0.8, 0.9, None], [0.5, 0.95, 0.7]]
    m = continual_metrics(b, [0, 1, 2])
    assert m["fine_tune_accuracy"] == pytest.approx(2.2 / 3)
    assert m["final_accuracy"] == pytest.approx(2.15 / 3)
    assert m["average_accuracy"] == pytest.approx((0.6 + 0.85 + 2.15 / 3) / 3)
    assert m["backward_transfer"] == pytest.approx(((0.5 - 0.6) + (0.95 - 0.9)) / 2)
    assert m["forgetting"] == pytest.approx(((0.8 - 0.5) + (0.9 - 0.95)) / 2)


def test_metrics_with_groups_as_stages():
    # tasks 0 and 1 trained in stage 0, task 2 in stage 1
    m = continual_metrics([[1.0, 0.5, None], [0.5, 0.25, 0.75]], [0, 0, 1])
    assert m["fine_tune_accuracy"] == pytest.approx((1.0 + 0.5 + 0.75) / 3)
    assert m["final_accuracy"] == pytest.approx(0.5)
    assert m["average_accuracy"] == pytest.approx((0.75 + 0.5) / 2)
    assert m["backward_transfer"] == pytest.approx(((0.5 - 1.0) + (0.25 - 0.5)) / 2)
    assert m["forgetting"] == pytest.approx(0.375)
    one = continual_metrics([[0.5, 1.0]], [0, 0])
    assert one["backward_transfer"] is None and one["forgetting"] is None and one["final_accuracy"] == 0.75
    with pytest.raises(MintError, match="unseen"):
        continual_metrics([[1.0, 0.5], [0.5, 0.25]], [0, 1])
    with pytest.raises(MintError, match="seen task"):
        continual_metrics([[1.0, None], [None, 0.25]], [0, 1])


def test_stage_order():
    groups = {"a1": ["x"], "b2": ["y"], "c3": ["z"]}
    assert stage_order(groups) == ["a1", "b2", "c3"]
    assert stage_order(groups, "c3, a1,b2") == ["c3", "a1", "b2"]
    for bad, needle in (("c3,a1", "missing"), ("c3,a1,b2,a1", "twice"), ("c3,a1,zz", "unknown group 'zz'")):
        with pytest.raises(MintError, match=needle):
            stage_order(groups, bad)


# ---------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def full_runs(llava, tmp_path_factory):
    """Uninterrupted continual runs, one per mode."""
    root = tmp_path_factory.mktemp("continual")
    out = {}
    for mode in ("sequential", "per-group"):
        vlm = load_model(llava)
        result = tune_continual(
            vlm, make_tasks(), GROUPS, root / mode, TuneConfig(**CFG, continual=mode), progress=False
        )
        out[mode] = (vlm, root / mode, result)
    return out


def _read(path):
    return json.loads(path.read_text())


def _logits(vlm, task, adapter):
    with torch.no_grad(), active_adapter(vlm, adapter):
        prompts = [vlm.build_prompt(task, s) for s in task.test]
        batch = vlm.collate([p for p, _ in prompts], [i for _, i in prompts], [s.answer for s in task.test])
        batch.pop("labels")
        return vlm.model(**batch).logits


@pytest.mark.parametrize("mode", ["sequential", "per-group"])
def test_matrix_shape_nulls_and_metrics(full_runs, llava, mode):
    vlm, run, result = full_runs[mode]
    cont = _read(run / "continual.json")
    assert cont["schema"] == 1 and cont["complete"] and cont["mode"] == mode
    assert cont["stages"] == ["g1", "g2"] and cont["tasks"] == ["color", "presence", "shape"]
    a = cont["matrix"]
    assert len(a) == 2 and all(len(row) == 3 for row in a)
    assert a[0][2] is None and all(v is not None for v in a[0][:2] + a[1])
    assert all(0.0 <= v <= 1.0 for row in a for v in row if v is not None)
    assert cont["metrics"] == pytest.approx(continual_metrics(a, [0, 0, 1]))
    assert cont["metrics"]["fine_tune_accuracy"] == pytest.approx((a[0][0] + a[0][1] + a[1][2]) / 3)
    assert cont["metrics"]["final_accuracy"] == pytest.approx(sum(a[1]) / 3)
    assert result["continual"]["metrics"] == cont["metrics"] and result["continual"]["mode"] == mode
    # the last row is what mint evaluate gets from the saved adapters, routed by the run itself
    ev = evaluate_run(run, make_tasks(), vlm=load_model(llava), zero_shot=False, progress=False)
    assert [ev["tasks"][t]["score"] for t in cont["tasks"]] == pytest.approx(a[1])
    assert ev["continual"] == mode


def _stopped_after_stage1(llava, tmp_path, mode: str, adapter: str):
    """A ``mode`` run stopped right after stage 1, and a fresh backbone with the ``adapter`` its adapters/ folder
    then holds (as stage 1 left it); returns (that model, the run folder)."""
    out = tmp_path / "stopped"
    with pytest.raises(TrainingStopped):
        tune_continual(
            load_model(llava),
            make_tasks(),
            GROUPS,
            out,
            TuneConfig(**CFG, continual=mode),
            progress=False,
            on_step=_kill_at("g2", 1),
        )
    after1 = load_model(llava)
    after1.model = PeftModel.from_pretrained(
        after1.model, str(out / "adapters" / adapter), adapter_name=adapter
    )
    return after1, out


def test_sequential_shares_one_adapter(full_runs, llava, tmp_path):
    vlm, run, result = full_runs["sequential"]
    assert sorted(p.name for p in (run / "adapters").iterdir()) == [SHARED]
    assert set(result["routing"].values()) == {SHARED} and list(result["adapters"]) == [SHARED]
    assert result["trainable_params"] == result["adapters"][SHARED]["trainable_params"]
    after1, out = _stopped_after_stage1(llava, tmp_path, "sequential", SHARED)
    color = make_tasks()[0]
    assert not torch.allclose(_logits(after1, color, SHARED), _logits(vlm, color, SHARED), atol=1e-5)
    cont = _read(out / "continual.json")
    assert not cont["complete"] and len(cont["matrix"]) == 1 and cont["metrics"] is None


def test_per_group_leaves_earlier_stages(full_runs, llava, tmp_path):
    vlm, run, result = full_runs["per-group"]
    assert sorted(p.name for p in (run / "adapters").iterdir()) == ["g1", "g2"]
    a = _read(run / "continual.json")["matrix"]
    assert a[1][:2] == a[0][:2]  # stage-1 tasks answered by their own, untouched adapter
    after1, _ = _stopped_after_stage1(llava, tmp_path, "per-group", "g1")
    color = make_tasks()[0]
    torch.testing.assert_close(_logits(after1, color, "g1"), _logits(vlm, color, "g1"), rtol=0, atol=1e-6)


def _kill_at(group, step):
    def on_step(row):
        if row["group"] == group and row["step"] == step:
            raise TrainingStopped(f"killed at {group} step {step}")

    return on_step


@pytest.mark.parametrize(
    "mode,group,step", [("sequential", "g1", 4), ("sequential", "g2", 1), ("per-group", "g2", 5)]
)
def test_resume_equals_uninterrupted(full_runs, llava, tmp_path, monkeypatch, mode, group, step):
    full_vlm, full_run, _ = full_runs[mode]
    out = tmp_path / "run"
    cfg = TuneConfig(**CFG, continual=mode)
    with pytest.raises(TrainingStopped):
        tune_continual(
            load_model(llava), make_tasks(), GROUPS, out, cfg, progress=False, on_step=_kill_at(group, step)
        )
    evaluated = []
    real = continual_mod.evaluate_seen

    def counting(vlm, seen, *args, **kwargs):
        evaluated.append([t.name for t, _ in seen])
        return real(vlm, seen, *args, **kwargs)

    monkeypatch.setattr(continual_mod, "evaluate_seen", counting)
    vlm = load_model(llava)
    tune_continual(vlm, make_tasks(), GROUPS, out, cfg, resume=True, progress=False)
    # stages evaluated before the kill are not evaluated again
    assert evaluated == ([["color", "presence"]] if group == "g1" else []) + [["color", "presence", "shape"]]
    for name in [SHARED] if mode == "sequential" else ["g1", "g2"]:
        a, b = adapter_tensors(full_vlm.model, name), adapter_tensors(vlm.model, name)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=f"{name} {k}")
    full, resumed = _read(full_run / "continual.json"), _read(out / "continual.json")
    assert resumed["matrix"] == full["matrix"] and resumed["metrics"] == pytest.approx(full["metrics"])
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    full_log = [json.loads(x) for x in (full_run / "train_log.jsonl").read_text().splitlines()]
    assert [(r["group"], r["step"]) for r in log] == [(r["group"], r["step"]) for r in full_log]
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in full_log], abs=1e-6)
    assert not list((out / "checkpoints").glob("*.safetensors"))[1:]  # at most one snapshot kept


# ---------------------------------------------------------------------------- command line


def _cli(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_sequential_run_then_evaluate_report(llava, tmp_path):
    run = tmp_path / "run"
    base = mini_tune(
        llava,
        mini_groups_file(tmp_path),
        "--out",
        run,
        "--max-train",
        2,
        "--max-test",
        2,
        "--batch-size",
        4,
        "--no-progress",
    )
    res = _cli(base + ["--continual", "sequential", "--stage-order", "second,first"])
    assert res.exit_code == 0, res.output
    assert "continual (sequential), 2 stages, 1 adapter(s)" in res.output
    cont = _read(run / "continual.json")
    assert cont["stages"] == ["second", "first"] and cont["tasks"][:4] == MINI[6:]
    assert [sum(v is None for v in row) for row in cont["matrix"]] == [6, 0]
    assert set(cont["n"].values()) == {2}
    res = _cli(["evaluate", run, "--out", tmp_path / "report" / "report.json", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = _read(tmp_path / "report" / "report.json")
    assert list(report["rows"]) == ["zero_shot", "mint"]
    assert [report["rows"]["mint"]["tasks"][t] for t in cont["tasks"]] == pytest.approx(cont["matrix"][-1])
    assert _read(run / "eval.json")["continual"] == "sequential"
    # resuming a finished run changes nothing
    res = _cli(["tune", "--out", run, "--resume", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert _read(run / "continual.json") == cont


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--continual", "per-group", "--stage-order", "first,nope"], "unknown group 'nope'"),
        (["--stage-order", "first,second"], "stage_order: only applies to a continual run"),
        (["--continual", "sideways"], "sideways"),
    ],
)
def test_cli_bad_continual_options_exit_2(llava, tmp_path, extra, needle):
    res = _cli(
        mini_tune(
            llava,
            mini_groups_file(tmp_path),
            "--out",
            tmp_path / "run",
            "--max-train",
            2,
            *extra,
        )
    )
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert not (tmp_path / "run" / "tune.json").exists()


def test_continual_and_concurrent_exclude_each_other(llava, tmp_path):
    from mint.cli.tune_cmd import command

    if not any(p.name == "concurrent" for p in command.params):
        pytest.skip("mint tune has no --concurrent option yet")
    res = _cli(
        mini_tune(
            llava,
            mini_groups_file(tmp_path),
            "--out",
            tmp_path / "run",
            "--continual",
            "sequential",
            "--concurrent",
        )
    )
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "--continual" in lines[0] and "--concurrent" in lines[0], res.output


def test_two_ranks_match_one_process(llava, tmp_path):
    """torchrun, 2 CPU ranks (gloo): the per-stage evaluation shared out among the ranks; same adapter and
    matrix as one process with the same global batch."""

    from safetensors.torch import load_file

    pytest.importorskip("torch.distributed.run")
    options = ["--max-train", 2, "--max-test", 2, "--seed", 0, "--dropout", 0, "--lr", 0.05]
    common = mini_tune(
        llava, mini_groups_file(tmp_path), *options, "--continual", "sequential", "--no-progress"
    )
    ddp_dir, one_dir = tune_on_two_ranks_and_one(tmp_path, common[1:])
    ddp, one = _read(ddp_dir / "continual.json"), _read(one_dir / "continual.json")
    assert _read(ddp_dir / "tune.json")["processes"] == 2
    assert ddp["matrix"] == one["matrix"] and ddp["complete"]
    a = load_file(str(ddp_dir / "adapters" / SHARED / "adapter_model.safetensors"))
    b = load_file(str(one_dir / "adapters" / SHARED / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and any(v.abs().max() > 0 for k, v in b.items() if "lora_B" in k)
    for k in a:  # float noise of the split batches, amplified by Adam; drifting ranks would be far off
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4, msg=k)
