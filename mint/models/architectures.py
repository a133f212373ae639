"""What differs between vision-language architectures, keyed by ``config.model_type``.

Everything else (prompting, scoring, features) is shared. For each architecture: whether it requires an
image, how a batch of prompts and images becomes tensors (``encode``, right-padded), which per-token
arrays exist besides ``input_ids``, the value they take on appended answer tokens, and the module roots
of the three parts (vision tower, projector, language model) that adapters target.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from mint.errors import MintError
from mint.models.audio import AUDIO_KEYS, qwen2audio_encode
from mint.models.video import QWEN_IMAGE_PAD, QWEN_VIDEO_PAD, qwen2vl_video, video_llava_encode
from mint.tasks.video import is_clip

_QWEN_PADS = re.compile(f"{re.escape(QWEN_IMAGE_PAD)}|{re.escape(QWEN_VIDEO_PAD)}")


@dataclass(frozen=True)
class Architecture:
    model_type: str
    #: the language model's root (a dotted module name; LoRA's per-tower roots: mint/tuning/targets.py)
    language_root: str = "model.language_model"
    requires_image: bool = False
    #: "chat": render messages with the chat template; "plain": the text alone (the processor adds images)
    prompt_style: str = "chat"
    #: how images go to the processor: "flat" (one list), "nested" (one list per prompt)
    image_layout: str = "nested"
    #: how image tensors come out: "per_image" (first axis = images), "batch" (first axis = prompts),
    #: "patches" (Qwen2-VL: flattened patches, ``image_grid_thw`` per image), "auto" (guess from shapes)
    pixel_layout: str = "auto"
    #: per-token arrays and the value they take on answer tokens appended to a prompt
    answer_fill: dict[str, int] = field(default_factory=dict)
    #: custom encoder ``(vlm, prompts, images) -> dict`` replacing the processor call
    encoder: Callable[..., dict] | None = None
    #: closed-answer scoring reuses the prompt's key/value cache for the answers (False: one expanded pass;
    #: Qwen2-VL's multimodal rope positions for a continuation cannot be rebuilt from outside the model)
    prefix_cache: bool = True
    #: the prompt's attention is causal, so prompts that begin alike share the keys and values of their
    #: common beginning (the both and image-only prompts; :func:`mint.models.scoring.answer_logprobs_shared`).
    #: Off where unknown, and for prefix-LMs (PaliGemma: image and prompt tokens see each other)
    shared_prefix: bool = False


def _qwen2vl_encode(vlm: Any, prompts: list[str], images: list[list]) -> dict:
    """Qwen2-VL without its processors (they need torchvision): each ``<|image_pad|>`` expanded to
    ``prod(image_grid_thw) // merge_size**2`` tokens, each ``<|video_pad|>`` to ``prod(video_grid_thw) //
    merge_size**2`` (a video's frames patched in time as well, :func:`mint.models.video.qwen2vl_video`),
    and ``mm_token_type_ids`` marking image tokens 1 and video tokens 2 (the multimodal rope's types)."""
    tok = vlm.tokenizer
    ip = vlm.image_processor
    flat = [im for ims in images for im in ims]
    stills = [im for im in flat if not is_clip(im)]
    clips = [im for im in flat if is_clip(im)]
    out: dict[str, Any] = {}
    runs: dict[str, Iterator[int]] = {}
    if stills:
        enc = ip(images=stills, return_tensors="pt")
        out["pixel_values"] = enc["pixel_values"]
        out["image_grid_thw"] = enc["image_grid_thw"]
        runs[QWEN_IMAGE_PAD] = iter((enc["image_grid_thw"].prod(-1) // ip.merge_size**2).tolist())
    if clips:
        if vlm.model_type != "qwen2_vl":
            raise MintError(
                f"{vlm.model_type}: video input is not supported (its per-patch time stamps, "
                "second_per_grid_ts, are not passed); use Qwen2-VL or Video-LLaVA for video tasks"
            )
        out["pixel_values_videos"], out["video_grid_thw"] = qwen2vl_video(ip, clips)
        runs[QWEN_VIDEO_PAD] = iter((out["video_grid_thw"].prod(-1) // ip.merge_size**2).tolist())
    texts = (
        [_QWEN_PADS.sub(lambda m: m.group(0) * next(runs[m.group(0)]), p) for p in prompts]
        if runs
        else prompts
    )
    t = tok(list(texts), padding=True, return_tensors="pt", add_special_tokens=False)
    out["input_ids"] = t["input_ids"]
    out["attention_mask"] = t["attention_mask"]
    types = (t["input_ids"] == vlm.image_token_id).long()
    if vlm.video_token_id is not None:
        types[t["input_ids"] == vlm.video_token_id] = 2
    out["mm_token_type_ids"] = types
    return out


ARCHITECTURES: dict[str, Architecture] = {
    "llava": Architecture("llava", image_layout="flat", pixel_layout="per_image", shared_prefix=True),
    # images and videos (frames stacked by hand, mint.models.video); two towers share one projector
    "video_llava": Architecture(
        "video_llava",
        pixel_layout="per_image",
        encoder=video_llava_encode,
        shared_prefix=True,
    ),
    "paligemma": Architecture(
        "paligemma",
        requires_image=True,
        prompt_style="plain",
        pixel_layout="per_image",
        answer_fill={"token_type_ids": 1},
    ),
    **{
        name: Architecture(
            name,
            language_root="model.text_model",
            pixel_layout="batch",
            answer_fill={"mm_token_type_ids": 0},
            shared_prefix=True,
        )
        for name in ("idefics3", "smolvlm")  # SmolVLM is Idefics3's architecture under its own name
    },
    **{
        name: Architecture(
            name,
            pixel_layout="patches",
            answer_fill={"mm_token_type_ids": 0},
            encoder=_qwen2vl_encode,
            prefix_cache=False,
        )
        for name in ("qwen2_vl", "qwen2_5_vl")  # one encoder; Qwen2.5-VL refuses videos in it
    },
    # audio + text: waveforms to log-mel features, <|AUDIO|> expanded (mint.models.audio)
    "qwen2_audio": Architecture(
        "qwen2_audio", pixel_layout="per_image", encoder=qwen2audio_encode, shared_prefix=True
    ),
}


def architecture(model_type: str) -> Architecture:
    """The specifics of ``model_type``; unknown types get the generic processor-based handling."""
    return ARCHITECTURES.get(model_type, Architecture(model_type))


def image_token_id(config: Any, tokenizer: Any) -> int | None:
    """The id of the token that marks image positions in ``input_ids`` (audio positions on an audio-text
    model: the non-text modality's token)."""
    for attr in ("image_token_id", "image_token_index", "audio_token_id", "audio_token_index"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    token = getattr(tokenizer, "image_token", None) or "<image>"
    tid = tokenizer.convert_tokens_to_ids(token)
    return tid if isinstance(tid, int) and tid != tokenizer.unk_token_id else None


def processor_encode(vlm: Any, prompts: list[str], images: list[list], padding_side: str = "right") -> dict:
    """Run the model's processor on a batch (padded on ``padding_side``); images laid out as the
    architecture wants."""
    arch = vlm.arch
    tok = vlm.tokenizer
    saved, tok.padding_side = tok.padding_side, padding_side
    try:
        if arch.encoder is not None:
            return arch.encoder(vlm, prompts, images)
        kwargs: dict[str, Any] = {"text": prompts, "padding": True, "return_tensors": "pt"}
        if any(images):
            kwargs["images"] = [im for ims in images for im in ims] if arch.image_layout == "flat" else images
        enc = dict(vlm.processor(**kwargs))
    finally:
        tok.padding_side = saved
    enc.pop("labels", None)  # PaliGemma's processor makes labels of its own; collate makes them
    return enc


def per_token_keys(enc: dict) -> list[str]:
    """Keys of ``enc`` holding one value per token (same shape as ``input_ids``)."""
    shape = enc["input_ids"].shape
    return [k for k, v in enc.items() if isinstance(v, torch.Tensor) and is_per_token(k, v, shape)]


def is_per_token(key: str, value: torch.Tensor, shape: torch.Size) -> bool:
    """Whether ``value`` holds one value per token of a ``shape`` batch: its shape, and not a per-audio
    tensor (``feature_attention_mask``) that happens to have it."""
    return value.shape == shape and key not in AUDIO_KEYS


def repeat_images(
    arch: Architecture, enc: dict, counts: list[int], repeat: int, video_counts: list[int]
) -> dict:
    """The non-token tensors of ``enc`` (pixel values, grids, masks) with each prompt's block repeated
    ``repeat`` times in place, matching token rows repeated the same way. ``counts``: images and videos
    per prompt; ``video_counts``: the videos among them."""
    if repeat == 1:
        return dict(enc)
    stills = [c - v for c, v in zip(counts, video_counts)]
    n_prompts = len(counts)
    out = {}
    for key, value in enc.items():
        if not isinstance(value, torch.Tensor):
            out[key] = value
            continue
        video = "video" in key
        per_prompt = video_counts if video else stills
        n_images = sum(per_prompt)
        grid = enc.get("video_grid_thw" if video else "image_grid_thw")
        if arch.pixel_layout == "patches" and key.startswith("pixel_values") and grid is not None:
            per_image = grid.prod(-1).tolist()
        elif arch.pixel_layout == "batch" or (
            arch.pixel_layout == "auto" and value.shape[0] == n_prompts and value.shape[0] != n_images
        ):
            per_image = None
        elif value.shape[0] == n_images:
            per_image = [1] * n_images
        else:
            raise ValueError(f"cannot tell how to repeat the {key!r} tensor of shape {tuple(value.shape)}")
        if per_image is None:
            sizes = [1] * n_prompts
        else:
            it = iter(per_image)
            sizes = [sum(next(it) for _ in range(c)) for c in per_prompt]
        blocks = torch.split(value, sizes)
        out[key] = torch.cat([b for b in blocks for _ in range(repeat)])
    return out
