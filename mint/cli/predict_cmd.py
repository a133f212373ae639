"""``mint predict``: run a model over a task suite in the three modality modes.

Writes the predictions JSONL of docs/design.md, file formats (with ``answer`` and ``features``) and a sidecar
``<out>.meta.json`` (model, ablation settings, seed, split, tasks). Work is cached per (model, task, mode)
in ``--cache-dir`` (default: ``.mint-cache`` beside the output), so a killed run resumes and a re-run
does no model work. Under ``accelerate launch`` / ``torchrun`` the samples are split across the processes
(each writes its own cache parts; the main process merges them and writes the output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mint.cli.types import bounded_int
from mint.models.devices import DEVICE_HELP
from mint.models.load_options import LoadOptions, loading_options
from mint.models.prompts import TEXT_ONLY_IMAGE
from mint.seeds import seed_type
from mint.tasks.demos import DEMO_SELECTION

DEFAULT_MODES = "both,image,text"


def model_options(f):
    """The options shared by ``mint predict`` and ``mint profile --suite --model``."""
    opts = [
        click.option(
            "--model",
            "model",
            default="tiny",
            show_default=True,
            metavar="M",
            help="tiny (the embedded backbone), a local model folder, or a cached Hugging Face id.",
        ),
        click.option("--modes", default=DEFAULT_MODES, show_default=True, help="Modality modes to run."),
        click.option("--split", type=click.Choice(["test", "train"]), default="test", show_default=True),
        click.option("--batch-size", default=16, show_default=True, type=bounded_int(min=1)),
        click.option("--device", default="auto", show_default=True, help=DEVICE_HELP),
        click.option(
            "--dtype",
            type=click.Choice(["float32", "bfloat16", "float16", "auto"]),
            default="float32",
            show_default=True,
        ),
        click.option(
            "--max-samples",
            type=bounded_int(min=1),
            default=None,
            help="At most N samples per task (seeded draw).",
        ),
        click.option(
            "--text-only-image",
            type=click.Choice(TEXT_ONLY_IMAGE),
            default="auto",
            show_default=True,
            help="Text-only pass: no image, a blank image, or auto (blank only for models that need one).",
        ),
        click.option(
            "--max-new-tokens",
            default=16,
            show_default=True,
            type=bounded_int(min=1),
            help="Generation length (new tokens at most) for open-answer tasks.",
        ),
        click.option(
            "--num-beams",
            default=1,
            show_default=True,
            type=bounded_int(min=1),
            help="Open-answer tasks: 1 = greedy decoding, more = beam search with that many beams.",
        ),
        click.option(
            "--cache-dir",
            default=None,
            metavar="DIR",
            help="Cache of per-(model, task, mode) parts [default: .mint-cache beside the output].",
        ),
        click.option(
            "--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr."
        ),
        click.option(
            "--in-context",
            "in_context",
            default=0,
            show_default=True,
            type=bounded_int(min=0),
            metavar="K",
            help="Demonstrations (image, question, answer) from the task's train split before every prompt.",
        ),
        click.option(
            "--demo-selection",
            type=click.Choice(DEMO_SELECTION),
            default="random",
            show_default=True,
            help="random (seeded per sample) or similar (nearest train samples, pixel + word embedding).",
        ),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return loading_options(f)


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
    import torch

    from mint.models import Ablation, load_model, resolve_model
    from mint.models.runner import (
        PredictionCache,
        Shards,
        model_setting,
        parse_modes,
        predict_suite,
        write_predictions,
    )
    from mint.tasks import load_suite
    from mint.tasks.demos import check_in_context, check_multi_image, in_context_setting

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


@click.command("predict")
@click.option("--suite", required=True, metavar="S", help="A suite file, or builtin:default / builtin:mini.")
@click.option("--out", required=True, metavar="FILE", help="Where to write the predictions JSONL.")
@model_options
@click.option(
    "--features/--no-features",
    default=True,
    show_default=True,
    help="Also write pooled per-modality features (for the PID).",
)
@click.option("--seed", default=0, show_default=True, type=seed_type(), help="Seed for sampling the suite.")
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def command(
    suite: str,
    out: str,
    model: str,
    modes: str,
    split: str,
    batch_size: int,
    device: str,
    dtype: str,
    max_samples: int | None,
    text_only_image: str,
    max_new_tokens: int,
    cache_dir: str | None,
    progress: bool,
    features: bool,
    seed: int,
    force: bool,
    num_beams: int = 1,
    in_context: int = 0,
    demo_selection: str = "random",
    device_map: str | None = None,
    attn_implementation: str | None = None,
) -> None:
    """Predict every task of a suite with the image, the text, and both."""
    from mint.io import allow_replacing, check_output
    from mint.models.runner import meta_path

    allow_replacing(force)
    check_output(out, force)
    check_output(meta_path(out), force)
    meta = run_predict(
        suite=suite,
        model=model,
        out=out,
        modes=modes,
        split=split,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        device_map=device_map,
        attn_implementation=attn_implementation,
        features=features,
        max_samples=max_samples,
        seed=seed,
        text_only_image=text_only_image,
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        cache_dir=cache_dir,
        progress=progress,
        in_context=in_context,
        demo_selection=demo_selection,
    )
    if not meta["main_process"]:
        return  # the main process merged the shards and wrote the output
    n = sum(t["n"] for t in meta["tasks"].values())
    parts = meta["parts"]
    click.echo(
        f"Predicted {len(meta['tasks'])} task(s), {n} samples x {len(meta['modes'])} modes "
        f"({parts['computed']} parts computed, {parts['cached']} from cache) -> {out}",
        err=True,
    )
