"""Tiny random-weight video models built offline from configs, and small video samples and files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from helpers_models import WORDS, make_tiny_qwen2vl

from mint.models.video import VIDEO_CHAT_TEMPLATE
from mint.models.wordtok import build_word_tokenizer

VIDEO_WORDS = WORDS + " left right up down move moving way does it go"


def make_tiny_video_llava(tmp_path: Path, seed: int = 0, frames: int = 3) -> str:
    """A ``VideoLlavaForConditionalGeneration`` (1-layer CLIP towers on 16x16 frames, patch 8: 5 tokens a
    frame; 1-layer llama) with a word tokenizer, a PIL ``VideoLlavaImageProcessor`` and the video chat
    template, saved to ``tmp_path/tiny-video-llava``."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
    )
    from transformers.models.video_llava.image_processing_video_llava import VideoLlavaImageProcessor

    tok = build_word_tokenizer([VIDEO_WORDS], image_tokens=("<image>", "<video>"), chat_template=None)
    tok.chat_template = VIDEO_CHAT_TEMPLATE
    ip = VideoLlavaImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    per_frame = (16 // 8) ** 2 + 1
    cfg = VideoLlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=16,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=512,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_index=tok.convert_tokens_to_ids("<image>"),
        video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-1,
        image_seq_length=per_frame - 1,
        video_seq_length=per_frame * frames,
    )
    torch.manual_seed(seed)
    model = VideoLlavaForConditionalGeneration(cfg)
    path = Path(tmp_path) / "tiny-video-llava"
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    ip.save_pretrained(path)
    return str(path)


def make_tiny_qwen2vl_video(tmp_path: Path, seed: int = 0) -> str:
    """The tiny Qwen2-VL of ``helpers_models`` (frames resized to 32x32, patch 8, merge 2, 2 frames a
    temporal patch) with the video words and a chat template that marks videos as Qwen2-VL's does."""
    template = VIDEO_CHAT_TEMPLATE.replace("<image> ", "<|image_pad|> ").replace(
        "<video> ", "<|vision_start|><|video_pad|><|vision_end|> "
    )
    return make_tiny_qwen2vl(tmp_path, seed, words=VIDEO_WORDS, chat_template=template)


def moving_square(direction: str = "right", frames: int = 4, size: int = 16, color=(255, 0, 0)) -> np.ndarray:
    """``(frames, size, size, 3)`` uint8: a square moving one step a frame in ``direction``."""
    out = np.zeros((frames, size, size, 3), np.uint8)
    step = {"right": (0, 2), "left": (0, -2), "down": (2, 0), "up": (-2, 0)}[direction]
    y, x = size // 2 - 2 - step[0] * (frames // 2), size // 2 - 2 - step[1] * (frames // 2)
    for t in range(frames):
        yy, xx = y + step[0] * t, x + step[1] * t
        out[t, max(yy, 0) : yy + 4, max(xx, 0) : xx + 4] = color
    return out


def write_video(path: Path, array: np.ndarray, rate: int = 10) -> Path:
    """Encode ``array`` ``(T, H, W, 3)`` uint8 as an MPEG-4 file with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = array.shape[2], array.shape[1], "yuv420p"
        for frame in array:
            for packet in stream.encode(
                av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            ):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)
