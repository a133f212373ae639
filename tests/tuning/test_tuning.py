"""Group-wise LoRA tuning: adapters isolate their groups, reload bit-identically; bad input exits 2."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from helpers_tuning import adapter_tensors, make_tasks

from mint.cli import main
from mint.models import load_model
from mint.tasks.builtin import DEFAULT_TASKS
from mint.tuning import TuneConfig, active_adapter, load_adapters, tune_groups

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
CFG = dict(batch_size=4, epochs=2, lr=0.05, dropout=0.0, checkpoint_every=0)


def _logits(vlm, tasks, adapter):
    """Logits over each task's test prompts, with ``adapter`` active (None: bare backbone)."""
    out = {}
    with torch.no_grad(), active_adapter(vlm, adapter):
        for t in tasks:
            prompts = [vlm.build_prompt(t, s) for s in t.test]
            batch = vlm.collate([p for p, _ in prompts], [i for _, i in prompts], [s.answer for s in t.test])
            batch.pop("labels")
            out[t.name] = vlm.model(**batch).logits
    return out


@pytest.fixture(scope="module")
def two_runs(llava, tmp_path_factory):
    """The same grouping tuned twice; the second run has different training answers for task 'color' (g1)."""
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    for key, flip in (("a", None), ("b", "color")):
        vlm = load_model(llava)
        tasks = make_tasks(flip=flip)
        result = tune_groups(vlm, tasks, GROUPS, root / key, TuneConfig(**CFG), progress=False)
        runs[key] = (vlm, tasks, result, root / key)
    return runs


