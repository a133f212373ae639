"""--tower language|vision|both puts LoRA on exactly the intended layers of each supported architecture."""

from __future__ import annotations

import pytest
import torch
from helpers_models import MAKERS

from mint.errors import MintError
from mint.tuning.targets import lora_targets, target_regex

LLM = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
]
VIT = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"]
# the tiny builders have one layer per tower; expected wrapped modules, written out by hand
EXPECTED = {
    "llava": {
        "language": [f"model.language_model.layers.0.{m}" for m in LLM],
        "vision": [f"model.vision_tower.encoder.layers.0.{m}" for m in VIT],
    },
    "paligemma": {
        "language": [f"model.language_model.layers.0.{m}" for m in LLM],
        "vision": [f"model.vision_tower.encoder.layers.0.{m}" for m in VIT],
    },
    "idefics3": {
        "language": [f"model.text_model.layers.0.{m}" for m in LLM],
        "vision": [f"model.vision_model.encoder.layers.0.{m}" for m in VIT],
    },
    "qwen2_vl": {
        "language": [f"model.language_model.layers.0.{m}" for m in LLM],
        "vision": [f"model.visual.blocks.0.{m}" for m in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")],
    },
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    return {arch: make(root) for arch, make in MAKERS.items()}


@pytest.fixture(scope="module")
def models(paths):
    from transformers import AutoModelForImageTextToText

    return {arch: AutoModelForImageTextToText.from_pretrained(path) for arch, path in paths.items()}


def _wrapped(model: torch.nn.Module, tower: str) -> set[str]:
    """Modules that peft actually wraps with LoRA for ``tower`` (on a deep copy)."""
    import copy

    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(copy.deepcopy(model), LoraConfig(r=2, target_modules=lora_targets(model, tower)))
    prefix = "base_model.model."
    return {n[len(prefix) :] for n, m in pm.named_modules() if hasattr(m, "lora_A") and n.startswith(prefix)}


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_towers_hit_exactly_the_intended_layers(models, arch):
    model = models[arch]
    assert model.config.model_type == arch
    lang, vis = set(EXPECTED[arch]["language"]), set(EXPECTED[arch]["vision"])
    assert _wrapped(model, "language") == lang
    assert _wrapped(model, "vision") == vis
    assert _wrapped(model, "both") == lang | vis
    # never the projector, a patch embedding (Conv2d / Qwen2-VL's Conv3d), a pooling head or lm_head
    for name in _wrapped(model, "both"):
        assert not any(bad in name for bad in ("projector", "connector", "merger", "patch_embed", "head"))


@pytest.mark.parametrize("arch", sorted(EXPECTED))
def test_training_moves_both_towers_on_every_architecture(paths, tmp_path, arch):
    """One tuning step with --tower both (chat prompts, answer-only loss) updates LoRA in both towers."""
    from helpers_tuning import adapter_tensors, make_tasks

    from mint.models import load_model
    from mint.tuning import TuneConfig, tune_groups

    vlm = load_model(paths[arch])
    result = tune_groups(
        vlm,
        make_tasks(4, 1),
        {"g1": ["color", "presence", "shape"]},
        tmp_path / "run",
        TuneConfig(batch_size=4, lr=0.05, tower="both", checkpoint_every=0),
        progress=False,
    )
    assert result["adapters"]["g1"]["steps"] == 3
    moved = {k for k, v in adapter_tensors(vlm.model, "g1").items() if "lora_B" in k and v.abs().max() > 0}
    lang, vis = EXPECTED[arch]["language"][0].split(".layers")[0], EXPECTED[arch]["vision"][0].split(".")[1]
    assert any(lang in k for k in moved) and any(f"model.{vis}." in k for k in moved), sorted(moved)


def test_unknown_architecture_and_tower_are_input_errors(models):
    with pytest.raises(MintError, match="no LoRA target patterns"):
        target_regex("bert", "language")
    with pytest.raises(MintError, match="tower"):
        target_regex("llava", "projector")
