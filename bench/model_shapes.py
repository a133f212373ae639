"""Real vision-language model shapes as configs (no download), and the memory their weights take.

``python bench/model_shapes.py`` builds Qwen2-VL-2B and LLaVA-1.5-7B from their published configuration values
on the meta device (no memory, no weights), counts their parameters and prints the bytes their weights take
in float32, bfloat16, 8-bit and 4-bit NF4 (bitsandbytes: every ``nn.Linear`` but the output head quantised,
NF4 with double quantisation ~0.5 + 1/64 bytes a weight, 8-bit 1 + 4/cols bytes; the rest in bfloat16).
bench/gpu_check.py builds randomly initialised models of the same shapes.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

#: name -> (model_type, config keyword arguments); values from the models' published config.json
SHAPES: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen2-vl-2b": (
        "qwen2_vl",
        dict(
            text_config=dict(
                hidden_size=1536,
                intermediate_size=8960,
                num_hidden_layers=28,
                num_attention_heads=12,
                num_key_value_heads=2,
                vocab_size=151936,
                tie_word_embeddings=True,
                max_position_embeddings=32768,
                rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
                rms_norm_eps=1e-6,
            ),
            vision_config=dict(
                depth=32,
                embed_dim=1280,
                mlp_ratio=4,
                num_heads=16,
                in_chans=3,
                hidden_size=1536,
                patch_size=14,
                spatial_merge_size=2,
                temporal_patch_size=2,
            ),
            tie_word_embeddings=True,
        ),
    ),
    "llava-1.5-7b": (
        "llava",
        dict(
            vision_config=dict(
                model_type="clip_vision_model",
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=24,
                num_attention_heads=16,
                image_size=336,
                patch_size=14,
                projection_dim=768,
            ),
            text_config=dict(
                model_type="llama",
                hidden_size=4096,
                intermediate_size=11008,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=32,
                vocab_size=32064,
                tie_word_embeddings=False,
            ),
            image_token_index=32000,
            vision_feature_layer=-2,
            projector_hidden_act="gelu",
        ),
    ),
}


def make_config(name: str, small: bool = False) -> Any:
    """The config of ``name``; ``small``: the same architecture with few narrow layers (for CPU tests)."""
    from transformers import LlavaConfig, Qwen2VLConfig

    model_type, kwargs = SHAPES[name]
    kwargs = json.loads(json.dumps(kwargs))
    if small:
        text, vision = kwargs["text_config"], kwargs["vision_config"]
        text.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
        text.update(num_key_value_heads=2 if model_type == "qwen2_vl" else 4, vocab_size=1024)
        if model_type == "qwen2_vl":
            text["rope_scaling"] = {"type": "mrope", "mrope_section": [2, 3, 3]}
            text.update(bos_token_id=1004, eos_token_id=1005)
            vision.update(depth=2, embed_dim=32, num_heads=2, hidden_size=64)
            kwargs.update(image_token_id=1000, video_token_id=1001, vision_start_token_id=1002)
            kwargs.update(vision_end_token_id=1003)
        else:
            vision.update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
            vision.update(image_size=56, projection_dim=32)
            kwargs["image_token_index"] = 1000
    cls = Qwen2VLConfig if model_type == "qwen2_vl" else LlavaConfig
    return cls(**kwargs)


def weight_bytes(name: str) -> dict[str, Any]:
    """Parameter count and weight bytes of ``name`` per precision (meta device: nothing allocated)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForImageTextToText

    with init_empty_weights():
        model = AutoModelForImageTextToText.from_config(make_config(name))
    model.tie_weights()
    params = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in params.values())
    head = model.get_output_embeddings()
    linear = [
        m.weight
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not head and id(m.weight) in params
    ]
    n_lin = sum(w.numel() for w in linear)
    rest = total - n_lin
    gib = 1024**3
    return {
        "params": total,
        "linear_params": n_lin,
        "float32_gib": round(total * 4 / gib, 2),
        "bfloat16_gib": round(total * 2 / gib, 2),
        "int8_gib": round((sum(w.numel() + 4 * w.shape[0] for w in linear) + 2 * rest) / gib, 2),
        "nf4_gib": round((n_lin * (0.5 + 1 / 64) + 2 * rest) / gib, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    args = parser.parse_args()
    rows = {name: weight_bytes(name) for name in SHAPES}
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| model | parameters | float32 | bfloat16 | 8-bit | 4-bit NF4 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['params'] / 1e9:.2f} B | {r['float32_gib']} GiB | {r['bfloat16_gib']} GiB | "
            f"{r['int8_gib']} GiB | {r['nf4_gib']} GiB |"
        )


if __name__ == "__main__":
    main()
