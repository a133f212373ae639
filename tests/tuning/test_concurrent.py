"""Concurrent group adapters: a mixed batch gives every adapter the gradient of its own pass; a concurrent run
equals the sequential trainer's; it resumes exactly, refuses dropout, runs under DDP and is evaluable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from helpers_tuning import MINI, adapter_tensors, make_tasks, mini_tune
from paths import child_env

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.tuning import (
    TrainingStopped,
    TuneConfig,
    attach_adapters,
    evaluate_run,
    tune_concurrent,
    tune_groups,
)
from mint.tuning.data import collate_examples, group_examples
from mint.tuning.mixed_lora import MixedLoRA, segment_losses
from mint.tuning.trainer import answer_loss

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}  # unequal sizes: g2 drops out of the later steps
# grad accumulation, warmup, two epochs, clipping that bites, LoRA in both towers
CFG = TuneConfig(
    batch_size=2,
    grad_accum=2,
    epochs=2,
    lr=0.02,
    dropout=0.0,
    warmup_ratio=0.2,
    max_grad_norm=0.05,
    checkpoint_every=2,
    seed=3,
    tower="both",
)


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def _assert_same_adapters(a, b, groups, atol):
    for g in groups:
        ta, tb = adapter_tensors(a.model, g), adapter_tensors(b.model, g)
        assert ta.keys() == tb.keys()
        for k in ta:
            torch.testing.assert_close(tb[k], ta[k], rtol=0, atol=atol, msg=f"{g} {k}")


# ---------------------------------------------------------------------------- the core: gradients
@pytest.mark.parametrize(
    "sizes", [(3, 2, 4), (3, 3, 3)]
)  # unequal: a product per slice; equal: one batched product
def test_mixed_batch_gradients_equal_per_group_passes(llava, sizes):
    vlm = load_model(llava)
    names = ["g1", "g2", "g3"]
    model = attach_adapters(vlm, names, TuneConfig(dropout=0.0, tower="both"))
    torch.manual_seed(0)
    with torch.no_grad():  # lora_B starts at zero (then lora_A gets no gradient): make every factor non-zero
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.normal_(0, 0.2)
    model.set_requires_grad(names, True)
    model.train()
    examples = [group_examples([t])[:k] for t, k in zip(make_tasks(), sizes)]

    def grads():
        out = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad(set_to_none=True)
        return out

    # one mixed batch, one backward: the sum over groups of each group's token-normalised loss
    ends = [sum(sizes[: i + 1]) for i in range(3)]
    segments = [(g, e - k, e) for g, k, e in zip(names, sizes, ends)]
    rows = ends[-1]
    batch = collate_examples(vlm, [e for exs in examples for e in exs])
    with MixedLoRA(model, names) as mixed, mixed.route(segments):
        losses, counts = segment_losses(model, batch, segments)
    sum(loss / n for loss, n in zip(losses, counts)).backward()
    mixed_grads = grads()
    # the same samples, one group at a time through peft's own forward, each batch collated on its own
    reference, per_group_loss = {}, {}
    for g, exs in zip(names, examples):
        model.set_adapter(g)
        loss, n = answer_loss(model, collate_examples(vlm, exs))
        (loss / n).backward()
        per_group_loss[g] = float(loss.detach() / n)
        reference.update(grads())
    assert set(mixed_grads) == set(reference) and len(reference) > 0
    for g in names:
        keys = [k for k in reference if f".{g}." in k]
        assert {k.split(".")[-2] for k in keys} == {g} and any("vision_tower" in k for k in keys)
        assert all(reference[k].abs().max() > 0 for k in keys)
        for k in keys:
            torch.testing.assert_close(mixed_grads[k], reference[k], rtol=0, atol=1e-6, msg=k)
    mixed_losses = [float(x.detach() / n) for x, n in zip(losses, counts)]
    assert mixed_losses == pytest.approx(list(per_group_loss.values()), abs=1e-6)
    # routing matters: the same rows all sent to g1 give g1 other gradients
    model.set_requires_grad(names, True)
    with MixedLoRA(model, names) as mixed, mixed.route([("g1", 0, rows)]):
        loss, _ = segment_losses(model, batch, [("g1", 0, rows)])
    loss[0].backward()
    wrong = grads()
    assert any(not torch.allclose(wrong[k], reference[k], atol=1e-4) for k in reference if ".g1." in k)


# ---------------------------------------------------------------------------- whole runs
@pytest.fixture(scope="module")
def runs(llava, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    seq, con = load_model(llava), load_model(llava)
    seq_result = tune_groups(seq, make_tasks(), GROUPS, root / "seq", CFG, progress=False)
    con_result = tune_concurrent(con, make_tasks(), GROUPS, root / "con", CFG, progress=False)
    return {"seq": (seq, seq_result, root / "seq"), "con": (con, con_result, root / "con")}


def test_concurrent_run_equals_sequential(runs):
    seq, seq_result, seq_out = runs["seq"]
    con, con_result, con_out = runs["con"]
    _assert_same_adapters(seq, con, GROUPS, atol=5e-5)
    assert any(v.abs().max() > 1e-3 for k, v in adapter_tensors(con.model, "g2").items() if "lora_B" in k)
    for g in GROUPS:
        s, c = seq_result["adapters"][g], con_result["adapters"][g]
        assert (c["steps"], c["examples"], c["trainable_params"], c["tasks"]) == (
            s["steps"],
            s["examples"],
            s["trainable_params"],
            s["tasks"],
        )
    assert con_result["adapters"]["g1"]["steps"] == 2 * con_result["adapters"]["g2"]["steps"]
    key = lambda r: (r["group"], r["step"])  # noqa: E731
    seq_log, con_log = sorted(_log(seq_out), key=key), sorted(_log(con_out), key=key)
    assert [key(r) for r in con_log] == [key(r) for r in seq_log]
    for c, s in zip(con_log, seq_log):
        assert c["epoch"] == s["epoch"] and c["lr"] == pytest.approx(s["lr"], rel=1e-12)
        assert c["loss"] == pytest.approx(s["loss"], abs=1e-5)
    tune = json.loads((con_out / "tune.json").read_text())
    assert tune["concurrent"] is True and tune["config"]["concurrent"] is True and tune["schema"] == 1
    assert json.loads((con_out / "groups.json").read_text())["groups"] == GROUPS
    for g in GROUPS:
        assert (con_out / "adapters" / g / "adapter_model.safetensors").is_file()


def test_resume_equals_uninterrupted(llava, runs, tmp_path):
    full, _, full_out = runs["con"]
    out = tmp_path / "run"

    def kill(row):
        if row["step"] == 3:
            raise TrainingStopped("killed at step 3")

    with pytest.raises(TrainingStopped):
        tune_concurrent(load_model(llava), make_tasks(), GROUPS, out, CFG, progress=False, on_step=kill)
    assert not (out / "tune.json").exists() and (out / "checkpoints" / "concurrent-step-000002").is_dir()
    with pytest.raises(MintError, match="cannot resume: option lr"):
        tune_concurrent(
            load_model(llava),
            make_tasks(),
            GROUPS,
            out,
            TuneConfig(**{**CFG.to_dict(), "lr": 0.5}),
            resume=True,
            progress=False,
        )
    with pytest.raises(MintError, match="option concurrent"):  # a concurrent run is not resumed sequentially
        tune_groups(load_model(llava), make_tasks(), GROUPS, out, CFG, resume=True, progress=False)
    vlm = load_model(llava)
    tune_concurrent(vlm, make_tasks(), GROUPS, out, CFG, resume=True, progress=False)
    _assert_same_adapters(full, vlm, GROUPS, atol=1e-7)
    log, full_log = _log(out), _log(full_out)
    assert [(r["group"], r["step"]) for r in log] == [(r["group"], r["step"]) for r in full_log]
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in full_log], abs=1e-6)


def test_dropout_is_refused(llava, tmp_path):
    with pytest.raises(MintError, match="dropout: concurrent tuning trains without LoRA dropout"):
        TuneConfig(concurrent=True)  # the default dropout (0.05) is not 0
    with pytest.raises(MintError, match="without LoRA dropout"):
        tune_concurrent(
            load_model(llava), make_tasks(), GROUPS, tmp_path / "x", TuneConfig(dropout=0.1), progress=False
        )
    assert not (tmp_path / "x").exists()
    vlm = load_model(llava)
    model = attach_adapters(vlm, ["g1", "g2"], TuneConfig(dropout=0.1))
    with pytest.raises(MintError, match="needs LoRA dropout 0"):
        MixedLoRA(model, ["g1", "g2"])


def test_run_folder_is_evaluable(llava, runs):
    _, _, out = runs["con"]
    tasks = make_tasks()
    result = evaluate_run(out, tasks, vlm=load_model(llava), zero_shot=False, progress=False)
    assert {n: r["group"] for n, r in result["tasks"].items()} == {
        "color": "g1",
        "presence": "g1",
        "shape": "g2",
    }
    assert all(r["n"] == 4 for r in result["tasks"].values())
    assert result["trainable_params"] == runs["con"][1]["trainable_params"] > 0


# ---------------------------------------------------------------------------- command line
def _cli(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_cli_concurrent(llava, tmp_path):
    gfile = tmp_path / "groups.json"
    gfile.write_text(
        json.dumps(
            {
                "mint_version": "0",
                "schema": 1,
                "method": "mint",
                "params": {},
                "groups": {"first": MINI[:6], "second": MINI[6:]},
            }
        )
    )
    base = mini_tune(
        llava,
        gfile,
        "--max-train",
        2,
        "--batch-size",
        4,
        "--no-progress",
    )
    res = _cli([*base, "--out", tmp_path / "run", "--concurrent"])
    assert res.exit_code == 0, res.output
    assert "without LoRA dropout" in res.output
    tune = json.loads((tmp_path / "run" / "tune.json").read_text())
    assert tune["concurrent"] is True and tune["config"]["dropout"] == 0.0
    assert {g: a["steps"] for g, a in tune["adapters"].items()} == {"first": 3, "second": 2}
    for extra, needle in (
        (["--dropout", "0.1"], "dropout"),
        (["--continual", "sequential"], "exclude each other"),
    ):
        res = _cli([*base, "--out", tmp_path / "bad", "--concurrent", *extra])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
        assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output, res.output
        assert not (tmp_path / "bad" / "tune.json").exists()


# ---------------------------------------------------------------------------- DDP (two gloo ranks on CPU)
DDP_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    torch.set_num_threads(1)
    from helpers_tuning import adapter_tensors, make_tasks
    from safetensors.torch import save_file
    from mint.models import load_model
    from mint.tuning import TuneConfig, concurrent_accelerator, tune_concurrent

    model, out = sys.argv[1], sys.argv[2]
    cfg = TuneConfig(batch_size=1, grad_accum=2, epochs=1, lr=0.02, dropout=0.0, checkpoint_every=0, seed=1,
                     tower="both")
    acc = concurrent_accelerator(cfg, cpu=True)
    vlm = load_model(model, device=str(acc.device))
    tune_concurrent(vlm, make_tasks(), {"g1": ["color", "presence"], "g2": ["shape"]}, out, cfg, accelerator=acc,
                    progress=False)
    save_file({f"{g}/{k}": v.contiguous() for g in ("g1", "g2") for k, v in adapter_tensors(vlm.model, g).items()},
              f"{out}/rank-{acc.process_index}.safetensors")
""")


