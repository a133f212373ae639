"""QLoRA on CPU (bitsandbytes 4-bit NF4 layers run on CPU since 0.50): `mint tune --quantize 4bit` on `tiny`
trains, lowers the loss, saves the adapter as usual, and evaluation reloads the same quantised base."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from mint.cli import main
from mint.tuning.evaluate import evaluate_run, load_run_model, load_tune


def test_qlora_trains_lowers_the_loss_and_reloads(tmp_path):
    import bitsandbytes as bnb
    from safetensors.torch import load_file

    (tmp_path / "suite.yaml").write_text("tasks:\n  - builtin: vqa_shape\n  - builtin: digit_sum\n")
    groups = {"method": "custom", "groups": {"g": ["vqa_shape", "digit_sum"]}}
    (tmp_path / "groups.json").write_text(json.dumps(groups))
    run = tmp_path / "run"
    args = ["tune", "--suite", str(tmp_path / "suite.yaml"), "--model", "tiny", "--groups",
            str(tmp_path / "groups.json"), "--out", str(run), "--quantize", "4bit", "--max-train", "8",
            "--max-test", "4", "--batch-size", "4", "--epochs", "4", "--lr", "0.01", "--dropout", "0",
            "--checkpoint-every", "0", "--device", "cpu", "--no-progress"]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    tune = load_tune(run)
    assert tune["quantize"] == "4bit" and tune["dtype"] == "float32"
    losses = [json.loads(line)["loss"] for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 16 and sum(losses[-4:]) < 0.7 * sum(losses[:4])  # 16 examples, 4 epochs, batch 4
    saved = load_file(str(run / "adapters" / "g" / "adapter_model.safetensors"))
    assert saved and all(v.dtype == torch.float32 for v in saved.values())  # the adapter in full precision
    # evaluation loads the same 4-bit base and the adapter on it
    vlm = load_run_model(tune)
    layers = [m for m in vlm.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and layers[0].weight.quant_state.quant_type == "nf4"
    result = evaluate_run(run, progress=False, zero_shot=False)
    assert set(result["tasks"]) == {"vqa_shape", "digit_sum"} and result["mean"] is not None
