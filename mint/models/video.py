"""Video input for video-capable architectures (Video-LLaVA, Qwen2-VL), without the torchvision-only processors.

A prompt's visual inputs are a list in which a video is a :class:`mint.tasks.video.Clip` (its frames)
and an image a ``PIL.Image``; the chat messages mark them ``{"type": "video"}`` / ``{"type": "image"}``
(:mod:`mint.models.prompts`). Transformers' video processors need torchvision, so :func:`video_llava_encode`
does the processor's work by hand: every frame goes through the model's PIL image processor
(``VideoLlavaImageProcessor``), a video's frames are stacked into ``pixel_values_videos``
``(videos, frames, 3, H, W)``, and each ``<video>`` token is expanded to ``frames x (patches + 1)``
tokens (each frame's CLS token and patches, as ``VideoLlavaProcessor`` does), each ``<image>`` to the
patches (minus CLS under the ``default`` feature strategy).

Qwen2-VL takes a video's frames as they are (:func:`qwen2vl_video`): each frame through the PIL image
processor, consecutive frames packed into one temporal patch of ``temporal_patch_size`` frames (the last
frame repeated to fill the final one, as ``Qwen2VLVideoProcessor`` does), so the vision tower sees motion
inside a patch; ``video_grid_thw`` gives each video's (time, height, width) patch grid.

For Video-LLaVA, every video is sampled to the model's frame count (:func:`model_frames`: ``video_seq_length`` over the
tokens of one frame, 8 for ``LanguageBind/Video-LLaVA-7B-hf``), since a batch stacks videos of one length.
"""

from __future__ import annotations

from typing import Any

import torch

from mint.tasks.video import Clip, is_clip

#: a chat template for word-level tokenizers that marks images and videos (the embedded ``tiny-video``)
VIDEO_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image> {% elif part['type'] == 'video' %}<video> "
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %} {{ eos_token }}{% endif %}"
    " {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
VIDEO_TOKEN = "<video>"
#: the tokens Qwen2-VL's prompts carry for an image and a video (expanded to their patch counts)
QWEN_IMAGE_PAD = "<|image_pad|>"
QWEN_VIDEO_PAD = "<|video_pad|>"
DEFAULT_FRAMES = 8


def video_token_id(config: Any, tokenizer: Any) -> int | None:
    """The id of the token marking video positions in ``input_ids`` (None for image-only models)."""
    for attr in ("video_token_id", "video_token_index"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    token = getattr(tokenizer, "video_token", None) or VIDEO_TOKEN
    tid = tokenizer.convert_tokens_to_ids(token)
    return tid if isinstance(tid, int) and tid != tokenizer.unk_token_id else None


def frame_tokens(config: Any) -> int:
    """Tokens one video frame becomes in the language model: the patches and the CLS token."""
    vision = config.vision_config
    return (vision.image_size // vision.patch_size) ** 2 + 1


def model_frames(config: Any) -> int:
    """Frames per video that the model expects: ``video_seq_length`` over :func:`frame_tokens`, where that
    divides evenly, else 8 (Video-LLaVA's)."""
    total = getattr(config, "video_seq_length", None)
    per = frame_tokens(config)
    if isinstance(total, int) and total >= per and total % per == 0:
        return total // per
    return DEFAULT_FRAMES


def _pixels(image_processor: Any, frames: list) -> torch.Tensor:
    """``(n, 3, H, W)`` pixel values of ``frames`` through a PIL image processor."""
    try:
        enc = image_processor(images=frames, return_tensors="pt", return_legacy_image_output=False)
    except TypeError:  # an image processor without the Video-LLaVA legacy switch
        enc = image_processor(images=frames, return_tensors="pt")
    for key in ("pixel_values", "pixel_values_images"):
        if key in enc:
            return enc[key]
    raise ValueError(f"the image processor returned no pixel values (keys: {sorted(enc)})")


def video_llava_encode(vlm: Any, prompts: list[str], images: list[list]) -> dict:
    """Video-LLaVA's processor by hand (module docstring): right-padded ``input_ids`` /
    ``attention_mask``, ``pixel_values`` for images and ``pixel_values_videos`` for videos."""
    config = vlm.model.config
    tok = vlm.tokenizer
    ip = vlm.image_processor
    n_frames = model_frames(config)
    flat = [x for xs in images for x in xs]
    stills = [x for x in flat if not is_clip(x)]
    clips = [Clip(x).resampled(n_frames) for x in flat if is_clip(x)]
    out: dict[str, Any] = {}
    image_token = getattr(tok, "image_token", None) or "<image>"
    video_token = getattr(tok, "video_token", None) or VIDEO_TOKEN
    patch = config.vision_config.patch_size
    expand = {}
    if stills:
        out["pixel_values"] = _pixels(ip, stills)
        h, w = out["pixel_values"].shape[-2:]
        n = (h // patch) * (w // patch) + 1 - (config.vision_feature_select_strategy == "default")
        expand[image_token] = image_token * n
    if clips:
        frames = _pixels(ip, [f for c in clips for f in c])
        out["pixel_values_videos"] = frames.view(len(clips), n_frames, *frames.shape[1:])
        h, w = frames.shape[-2:]
        expand[video_token] = video_token * (((h // patch) * (w // patch) + 1) * n_frames)
    texts = [_expanded(p, expand) for p in prompts]
    t = tok(texts, padding=True, return_tensors="pt")
    out["input_ids"] = t["input_ids"]
    out["attention_mask"] = t["attention_mask"]
    return out


def _expanded(prompt: str, expand: dict[str, str]) -> str:
    """``prompt`` with each marker token replaced by its run of tokens (markers never overlap)."""
    for marker, run in expand.items():
        prompt = prompt.replace(marker, run)
    return prompt


def qwen2vl_video(image_processor: Any, clips: list) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen2-VL's ``pixel_values_videos`` (flattened patches, videos one after another) and
    ``video_grid_thw`` for ``clips``, from its PIL image processor (module docstring).

    The image processor patches one frame as ``(C, T, P, P)`` with the frame repeated over ``T``; a video
    patch holds ``T`` consecutive frames in that slot instead, in the video processor's order (time, then
    the image's spatial order)."""
    temporal = image_processor.temporal_patch_size
    pixels, grids = [], []
    for clip in clips:
        frames = list(clip)
        frames += frames[-1:] * (-len(frames) % temporal)
        enc = image_processor(images=frames, return_tensors="pt")
        per_frame = enc["pixel_values"].shape[0] // len(frames)
        _, h, w = enc["image_grid_thw"][0].tolist()
        x = enc["pixel_values"].view(len(frames), per_frame, 3, temporal, -1)[:, :, :, 0]  # one copy a frame
        x = x.view(len(frames) // temporal, temporal, per_frame, 3, -1).permute(0, 2, 3, 1, 4)
        pixels.append(x.reshape(len(frames) // temporal * per_frame, -1))
        grids.append([len(frames) // temporal, h, w])
    return torch.cat(pixels), torch.tensor(grids, dtype=torch.long)
