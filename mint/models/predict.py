"""Prediction of a task suite in the modality modes: the model layer's entry point behind ``mint predict``,
``mint profile --suite`` and the pipeline's predict stage.

Work is cached per (model, task, mode) in ``cache_dir`` (default: ``.mint-cache`` beside the output), so a
killed run resumes and a re-run does no model work. Under ``accelerate launch`` / ``torchrun`` the samples
are split across the processes (each writes its own cache parts; the main process merges them and writes
the predictions file, :mod:`mint.artifacts.predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class PredictJob:
    """What ``mint predict`` does: answer every task of ``suite`` with ``model`` in each of ``modes`` (on the
    ``split``, at most ``max_samples`` a task, sampled with ``seed``) into ``out``, in batches of
    ``batch_size`` on ``device`` (with ``dtype``, ``device_map`` and ``attn_implementation``); ``features``:
    also pool each modality's features; ``text_only_image``: the text-only pass's image ablation;
    ``max_new_tokens`` / ``num_beams``: open answers' generation; ``cache_dir``: the work cache (default
    ``.mint-cache`` beside ``out``); ``in_context`` demonstrations chosen by ``demo_selection``."""

    suite: str
    model: str
    out: Path
    modes: str = DEFAULT_MODES
    split: str = "test"
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "float32"
    device_map: str | None = None
    attn_implementation: str | None = None
    features: bool = True
    max_samples: int | None = None
    seed: int = 0
    text_only_image: str = "auto"
    max_new_tokens: int = 16
    num_beams: int = 1
    cache_dir: Path | None = None
    in_context: int = 0
    demo_selection: str = "random"


def run_predict(
    job: PredictJob | None = None, *, progress: bool = True, log=None, **fields: Any
) -> dict[str, Any]:
    """Predict ``job`` (or a :class:`PredictJob` of ``fields``) into ``job.out`` (+ sidecar); return the
    metadata written (with ``main_process``: False on the other processes of a sharded run, which write
    nothing)."""
    job = job if job is not None else PredictJob(**fields)
    out = Path(job.out)
    in_context = check_in_context(job.in_context, job.demo_selection)
    mode_list = parse_modes(job.modes)
    caps = {"max_test": job.max_samples} if job.split == "test" else {"max_train": job.max_samples}
    source = resolve_model(job.model)  # a model that cannot be had fails before the suite is built
    tasks = load_suite(job.suite, seed=job.seed, **caps)
    torch.manual_seed(job.seed)
    shards = Shards.launched(job.device)
    load = LoadOptions(job.dtype, job.device_map, job.attn_implementation).check(job.device, shards.count)
    vlm = load_model(
        job.model,
        device=job.device,
        dtype=job.dtype,
        ablation=Ablation(text_only_image=job.text_only_image),
        max_new_tokens=job.max_new_tokens,
        device_map=job.device_map,
        attn_implementation=job.attn_implementation,
    )
    vlm.num_beams = job.num_beams
    check_multi_image(vlm, tasks, in_context)
    cache_root = Path(job.cache_dir) if job.cache_dir is not None else out.parent / ".mint-cache"
    cache = PredictionCache(cache_root, model_setting(vlm, job.model, source, job.dtype, load.record()))
    rows, counts = predict_suite(
        vlm,
        tasks,
        cache,
        modes=mode_list,
        split=job.split,
        batch_size=job.batch_size,
        features=job.features,
        progress=progress,
        log=log,
        in_context=in_context,
        demo_selection=job.demo_selection,
        demo_seed=job.seed,
        shards=shards,
    )
    meta = {
        **_settings(job, vlm, source, mode_list, load),
        "tasks": {
            t.name: {
                "n": len(t.split(job.split)),
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
        meta["in_context"] = in_context_setting(in_context, job.demo_selection, job.seed)
    if shards.is_main:
        write_predictions(out, rows, meta)
    meta["main_process"] = shards.is_main
    return meta


def _settings(job: PredictJob, vlm: Any, source: str, modes: list[str], load: LoadOptions) -> dict[str, Any]:
    """The sidecar's record of how the predictions were made (model, split, modes, scoring, features)."""
    beams, tokens = job.num_beams, job.max_new_tokens
    return {
        "command": "predict",
        "suite": str(job.suite),
        "model": job.model,
        "model_source": source,
        "model_type": vlm.model_type,
        "split": job.split,
        "modes": modes,
        "seed": job.seed,
        "dtype": job.dtype,
        "device": str(vlm.device),
        **{k: v for k, v in load.record().items() if k != "dtype"},
        "batch_size": job.batch_size,
        "max_samples": job.max_samples,
        "ablation": vlm.ablation_settings(),
        "scoring": {
            "closed": "argmax of the total log-prob of each answer + eos (teacher forcing)",
            "open": ("greedy generation" if beams == 1 else f"beam search ({beams} beams)")
            + f", at most {tokens} new tokens, batched with left padding",
        },
        "generation": {"max_new_tokens": tokens, "num_beams": beams, "do_sample": False},
        "features": (
            {
                "image": "mean-pooled projected image tokens (image-only pass)",
                "text": "mean-pooled last-layer hidden states of the text tokens (text-only pass)",
            }
            if job.features
            else None
        ),
    }