def test_run_folder_layout(two_runs):
    _, _, result, run = two_runs["a"]
    assert set(result["adapters"]) == {"g1", "g2"}
    assert result["trainable_params"] == sum(a["trainable_params"] for a in result["adapters"].values()) > 0
    for g, a in result["adapters"].items():
        assert a["tasks"] == GROUPS[g] and a["steps"] == 2 * -(-a["examples"] // 4)
        assert (run / "adapters" / g / "adapter_config.json").is_file()
        assert (run / "adapters" / g / "adapter_model.safetensors").is_file()
    tune = json.loads((run / "tune.json").read_text())
    assert tune["schema"] == 1 and tune["seed"] == 0 and tune["config"]["lr"] == 0.05
    assert json.loads((run / "groups.json").read_text())["groups"] == GROUPS
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == sum(a["steps"] for a in result["adapters"].values())
    assert set(log[0]) >= {"step", "group", "loss", "lr", "seconds"}


def test_group_adapter_changes_only_its_tasks(two_runs):
    vlm_a, tasks, _, _ = two_runs["a"]
    vlm_b, _, _, _ = two_runs["b"]
    # g2 never saw task 'color': identical weights in both runs, g1 differs
    for k, v in adapter_tensors(vlm_a.model, "g2").items():
        assert torch.equal(v, adapter_tensors(vlm_b.model, "g2")[k]), k
    assert any(
        not torch.equal(v, adapter_tensors(vlm_b.model, "g1")[k])
        for k, v in adapter_tensors(vlm_a.model, "g1").items()
    )
    base = _logits(vlm_a, tasks, None)
    routed_a = {t.name: _logits(vlm_a, [t], "g2" if t.name == "shape" else "g1")[t.name] for t in tasks}
    routed_b = {t.name: _logits(vlm_b, [t], "g2" if t.name == "shape" else "g1")[t.name] for t in tasks}
    for name in ("color", "presence", "shape"):  # training changed every task's outputs ...
        assert not torch.allclose(routed_a[name], base[name], atol=1e-4)
    # ... but changing group g1's data changes only g1's tasks
    assert not torch.allclose(routed_a["color"], routed_b["color"], atol=1e-4)
    assert not torch.allclose(routed_a["presence"], routed_b["presence"], atol=1e-4)
    assert torch.equal(routed_a["shape"], routed_b["shape"])


def test_bare_backbone_untouched(two_runs, llava):
    vlm, tasks, _, _ = two_runs["a"]
    fresh = load_model(llava)
    for name, logits in _logits(fresh, tasks, None).items():
        assert torch.equal(logits, _logits(vlm, tasks, None)[name])


def test_training_one_group_leaves_the_others(two_runs):
    """g1 was saved when its training ended; training g2 afterwards must not have moved it."""
    from safetensors.torch import load_file

    vlm, _, _, run = two_runs["a"]
    saved = load_file(str(run / "adapters" / "g1" / "adapter_model.safetensors"))
    now = adapter_tensors(vlm.model, "g1")
    assert saved.keys() == now.keys()
    for k in saved:
        assert torch.equal(saved[k], now[k]), k


def test_adapters_reload_bit_identically(two_runs, llava):
    vlm, tasks, _, run = two_runs["a"]
    fresh = load_model(llava)
    load_adapters(fresh, run)
    for g in ("g1", "g2"):
        before, after = _logits(vlm, tasks, g), _logits(fresh, tasks, g)
        for name in before:
            assert torch.equal(before[name], after[name]), (g, name)
    # plain peft can load them too (docs/design.md: loadable with PeftModel.load_adapter)
    from peft import PeftModel

    other = load_model(llava)
    pm = PeftModel.from_pretrained(other.model, str(run / "adapters" / "g2"), adapter_name="g2")
    pm.load_adapter(str(run / "adapters" / "g1"), adapter_name="g1")
    other.model = pm
    assert torch.equal(_logits(other, tasks, "g1")["color"], _logits(vlm, tasks, "g1")["color"])


# ---------------------------------------------------------------------------- bad input through the CLI
def _cli(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _groups_file(tmp_path, groups):
    path = tmp_path / "groups.json"
    path.write_text(
        json.dumps({"mint_version": "0", "schema": 1, "method": "mint", "params": {}, "groups": groups})
    )
    return str(path)


MINI = list(DEFAULT_TASKS)  # the tasks of builtin:mini


@pytest.mark.parametrize(
    "case,needle",
    [
        ("unknown_task", "unknown task 'nope'"),
        ("missing_task", "is in no group"),
        ("unknown_key", "unknown key 'learning_rate'"),
        ("negative_lr", "lr: must be positive"),
        ("bad_tower", "tower"),
    ],
)
def test_bad_input_exits_2(tmp_path, llava, case, needle):
    groups = {"first": MINI[:5], "second": MINI[5:]}
    args = [
        "tune",
        "--suite",
        "builtin:mini",
        "--model",
        llava,
        "--max-train",
        "2",
        "--out",
        str(tmp_path / "run"),
    ]
    if case == "unknown_task":
        groups["second"] = MINI[5:] + ["nope"]
    elif case == "missing_task":
        groups["second"] = MINI[5:-1]
    elif case == "unknown_key":
        cfg = tmp_path / "tune.yaml"
        cfg.write_text("rank: 4\nlearning_rate: 0.1\n")
        args += ["--config", str(cfg)]
    elif case == "negative_lr":
        args += ["--lr", "-0.001"]
    elif case == "bad_tower":
        cfg = tmp_path / "tune.json"
        cfg.write_text(json.dumps({"tower": "projector"}))
        args += ["--config", str(cfg)]
    args += ["--groups", _groups_file(tmp_path, groups)]
    res = _cli(args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and needle in lines[0], res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "run" / "tune.json").exists()


def test_config_file_values_and_cli_priority(tmp_path):
    cfg = TuneConfig.from_dict({"rank": 4, "batch-size": 2, "lr": "5e-4", "max_train": None}, "f.yaml")
    assert (cfg.rank, cfg.batch_size, cfg.lr, cfg.max_train) == (4, 2, 5e-4, None)
    for bad, key in (
        ({"epochs": 0}, "epochs"),
        ({"dropout": 1.5}, "dropout"),
        ({"rank": "x"}, "rank"),
        ({"grad_accum": True}, "grad_accum"),
    ):
        with pytest.raises(Exception) as e:
            TuneConfig.from_dict(bad, "f.yaml")
        assert f"f.yaml: {key}" in str(e.value)


def test_groups_validation_names_the_field():
    from mint.errors import MintError
    from mint.tuning import validate_groups

    tasks = ["x", "y", "z"]
    cases = [
        ({"groups": {"g": ["x", "y"], "h": ["y", "z"]}}, "groups.h: task 'y' is also in group 'g'"),
        ({"groups": {"g": ["x", "y"], "h": []}}, "groups.h: expected a non-empty list"),
        ({"groups": {"g": ["x", "y", "z"]}, "assignment": {"x": "h"}}, "assignment.x"),
        ({"groups": {"a": ["x", "y", "z"]}}, "prefix 'lora_'"),
        ({"groups": {"my.group": ["x", "y", "z"]}}, "groups.my.group: group name"),
        ({"groups": {"g": ["x", "y", "z"]}, "schema": 2}, "schema"),
    ]
    for payload, needle in cases:
        with pytest.raises(MintError) as e:
            validate_groups(payload, "g.json", tasks)
        assert str(e.value).startswith("g.json: ") and needle in str(e.value), str(e.value)
    ok = validate_groups({"groups": {"g": ["x", "z"], "h": ["y"]}}, "g.json", tasks)
    assert ok["assignment"] == {"x": "g", "z": "g", "y": "h"} and ok["method"] == "custom"
