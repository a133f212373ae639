"""A tiny random-weight Qwen2-Audio built offline from a config, and small waveforms and audio files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from helpers_models import WORDS, _save, _text_kwargs

from mint.models.audio import AUDIO_BOS, AUDIO_CHAT_TEMPLATE, AUDIO_EOS, AUDIO_TOKEN
from mint.models.wordtok import build_word_tokenizer

AUDIO_WORDS = WORDS + " high low tone pitch beeps sound rising falling"
RATE = 16000


def make_tiny_qwen2audio(tmp_path: Path, seed: int = 0) -> str:
    """A ``Qwen2AudioForConditionalGeneration`` (1-layer audio encoder on 16 mel bins, 1 s chunks: 100
    frames, 25 audio tokens; 1-layer Qwen2) with a word tokenizer, a ``WhisperFeatureExtractor`` and the
    audio chat template in a ``Qwen2AudioProcessor``, saved to ``tmp_path/tiny-qwen2audio``."""
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    specials = (AUDIO_BOS, AUDIO_TOKEN, AUDIO_EOS)
    tok = build_word_tokenizer([AUDIO_WORDS], image_tokens=specials, chat_template=None)
    fe = WhisperFeatureExtractor(feature_size=16, sampling_rate=RATE, chunk_length=1, hop_length=160)
    cfg = Qwen2AudioConfig(
        audio_config={
            "num_mel_bins": 16,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "max_source_positions": 50,  # 100 mel frames after the stride-2 convolution
        },
        text_config={"model_type": "qwen2", **_text_kwargs(tok)},
        audio_token_index=tok.convert_tokens_to_ids(AUDIO_TOKEN),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(cfg)
    proc = Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok, chat_template=AUDIO_CHAT_TEMPLATE)
    return _save(model, proc, Path(tmp_path) / "tiny-qwen2audio")


def tone(freq: float = 440.0, seconds: float = 0.5, rate: int = RATE) -> np.ndarray:
    """A sine tone of ``freq`` Hz, float32 in [-0.5, 0.5]."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    """``samples`` (mono float in [-1, 1]) as a 16-bit PCM WAV file (the same on every channel)."""
    import wave

    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes())
    return Path(path)
