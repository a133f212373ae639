"""Continual methods (replay, o-lora, reglora): each method's defining property, the run outputs that mint evaluate
reads, and resume equal to an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from helpers_tuning import (
    adapter_tensors,
    make_tasks,
    mini_groups_file,
    mini_tune,
    tune_on_two_ranks_and_one,
)

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.tuning import TrainingStopped, TuneConfig, evaluate_run
from mint.tuning import continual as continual_mod
from mint.tuning.continual import tune_continual
from mint.tuning.continual_methods import get_method, resolve_params
from mint.tuning.continual_methods.o_lora import l2_penalty, orthogonality_penalty
from mint.tuning.continual_methods.reglora import key_elements, key_penalty
from mint.tuning.continual_methods.replay import buffer_order, replay_quotas
from mint.tuning.continual_methods.stacked import combined_state
from mint.tuning.data import step_plan

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}
CFG = dict(batch_size=2, epochs=2, lr=0.05, dropout=0.2, checkpoint_every=3, seed=1)
METHODS = {
    "replay": {"fraction": 0.5},
    "o-lora": {"lambda_orth": 0.5, "lambda_l2": 0.01},
    "reglora": {"top": 0.05, "weight": 100.0},
    "moe-lora": {"experts": 2},
    "mr-lora": {"samples": 8},
}


# ---------------------------------------------------------------------------- parameters
def test_params_defaults_and_errors():
    assert resolve_params("replay", None) == {"fraction": 0.2, "size": None}
    assert resolve_params("o-lora", {"lambda-orth": "1"}) == {"lambda_orth": 1.0, "lambda_l2": 0.0}
    assert resolve_params("reglora", {}) == {"top": 0.02, "weight": 2500.0}
    for method, params, needle in (
        ("replay", {"size": 2, "fraction": 0.1}, "not both"),
        ("replay", {"size": 0}, "size: must be at least 1"),
        ("o-lora", {"lambda_orth": -1}, "must not be negative"),
        ("reglora", {"top": 2}, r"top: must be in \(0, 1\]"),
        ("o-lora", {"rank": 2}, "unknown key 'rank' for o-lora"),
        ("per-group", {"size": 2}, "takes no parameters"),
        ("replay", {"size": "many"}, "expected an integer"),
    ):
        with pytest.raises(MintError, match=needle):
            resolve_params(method, params)
    with pytest.raises(MintError, match="continual_params: only applies to a continual run"):
        TuneConfig(continual_params={"size": 2})


# ---------------------------------------------------------------------------- replay
def test_replay_mixes_earlier_samples_at_the_set_ratio():
    tasks = {t.name: t for t in make_tasks(n_train=8)}
    own = {"a": ["color"], "b": ["presence"], "c": ["shape"]}

    def examples_of(g):
        from mint.tuning.data import group_examples

        return group_examples([tasks[t] for t in own[g]])

    method = get_method("replay", {"fraction": 0.5})
    first, extra = method.stage_examples(0, ["a", "b", "c"], examples_of, seed=3)
    assert len(first) == 8 and extra == {"replayed": 0}
    examples, extra = method.stage_examples(2, ["a", "b", "c"], examples_of, seed=3)
    assert len(examples) == 12 and extra == {"replayed": 4, "replayed_from": {"a": 2, "b": 2}}
    replayed = examples[8:]
    assert [e.task.name for e in examples[:8]] == ["shape"] * 8
    assert [e.task.name for e in replayed] == ["color", "color", "presence", "presence"]
    # each share is the head of its stage's fixed, seeded buffer
    assert [e.sample.id for e in replayed[:2]] == [f"color-{i}" for i in buffer_order(8, 3, "a")[:2]]
    again, _ = method.stage_examples(2, ["a", "b", "c"], examples_of, seed=3)
    assert [e.sample.id for e in again] == [e.sample.id for e in examples]
    other, _ = method.stage_examples(2, ["a", "b", "c"], examples_of, seed=4)
    assert [e.sample.id for e in other[8:]] != [e.sample.id for e in replayed]
    # the stage's batches hold the earlier stages' samples at the set ratio (4 replayed per 8 own)
    plan = [i for step in step_plan(examples, 3, 1, 1, 0, "c", 0) for batch in step for i in batch]
    assert sorted(plan) == list(range(12))
    assert sum(examples[i].task.name != "shape" for i in plan) / sum(
        examples[i].task.name == "shape" for i in plan
    ) == pytest.approx(0.5)
    sized, extra = get_method("replay", {"size": 5}).stage_examples(2, ["a", "b", "c"], examples_of, seed=3)
    assert len(sized) == 13 and extra["replayed_from"] == {"a": 3, "b": 2}
    assert replay_quotas(7, 3) == [3, 2, 2] and replay_quotas(1, 2) == [1, 0]


# ---------------------------------------------------------------------------- o-lora
def test_o_lora_penalty_zero_for_orthogonal_subspaces_and_pushes_overlap_apart():
    eye = torch.eye(6)
    old, new = eye[:2].clone(), eye[2:4].clone()  # rank-2 row spaces, orthogonal
    assert orthogonality_penalty([(old, new)]).item() == 0.0
    assert l2_penalty([torch.ones(2, 2)]).item() == pytest.approx(2.0)
    torch.manual_seed(0)
    new = (eye[2:4] + 0.5 * torch.randn(2, 6)).requires_grad_()
    before = orthogonality_penalty([(old, new)])
    assert before.item() > 0
    before.backward()
    moved = (new - 0.05 * new.grad).detach()
    assert orthogonality_penalty([(old, moved)]).item() < before.item()
    assert old.grad is None  # the earlier subspace is not moved


# ---------------------------------------------------------------------------- reglora
def test_reglora_key_elements_and_penalty():
    delta = torch.tensor([[0.1, -5.0, 0.2], [3.0, 0.0, -0.3]])
    assert sorted(key_elements(delta, 2 / 6).tolist()) == [1, 3]
    assert key_elements(delta, 1e-9).tolist() == [1]  # at least one element
    idx = torch.tensor([1, 3])
    a = torch.tensor([[1.0, 0.0, 0.0]])  # B A is non-zero in column 0 only: elements 0 and 3
    b = torch.tensor([[0.0], [2.0]]).requires_grad_()
    pen = key_penalty([(a, b, idx)])
    assert pen.item() == pytest.approx(1.0)  # mean of |0| and |2|
    pen.backward()
    assert b.grad[1, 0] > 0  # pushes the update off the key element
    off = key_penalty([(a, torch.tensor([[1.0], [0.0]]), idx)])
    assert off.item() == 0.0  # an update away from the key elements costs nothing


# ---------------------------------------------------------------------------- stacked adapters
def test_combined_adapter_equals_the_sum(llava, tmp_path):
    from peft import LoraConfig, get_peft_model

    from mint.tuning.continual_methods.stacked import write_combined
    from mint.tuning.targets import lora_targets

    vlm = load_model(llava)
    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=lora_targets(vlm.model), lora_dropout=0.0)
    torch.manual_seed(0)
    model = get_peft_model(vlm.model, cfg, adapter_name="s1")
    model.add_adapter("s2", cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()
    weights, fields = combined_state(model, ["s1", "s2"])
    assert fields["r"] == 4 and fields["lora_alpha"] == 8
    write_combined(model, ["s1", "s2"], tmp_path / "sum")
    model.load_adapter(str(tmp_path / "sum"), adapter_name="sum")
    task = make_tasks()[0]
    vlm.model = model
    prompt, images = vlm.build_prompt(task, task.test[0])
    batch = vlm.collate([prompt], [images], [task.test[0].answer])
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        model.base_model.set_adapter(["s1", "s2"])
        both = model(**batch).logits
        model.set_adapter("sum")
        summed = model(**batch).logits
        model.set_adapter("s1")
        one = model(**batch).logits
    torch.testing.assert_close(summed, both, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(one, both, atol=1e-4)


# ---------------------------------------------------------------------------- moe-lora
def test_moe_router_weights_sum_to_one_and_every_expert_learns(llava):
    from peft import LoraConfig, get_peft_model

    from mint.tuning.continual_methods.moe_lora import attach_router, router_weights
    from mint.tuning.continual_methods.stacked import lora_layers
    from mint.tuning.targets import lora_targets

    rank, experts = 4, 2
    vlm = load_model(llava)
    cfg = LoraConfig(r=rank + experts, lora_alpha=6, target_modules=lora_targets(vlm.model), lora_dropout=0.0)
    torch.manual_seed(0)
    model = get_peft_model(vlm.model, cfg, adapter_name="moe-lora")
    assert (
        attach_router(model, "moe-lora", rank, experts) == attach_router(model, "moe-lora", rank, experts) > 0
    )
    name, layer = lora_layers(model)[0]
    with torch.no_grad():
        layer.lora_B["moe-lora"].weight[:, :rank].normal_()
    x = torch.randn(2, 3, layer.in_features)
    g = router_weights(layer, "moe-lora", x, rank)
    assert g.shape == (2, 3, experts) and torch.allclose(g.sum(-1), torch.ones(2, 3))
    # the layer's update is sum_i g_i B_i A_i x * alpha / rank (alpha scaled by (rank + experts) / rank)
    a, b = layer.lora_A["moe-lora"].weight, layer.lora_B["moe-lora"].weight
    manual = sum(
        g[..., i : i + 1] * (x @ a[2 * i : 2 * i + 2].T @ b[:, 2 * i : 2 * i + 2].T) * (6 / (rank + experts))
        for i in range(experts)
    )
    with torch.no_grad():
        torch.testing.assert_close(layer(x) - layer.base_layer(x), manual, rtol=1e-4, atol=1e-5)
    # one backward pass: every expert's A and B blocks and the router receive gradients, the router's B columns none
    task = make_tasks()[0]
    vlm.model = model
    prompt, images = vlm.build_prompt(task, task.test[0])
    batch = vlm.collate([prompt], [images], [task.test[0].answer])
    from mint.tuning.trainer import answer_loss

    model.train()
    loss, _ = answer_loss(model, batch)
    loss.backward()
    for _, lay in lora_layers(model):
        ga, gb = lay.lora_A["moe-lora"].weight.grad, lay.lora_B["moe-lora"].weight.grad
        if lay is layer:
            assert all(ga[2 * i : 2 * i + 2].abs().sum() > 0 for i in range(experts))
            assert ga[rank:].abs().sum() > 0  # the router
        assert all(gb[:, 2 * i : 2 * i + 2].abs().sum() > 0 for i in range(experts))
        assert gb[:, rank:].abs().sum() == 0


def test_moe_lora_rank_must_split_over_experts(llava, tmp_path):
    with pytest.raises(MintError, match="rank 8 must be a multiple of experts 3"):
        tune_continual(
            load_model(llava),
            make_tasks(),
            GROUPS,
            tmp_path / "run",
            TuneConfig(**CFG, continual="moe-lora", continual_params={"experts": 3}),
            progress=False,
        )


# ---------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def full_runs(llava, tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    out = {}
    for name, params in METHODS.items():
        vlm = load_model(llava)
        cfg = TuneConfig(**CFG, continual=name, continual_params=params)
        out[name] = (
            vlm,
            root / name,
            tune_continual(vlm, make_tasks(), GROUPS, root / name, cfg, progress=False),
        )
    return out


def _read(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", list(METHODS))
def test_run_outputs_work_with_mint_evaluate(full_runs, llava, name):
    vlm, run, result = full_runs[name]
    cont = _read(run / "continual.json")
    assert cont["complete"] and cont["mode"] == name and cont["params"] == result["continual"]["params"]
    assert len(cont["matrix"]) == 2 and cont["matrix"][0][2] is None and cont["metrics"] is not None
    routed = set(result["routing"].values())
    assert routed == {name} and (run / "adapters" / name / "adapter_model.safetensors").is_file()
    assert not list(run.rglob("*.bin")) and not list(run.rglob("*.pt"))
    ev = evaluate_run(run, make_tasks(), vlm=load_model(llava), zero_shot=False, progress=False)
    assert [ev["tasks"][t]["score"] for t in cont["tasks"]] == pytest.approx(cont["matrix"][1])
    assert ev["continual"] == name


def test_moe_lora_run_saves_a_plain_adapter_with_its_router(full_runs):
    _, run, result = full_runs["moe-lora"]
    assert list(result["adapters"]) == ["moe-lora"]
    assert _read(run / "adapters" / "moe-lora" / "moe.json")["experts"] == 2
    assert _read(run / "adapters" / "moe-lora" / "adapter_config.json")["r"] == 10  # rank 8 + 2 router rows


def test_mr_lora_router_sends_stage_specific_samples_to_their_stage(full_runs, llava, tmp_path):
    """Planted stage-specific samples: stage 1 holds the colour tasks, stage 2 the digit task; the router,
    trained on a few samples of each (shipped tiny backbone), sends every test sample to its own stage's expert,
    which answers it; mint evaluate loads the router and the experts it names from the run folder."""
    from mint.tasks import load_suite
    from mint.tuning.continual_methods.mr_lora import ROUTER, predict_routed
    from mint.tuning.routing import active_adapter, load_adapters

    _, run, result = full_runs["mr-lora"]
    assert result["adapters"][ROUTER]["routes_to"] == ["g1", "g2"]
    assert set(result["routing"].values()) == {ROUTER}
    assert result["stages"][1][ROUTER]["examples"] == 3 * 8  # 8 samples of each seen task
    names = ("vqa_color", "text_color", "digit_read")
    tasks = [t for n in names for t in load_suite(f"builtin:{n}", seed=0, max_train=8, max_test=6)]
    groups = {"colours": ["vqa_color", "text_color"], "digits": ["digit_read"]}
    cfg = TuneConfig(batch_size=4, epochs=2, lr=0.01, checkpoint_every=0, seed=1, max_train=8)
    cfg = TuneConfig(**{**cfg.to_dict(), "continual": "mr-lora", "continual_params": {"samples": 8}})
    tune_continual(load_model("tiny"), tasks, groups, tmp_path / "run", cfg, progress=False)
    vlm = load_model("tiny")
    load_adapters(vlm, tmp_path / "run")  # what mint evaluate loads: the router, and the experts it names
    assert {"colours", "digits", ROUTER} <= set(vlm.model.peft_config)
    for task in tasks:
        answers, picks = predict_routed(vlm, task, task.test, ["colours", "digits"])
        expert = 0 if task.name in groups["colours"] else 1
        assert picks == [expert] * len(task.test), task.name
        with active_adapter(vlm, ["colours", "digits"][expert]):
            assert answers == vlm.predict(task, task.test, "both", progress=False)


def test_replay_trains_the_shared_adapter_on_the_buffer(full_runs):
    _, run, result = full_runs["replay"]
    assert list(result["adapters"]) == ["replay"]
    g1, g2 = result["stages"]
    assert g1["replayed"] == 0 and g2["replayed"] == 4 and g2["replayed_from"] == {"g1": 4}
    assert g2["examples"] == 12  # 8 shape samples + half as many from g1


@pytest.mark.parametrize("name", ["o-lora", "reglora"])
def test_stacked_methods_keep_earlier_stages_frozen_and_sum_them(full_runs, llava, name):
    vlm, run, result = full_runs[name]
    assert set(result["adapters"]) == {"g1", "g2", name}
    assert result["adapters"][name]["summed"] == ["g1", "g2"] and result["adapters"][name]["rank"] == 16
    # the earlier stage's adapter is the one saved right after its stage (stage 2 trained on top, frozen)
    stopped = run.parent / f"{name}-after-g1"
    with pytest.raises(TrainingStopped):
        tune_continual(
            load_model(llava),
            make_tasks(),
            GROUPS,
            stopped,
            TuneConfig(**CFG, continual=name, continual_params=METHODS[name]),
            progress=False,
            on_step=_kill_at("g2", 1),
        )
    from safetensors.torch import load_file

    early = load_file(str(stopped / "adapters" / "g1" / "adapter_model.safetensors"))
    final = load_file(str(run / "adapters" / "g1" / "adapter_model.safetensors"))
    for k in early:
        torch.testing.assert_close(final[k], early[k], rtol=0, atol=0)


def test_o_lora_penalty_lowers_the_overlap(llava, tmp_path, full_runs):
    """Stage 2's LoRA overlaps stage 1's less with the orthogonality penalty than without it."""
    from mint.tuning.continual_methods.stacked import lora_layers

    def overlap(vlm):
        return sum(
            (m.lora_A["g1"].weight @ m.lora_A["g2"].weight.T).abs().sum().item()
            for _, m in lora_layers(vlm.model)
            if "g2" in m.lora_A
        )

    free = load_model(llava)
    tune_continual(
        free,
        make_tasks(),
        GROUPS,
        tmp_path / "free",
        TuneConfig(**CFG, continual="o-lora", continual_params={"lambda_orth": 0.0}),
        progress=False,
    )
    assert overlap(full_runs["o-lora"][0]) < 0.5 * overlap(free)


def _kill_at(group, step):
    def on_step(row):
        if row["group"] == group and row["step"] == step:
            raise TrainingStopped(f"killed at {group} step {step}")

    return on_step


@pytest.mark.parametrize(
    "name,group,step",
    [
        ("replay", "g2", 1),
        ("o-lora", "g2", 4),
        ("reglora", "g1", 5),
        ("moe-lora", "g2", 2),
        ("mr-lora", "g1.router", 3),
        ("mr-lora", "g2", 2),
    ],
)
def test_resume_equals_uninterrupted(full_runs, llava, tmp_path, name, group, step):
    full_vlm, full_run, _ = full_runs[name]
    out = tmp_path / "run"
    cfg = TuneConfig(**CFG, continual=name, continual_params=METHODS[name])
    with pytest.raises(TrainingStopped):
        tune_continual(
            load_model(llava), make_tasks(), GROUPS, out, cfg, progress=False, on_step=_kill_at(group, step)
        )
    vlm = load_model(llava)
    tune_continual(vlm, make_tasks(), GROUPS, out, cfg, resume=True, progress=False)
    names = [name] if name in ("replay", "moe-lora") else ["g1", "g2", name]
    if name == "mr-lora":
        log_groups = [json.loads(x)["group"] for x in (out / "train_log.jsonl").read_text().splitlines()]
        assert list(dict.fromkeys(log_groups)) == ["g1", "g1.router", "g2", "g2.router"]
    for adapter in names:
        a, b = adapter_tensors(full_vlm.model, adapter), adapter_tensors(vlm.model, adapter)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=f"{adapter} {k}")
    full, resumed = _read(full_run / "continual.json"), _read(out / "continual.json")
    assert resumed["matrix"] == full["matrix"] and resumed["metrics"] == pytest.approx(full["metrics"])
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    full_log = [json.loads(x) for x in (full_run / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in full_log], abs=1e-6)


def test_evaluations_use_the_stacked_sum(full_runs, monkeypatch, llava, tmp_path):
    seen = []
    real = continual_mod.evaluate_seen

    def recording(vlm, pairs, *args, **kwargs):
        seen.append(sorted({a for _, a in pairs}))
        return real(vlm, pairs, *args, **kwargs)

    monkeypatch.setattr(continual_mod, "evaluate_seen", recording)
    tune_continual(
        load_model(llava),
        make_tasks(),
        GROUPS,
        tmp_path / "run",
        TuneConfig(**CFG, continual="reglora"),
        progress=False,
    )
    assert seen == [[("g1",)], [("g1", "g2")]]


def test_cli_continual_param(llava, tmp_path):
    base = mini_tune(llava, mini_groups_file(tmp_path), "--max-train", 2)
    base += ["--max-test", 2, "--batch-size", 2, "--no-progress", "--continual", "replay"]
    run = CliRunner().invoke(
        main, [str(a) for a in [*base, "--out", tmp_path / "bad", "--continual-param", "size"]]
    )
    assert run.exit_code == 2 and "expected KEY=VALUE" in run.output and "Traceback" not in run.output
    run = CliRunner().invoke(
        main, [str(a) for a in [*base, "--out", tmp_path / "bad2", "--continual-param", "sizes=2"]]
    )
    assert run.exit_code == 2 and "unknown key 'sizes' for replay" in run.output
    run = CliRunner().invoke(
        main, [str(a) for a in [*base, "--out", tmp_path / "ok", "--continual-param", "size=1"]]
    )
    assert run.exit_code == 0, run.output
    tune = _read(tmp_path / "ok" / "tune.json")
    assert tune["config"]["continual_params"] == {"size": 1}
    assert tune["continual"]["params"] == {"size": 1, "fraction": None}
    assert tune["stages"][1]["replayed"] == 1 and tune["stages"][1]["replayed_from"] == {"first": 1}


def test_two_ranks_match_one_process_with_a_penalty(llava, tmp_path):
    """torchrun, 2 CPU ranks (gloo), o-lora (stacked adapters + penalty): same adapters and matrix as one process
    with the same global batch (the penalty's gradient counted once, not once per rank)."""
    from safetensors.torch import load_file

    pytest.importorskip("torch.distributed.run")
    common = mini_tune(llava, mini_groups_file(tmp_path), "--max-train", 2, "--max-test", 2)[
        1:
    ]  # options only
    common += ["--seed", 0, "--dropout", 0, "--lr", 0.05, "--continual", "o-lora", "--no-progress"]
    common += ["--continual-param", "lambda_orth=5", "--continual-param", "lambda_l2=0.1"]
    ddp_dir, one_dir = tune_on_two_ranks_and_one(tmp_path, common)
    ddp, one = _read(ddp_dir / "continual.json"), _read(one_dir / "continual.json")
    assert ddp["matrix"] == one["matrix"] and ddp["complete"]
    for name in ("first", "second", "o-lora"):
        a = load_file(str(ddp_dir / "adapters" / name / "adapter_model.safetensors"))
        b = load_file(str(one_dir / "adapters" / name / "adapter_model.safetensors"))
        assert a.keys() == b.keys() and any(v.abs().max() > 0 for k, v in b.items() if "lora_B" in k)
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4, msg=f"{name} {k}")