def test_ddp_two_ranks_match_one_process(llava, tmp_path):
    from safetensors.torch import load_file

    pytest.importorskip("torch.distributed.run")
    script = tmp_path / "ddp_concurrent.py"
    script.write_text(DDP_SCRIPT)
    env = child_env()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            llava,
            str(tmp_path / "ddp"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (load_file(str(tmp_path / "ddp" / f"rank-{r}.safetensors")) for r in (0, 1))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"
    vlm = load_model(llava)
    cfg = TuneConfig(
        batch_size=2, grad_accum=2, epochs=1, lr=0.02, dropout=0.0, checkpoint_every=0, seed=1, tower="both"
    )
    tune_concurrent(vlm, make_tasks(), GROUPS, tmp_path / "single", cfg, progress=False)
    for g in GROUPS:
        for k, v in adapter_tensors(vlm.model, g).items():
            torch.testing.assert_close(r0[f"{g}/{k}"], v, rtol=1e-4, atol=1e-5, msg=f"{g} {k}")


def test_adapters_in_different_towers(llava, tmp_path):
    """--tower auto: one group's LoRA in the vision tower only, the other's in the language tower only; the
    rows of each group pass the other's layers unchanged, and the run still equals the sequential one."""
    cfg = TuneConfig(**{**CFG.to_dict(), "tower": "auto", "epochs": 1, "checkpoint_every": 0})
    towers = {"g1": "vision", "g2": "language"}
    seq, con = load_model(llava), load_model(llava)
    tune_groups(seq, make_tasks(), GROUPS, tmp_path / "seq", cfg, progress=False, towers=towers)
    result = tune_concurrent(con, make_tasks(), GROUPS, tmp_path / "con", cfg, progress=False, towers=towers)
    assert result["towers"] == towers
    keys = {g: list(adapter_tensors(con.model, g)) for g in GROUPS}
    assert all("vision_tower" in k for k in keys["g1"]) and all("language_model" in k for k in keys["g2"])
    _assert_same_adapters(seq, con, GROUPS, atol=5e-5)
