"""Where LoRA goes: ``--tower language|vision|both|image|video`` compiled to a peft ``target_modules`` regex.

``vision`` is every visual encoder (on Video-LLaVA its image and its video tower), ``image`` / ``video``
one of them (``video`` only where the architecture has a separate video tower), ``both`` the language
model and every visual encoder.

Keyed by ``config.model_type``. A plain module list (``["q_proj", "v_proj"]``) would hit both towers, and
``"all-linear"`` the projector too (on Qwen2-VL a ``proj`` pattern even wraps the Conv3d patch embedding),
so each pattern names the tower's root and requires a numbered layer (``layers.3`` / ``blocks.0``) below it:
projectors, patch embeddings, pooling heads and ``lm_head`` are never hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from mint.errors import MintError

_LLM = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_VIT = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")  # CLIP / SigLIP encoder layers
_QWEN_VIT = ("qkv", "proj", "fc1", "fc2", "gate_proj", "up_proj", "down_proj")  # Qwen2-VL / Qwen2.5-VL blocks


@dataclass(frozen=True)
class Towers:
    """Module roots (dotted names in the transformers model) and the linear layers LoRA wraps in each."""

    language_root: str
    vision_root: str
    language_modules: tuple[str, ...] = _LLM
    vision_modules: tuple[str, ...] = _VIT
    #: a separate video tower (Video-LLaVA), same layer names as the vision tower; ``vision`` covers both
    video_root: str | None = None


#: model_type -> towers; roots as in transformers >= 5 (``model.<part>``)
TOWERS: dict[str, Towers] = {
    "llava": Towers("model.language_model", "model.vision_tower"),
    "llava_next": Towers("model.language_model", "model.vision_tower"),
    "llava_onevision": Towers("model.language_model", "model.vision_tower"),
    "paligemma": Towers("model.language_model", "model.vision_tower"),
    "idefics3": Towers("model.text_model", "model.vision_model"),
    "smolvlm": Towers("model.text_model", "model.vision_model"),
    "qwen2_vl": Towers("model.language_model", "model.visual.blocks", vision_modules=_QWEN_VIT),
    "qwen2_5_vl": Towers("model.language_model", "model.visual.blocks", vision_modules=_QWEN_VIT),
    "video_llava": Towers("model.language_model", "model.image_tower", video_root="model.video_tower"),
    # the audio tower (Whisper-style encoder layers: the CLIP names) stands where a vision tower stands
    "qwen2_audio": Towers("model.language_model", "model.audio_tower"),
}


def _pattern(root: str, modules: tuple[str, ...]) -> str:
    # optional peft prefix; the root; any path containing a layer number; one of the module names
    return rf"(?:base_model\.model\.)?{re.escape(root)}\.(?:.*\.)?\d+\.(?:.*\.)?(?:{'|'.join(modules)})"


def target_regex(model_type: str, tower: str = "language", modules: tuple[str, ...] | None = None) -> str:
    """The ``target_modules`` regex (peft full-matches it against module names) for ``tower`` of ``model_type``;
    ``modules``: other linear layer names than each tower's own (e.g. ``("q_proj", "v_proj")``)."""
    towers = TOWERS.get(model_type)
    if towers is None:
        raise MintError(
            f"model type {model_type!r}: no LoRA target patterns (supported: {', '.join(sorted(TOWERS))})"
        )
    language = [(towers.language_root, modules or towers.language_modules)]
    image = [(towers.vision_root, modules or towers.vision_modules)]
    video = [(towers.video_root, modules or towers.vision_modules)] if towers.video_root else []
    parts = {
        "language": language,
        "vision": image + video,
        "both": language + image + video,
        "image": image,  # the image path only (on Video-LLaVA: not the video tower)
        "video": video,
    }
    if tower not in parts:
        raise MintError(f"tower: expected one of {', '.join(parts)}, got {tower!r}")
    if not parts[tower]:
        raise MintError(f"model type {model_type!r} has no separate {tower} tower (try --tower vision)")
    return "|".join(f"(?:{_pattern(root, mods)})" for root, mods in parts[tower])


def matched_modules(model: torch.nn.Module, regex: str) -> list[str]:
    """Names of the modules of ``model`` that peft would wrap with ``regex`` (linear layers only)."""
    pat = re.compile(regex)
    return [
        name
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and pat.fullmatch(name)
    ]


def lora_targets(model: torch.nn.Module, tower: str = "language") -> str:
    """The regex for ``model`` (by ``model.config.model_type``), checked to hit at least one linear layer."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    regex = target_regex(str(model_type), tower)
    if not matched_modules(model, regex):
        raise MintError(
            f"model type {model_type!r}: the {tower} tower pattern matches no linear layer "
            f"(expected modules under the roots in mint.tuning.targets.TOWERS)"
        )
    return regex
