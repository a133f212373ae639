"""``--tower auto``: the tower per group from planted profiles, LoRA only in those towers, bad input exits 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers_models import make_tiny_llava
from helpers_tuning import MINI, make_tasks, mini_tune

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.tuning import TuneConfig, tune_groups
from mint.tuning.towers import group_towers, majority_tower, task_tower

VISION, LANGUAGE = "model.vision_tower.", "model.language_model."


def _profile(interaction, dominant=None):
    return {"interaction": interaction, "dominant_modality": dominant}


def test_task_votes_and_majority():
    assert task_tower(_profile("uniqueness", "image")) == "vision"
    assert task_tower(_profile("uniqueness", "text")) == "language"
    assert task_tower(_profile("uniqueness", None)) == "both"
    assert task_tower(_profile("synergy")) == "both"
    assert task_tower(_profile("redundancy")) == "language"
    assert task_tower(_profile("uniqueness", "pixels"), ("pixels", "words")) == "vision"
    with pytest.raises(MintError, match="tasks.x: interaction"):
        task_tower(_profile("mystery"), where="p.json: tasks.x")
    with pytest.raises(MintError, match="dominant_modality"):
        task_tower(_profile("uniqueness", "audio"))
    assert majority_tower(["vision", "vision", "language"]) == "vision"
    assert majority_tower(["vision", "language"]) == "both"
    assert majority_tower(["vision", "language", "both", "both"]) == "both"
    assert majority_tower(["language"]) == "language"


def test_group_towers_from_profiles():
    profiles = {
        "config": {"modalities": ["image", "text"]},
        "tasks": {
            "a": _profile("uniqueness", "image"),
            "b": _profile("uniqueness", "image"),
            "c": _profile("redundancy"),
            "d": _profile("uniqueness", "text"),
            "e": _profile("synergy"),
            "f": _profile("uniqueness", "image"),
        },
    }
    got = group_towers({"g1": ["a", "b", "c"], "g2": ["d", "c"], "g3": ["e"], "g4": ["f", "d"]}, profiles)
    assert got == {"g1": "vision", "g2": "language", "g3": "both", "g4": "both"}
    named = {"config": {"modalities": ["img", "txt"]}, "tasks": {"a": _profile("uniqueness", "img")}}
    assert group_towers({"g": ["a"]}, named) == {"g": "vision"}
    with pytest.raises(MintError, match="no profile for task 'z'"):
        group_towers({"g": ["a", "z"]}, profiles, "p.json")


def _lora_modules(peft_model, adapter):
    """Names (without peft's prefix) of the modules carrying LoRA weights of ``adapter``."""
    return [
        name.removeprefix("base_model.model.")
        for name, mod in peft_model.named_modules()
        if adapter in getattr(mod, "lora_A", {})
    ]


def test_auto_towers_put_lora_only_in_the_chosen_towers(llava, tmp_path):
    profiles = {
        "tasks": {
            "color": _profile("uniqueness", "image"),
            "presence": _profile("uniqueness", "text"),
            "shape": _profile("synergy"),
        }
    }
    groups = {"gv": ["color"], "gl": ["presence"], "gb": ["shape"]}
    towers = group_towers(groups, profiles)
    assert towers == {"gv": "vision", "gl": "language", "gb": "both"}
    vlm = load_model(llava)
    cfg = TuneConfig(tower="auto", batch_size=4, epochs=1, lr=0.05, dropout=0.0, checkpoint_every=0)
    result = tune_groups(vlm, make_tasks(), groups, tmp_path / "run", cfg, progress=False, towers=towers)
    assert result["towers"] == towers
    assert json.loads((tmp_path / "run" / "tune.json").read_text())["adapters"]["gv"]["tower"] == "vision"
    mods = {g: _lora_modules(vlm.model, g) for g in groups}
    assert mods["gv"] and all(m.startswith(VISION) for m in mods["gv"])
    assert mods["gl"] and all(m.startswith(LANGUAGE) for m in mods["gl"])
    assert set(mods["gb"]) == set(mods["gv"]) | set(mods["gl"])
    assert not any("multi_modal_projector" in m or "lm_head" in m for m in mods["gb"])
    params = {g: a["trainable_params"] for g, a in result["adapters"].items()}
    assert params["gb"] == params["gv"] + params["gl"]
    with pytest.raises(MintError, match="no tower chosen for group"):
        tune_groups(load_model(llava), make_tasks(), groups, tmp_path / "run2", cfg, progress=False)


# ---------------------------------------------------------------------------- command line


def _cli(args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _files(tmp_path, drop=None):
    groups = tmp_path / "groups.json"
    groups.write_text(
        json.dumps({"schema": 1, "method": "mint", "groups": {"img": MINI[:5], "txt": MINI[5:]}})
    )
    tasks = {t: _profile("uniqueness", "image") for t in MINI[:5]}
    tasks.update({t: _profile("uniqueness", "text") for t in MINI[5:]})
    tasks.pop(drop, None)
    profiles = tmp_path / "profiles.json"
    profiles.write_text(json.dumps({"mint_version": "0", "schema": 1, "config": {}, "tasks": tasks}))
    return groups, profiles


def test_cli_auto_records_towers(llava, tmp_path):
    groups, profiles = _files(tmp_path)
    run = tmp_path / "run"
    res = _cli(
        mini_tune(
            llava,
            groups,
            "--out",
            run,
            "--tower",
            "auto",
            "--profiles",
            profiles,
            "--max-train",
            2,
            "--batch-size",
            4,
            "--no-progress",
        )
    )
    assert res.exit_code == 0, res.output
    assert "towers: img: vision, txt: language" in res.output
    tune = json.loads((run / "tune.json").read_text())
    assert tune["towers"] == {"img": "vision", "txt": "language"} and tune["config"]["tower"] == "auto"


@pytest.mark.parametrize(
    "case,needle",
    [
        ("no_profiles", "--tower auto needs --profiles"),
        ("missing_file", "no such profiles file"),
        ("missing_task", "no profile for task 'digit_match'"),
    ],
)
def test_cli_auto_bad_profiles_exit_2(llava, tmp_path, case, needle):
    groups, profiles = _files(tmp_path, drop="digit_match" if case == "missing_task" else None)
    args = mini_tune(
        llava,
        groups,
        "--out",
        tmp_path / "run",
        "--tower",
        "auto",
        "--max-train",
        2,
    )
    if case == "missing_file":
        args += ["--profiles", tmp_path / "nope.json"]
    elif case == "missing_task":
        args += ["--profiles", profiles]
    res = _cli(args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and needle in lines[0], res.output
    assert not (tmp_path / "run").exists()


def test_a_groups_initial_adapter_does_not_depend_on_the_other_groups_towers(tmp_path):
    import torch

    from mint.tuning import attach_adapters

    path = make_tiny_llava(tmp_path / "m")
    inits = []
    for first_tower in ("vision", "language"):
        vlm = load_model(path)
        model = attach_adapters(
            vlm, ["a", "b"], TuneConfig(tower="auto"), towers={"a": first_tower, "b": "language"}
        )
        inits.append(
            {k: v.detach().clone() for k, v in model.named_parameters() if ".b." in k and "lora_A" in k}
        )
    assert inits[0] and inits[0].keys() == inits[1].keys()
    assert all(torch.equal(inits[0][k], inits[1][k]) for k in inits[0])
