"""Audio input for Qwen2-Audio: waveforms to log-mel features, and its audio token expanded.

A prompt's inputs are a list in which an audio is a :class:`mint.tasks.audio.Waveform`; the chat messages
mark it ``{"type": "audio"}`` (:mod:`mint.models.prompts`), which Qwen2-Audio's chat template renders as
``<|audio_bos|><|AUDIO|><|audio_eos|>``. :func:`qwen2audio_encode` does what ``Qwen2AudioProcessor`` does:
each waveform resampled to the feature extractor's rate (``WhisperFeatureExtractor``: 16 kHz for the
released models), turned into log-mel ``input_features`` padded to the extractor's chunk (30 s on the
released models; a longer audio is cut there) with ``feature_attention_mask`` marking the real frames, and
each ``<|AUDIO|>`` expanded to the tokens the audio tower makes of that audio (its frames halved by the
second convolution and again by the pooling: ``((frames - 1) // 2 + 1 - 2) // 2 + 1``).
"""

from __future__ import annotations

from typing import Any

from mint.errors import MintError
from mint.tasks.audio import is_audio

AUDIO_TOKEN = "<|AUDIO|>"
AUDIO_BOS = "<|audio_bos|>"
AUDIO_EOS = "<|audio_eos|>"
#: how a chat template marks one audio (Qwen2-Audio's own)
AUDIO_MARK = AUDIO_BOS + AUDIO_TOKEN + AUDIO_EOS
#: the model types whose audio input :func:`qwen2audio_encode` prepares
AUDIO_MODEL_TYPES = ("qwen2_audio",)
#: per-audio tensors that are no per-token arrays, whatever their shape
AUDIO_KEYS = ("input_features", "feature_attention_mask")

#: a chat template for word-level tokenizers that marks audio as Qwen2-Audio does (tiny test models)
AUDIO_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}" + AUDIO_MARK + " {% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %} {{ eos_token }}{% endif %}"
    " {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def audio_tokens(frames: int) -> int:
    """Tokens Qwen2-Audio's tower makes of ``frames`` log-mel frames (``Qwen2AudioProcessor``'s rule)."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def feature_extractor(vlm: Any) -> Any:
    """The model's audio feature extractor (its processor's, else the one loaded on its own)."""
    fe = getattr(vlm.processor, "feature_extractor", None) or vlm.image_processor
    if fe is None or not hasattr(fe, "sampling_rate"):
        raise MintError(f"{vlm.name or vlm.model_type}: no audio feature extractor was loaded with the model")
    return fe


def qwen2audio_encode(vlm: Any, prompts: list[str], inputs: list[list]) -> dict:
    """Qwen2-Audio's processor (module docstring): right-padded ``input_ids`` / ``attention_mask``, and
    ``input_features`` / ``feature_attention_mask`` (one row per audio, in prompt order) when there is audio."""
    flat = [x for xs in inputs for x in xs]
    if any(not is_audio(x) for x in flat):
        raise MintError(f"{vlm.model_type}: takes audio and text only, not images or videos")
    out: dict[str, Any] = {}
    texts = list(prompts)
    if flat:
        fe = feature_extractor(vlm)
        rate = int(fe.sampling_rate)
        enc = fe(
            [w.resampled(rate).samples for w in flat],
            sampling_rate=rate,
            return_attention_mask=True,
            padding="max_length",
            return_tensors="pt",
        )
        out["input_features"] = enc["input_features"]
        out["feature_attention_mask"] = enc["attention_mask"].long()
        runs = iter(audio_tokens(int(n)) for n in out["feature_attention_mask"].sum(-1).tolist())
        texts = ["".join(_expand(p, runs)) for p in prompts]
    t = vlm.tokenizer(texts, padding=True, return_tensors="pt")
    out["input_ids"] = t["input_ids"]
    out["attention_mask"] = t["attention_mask"]
    return out


def _expand(prompt: str, runs: Any) -> list[str]:
    """``prompt`` cut at each audio token, every one replaced by its run of tokens."""
    parts = prompt.split(AUDIO_TOKEN)
    out = [parts[0]]
    for rest in parts[1:]:
        out += [AUDIO_TOKEN * next(runs), rest]
    return out
