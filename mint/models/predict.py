"""Prediction of a task suite in the modality modes: the model layer's entry point behind ``mint predict``,
``mint profile --suite`` and the pipeline's predict stage.

Work is cached per (model, task, mode) in ``cache_dir`` (default: ``.mint-cache`` beside the output), so a
killed run resumes and a re-run does no model work. Under ``accelerate launch`` / ``torchrun`` the samples
are split across the processes (each writes its own cache parts; the main process merges them and writes
the predictions file, :mod:`mint.artifacts.predictions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mint.artifacts.predictions import write_predictions
from mint.models.load_options import LoadOptions
from mint.models.loading import load_model, resolve_model
from mint.models.prompts import Ablation
from mint.models.runner import PredictionCache, Shards, model_setting, parse_modes, predict_suite
from mint.tasks import load_suite
from mint.tasks.demos import check_in_context, check_multi_image, in_context_setting
from mint.vocabulary import MODES

#: every modality mode, as ``--modes`` takes them
DEFAULT_MODES = ",".join(MODES)


def run_predict(
    *,
    suite: str,
    model: str,
    out: str | Path,
    modes: str = DEFAULT_MODES,
    split: str = "test",
    batch_size: int = 16,
    device: str = "auto",
    dtype: str = "float32",
    device_map: str | None = None,
    attn_implementation: str | None = None,
    features: bool = True,
    max_samples: int | None = None,
    seed: int = 0,
    text_only_image: str = "auto",
    max_new_tokens: int = 16,
    num_beams: int = 1,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    log=None,
    in_context: int = 0,
    demo_selection: str = "random",
) -> dict[str, Any]:
    """Predict ``suite`` with ``model`` into ``out`` (+ sidecar); return the metadata written (with
    ``main_process``: False on the other processes of a sharded run, which write nothing)."""
    out = Path(out)
    in_context = check_in_context(in_context, demo_selection)
    mode_list = parse_modes(modes)
    ablation = Ablation(text_only_image=text_only_image)
    caps = {"max_test": max_samples} if split == "test" else {"max_train": max_samples}
    source = resolve_model(model)  # a model that cannot be had fails before the suite is built
    tasks = load_suite(suite, seed=seed, **caps)
    torch.manual_seed(seed)
    shards = Shards.launched(device)
    load = LoadOptions(dtype, device_map, attn_implementation).check(device, shards.count)
    vlm = load_model(
        model,
        device=device,
        dtype=dtype,
        ablation=ablation,
        max_new_tokens=max_new_tokens,
        device_map=device_map,
        attn_implementation=attn_implementation,
    )
    vlm.num_beams = num_beams
    check_multi_image(vlm, tasks, in_context)
    cache_root = Path(cache_dir) if cache_dir is not None else out.parent / ".mint-cache"
    cache = PredictionCache(cache_root, model_setting(vlm, model, source, dtype, load.record()))
    rows, counts = predict_suite(
        vlm,
        tasks,
        cache,
        modes=mode_list,
        split=split,
        batch_size=batch_size,
        features=features,
        progress=progress,
        log=log,
        in_context=in_context,
        demo_selection=demo_selection,
        demo_seed=seed,
        shards=shards,
    )
    meta = {
        "command": "predict",
        "suite": str(suite),
        "model": model,
        "model_source": source,
        "model_type": vlm.model_type,
        "split": split,
        "modes": mode_list,
        "seed": seed,
        "dtype": dtype,
        "device": str(vlm.device),
        **{k: v for k, v in load.record().items() if k != "dtype"},
        "batch_size": batch_size,
        "max_samples": max_samples,
        "ablation": vlm.ablation_settings(),
        "scoring": {
            "closed": "argmax of the total log-prob of each answer + eos (teacher forcing)",
            "open": ("greedy generation" if num_beams == 1 else f"beam search ({num_beams} beams)")
            + f", at most {max_new_tokens} new tokens, batched with left padding",
        },
        "generation": {"max_new_tokens": max_new_tokens, "num_beams": num_beams, "do_sample": False},
        "features": (
            {
                "image": "mean-pooled projected image tokens (image-only pass)",
                "text": "mean-pooled last-layer hidden states of the text tokens (text-only pass)",
            }
            if features
            else None
        ),
        "tasks": {
            t.name: {
                "n": len(t.split(split)),
                "kind": t.kind,
                "dominant": getattr(t, "dominant", None),
                "metric": t.metric,
                "answers": t.answers,
            }
            for t in tasks
        },
        "cache": str(cache.dir),
        "parts": counts,
        "processes": shards.count,
    }
    if in_context:
        meta["in_context"] = in_context_setting(in_context, demo_selection, seed)
    if shards.is_main:
        write_predictions(out, rows, meta)
    meta["main_process"] = shards.is_main
    return meta
