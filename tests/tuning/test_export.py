"""mint export: the bundle's adapters reload with PeftModel and answer as the run's own, its routing is the
run's, the vLLM command names every adapter, merged models equal base + adapter, and merged-run evaluates as
the `merged` row."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from helpers_models import make_tiny_llava
from helpers_tuning import make_tasks

from mint.cli import main
from mint.models import load_model
from mint.tuning import TuneConfig, active_adapter, evaluate_run, load_adapters, tune_groups
from mint.tuning.routing import Router

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = make_tiny_llava(root / "models")
    tasks = make_tasks(n_train=8, n_test=4)
    cfg = TuneConfig(batch_size=4, epochs=2, lr=0.05, dropout=0.0, checkpoint_every=0)
    tune_groups(load_model(model), tasks, GROUPS, root / "run", cfg, meta={"model": model}, progress=False)
    r = CliRunner().invoke(main, ["export", str(root / "run"), "--out", str(root / "bundle"), "--merge",
                                  "--device", "cpu"])  # fmt: skip
    assert r.exit_code == 0, r.output
    return model, tasks, root / "run", root / "bundle"


def _logits(model, vlm, task):
    prompts = [vlm.build_prompt(task, s) for s in task.test]
    batch = vlm.collate([p for p, _ in prompts], [i for _, i in prompts])
    with torch.no_grad():
        return model(**batch).logits


def test_bundle_reloads_and_routes_as_the_run(bundle):
    from peft import PeftModel

    model, tasks, run, out = bundle
    routing = json.loads((out / "routing.json").read_text())
    assert routing["routing"] == Router(run).assignment
    assert set(routing["adapters"]) == set(GROUPS) and all(
        a["language_model_only"] and a["rank"] == 8 for a in routing["adapters"].values()
    )
    cmd = " ".join(routing["vllm_command"])
    assert "--enable-lora --lora-modules g1=adapters/g1 g2=adapters/g2 --max-lora-rank 8" in cmd
    assert "language model only" in (out / "SERVING.md").read_text()
    # the run's own adapters against the bundle's, loaded with plain peft
    ref = load_model(model)
    load_adapters(ref, run)
    vlm = load_model(model)
    peft_model = PeftModel.from_pretrained(vlm.model, str(out / "adapters" / "g1"), adapter_name="g1")
    peft_model.load_adapter(str(out / "adapters" / "g2"), adapter_name="g2")
    for task in tasks:
        adapter = routing["routing"][task.name]
        peft_model.set_adapter(adapter)
        with active_adapter(ref, adapter):
            torch.testing.assert_close(_logits(peft_model, vlm, task), _logits(ref.model, ref, task))
    # a merged model is the backbone with its adapter folded in
    from transformers import AutoModelForImageTextToText

    merged = AutoModelForImageTextToText.from_pretrained(str(out / "merged" / "g2"), local_files_only=True)
    peft_model.set_adapter("g2")
    shape = tasks[2]
    torch.testing.assert_close(
        _logits(merged, vlm, shape), _logits(peft_model, vlm, shape), rtol=1e-4, atol=1e-4
    )


def test_merged_run_is_the_merged_row(bundle):
    model, tasks, run, out = bundle
    merged = out / "merged-run"
    tune = json.loads((merged / "tune.json").read_text())
    group_params = json.loads((run / "tune.json").read_text())["trainable_params"]
    assert tune["method"] == "merged" and tune["trainable_params"] == group_params  # cat: ranks add up
    result = evaluate_run(merged, tasks, vlm=load_model(model), zero_shot=False, progress=False)
    assert result["method"] == "merged" and {v["group"] for v in result["tasks"].values()} == {"merged"}
    r = CliRunner().invoke(main, ["export", str(run), "--out", str(out)])
    assert r.exit_code == 2 and "already exists" in r.output
