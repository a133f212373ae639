"""``mint predict``: run a model over a task suite in the three modality modes.

Writes the predictions JSONL of docs/design.md, file formats (with ``answer`` and ``features``) and a sidecar
``<out>.meta.json`` (model, ablation settings, seed, split, tasks) with
:func:`mint.models.predict.run_predict`, which caches the model work and shards it under ``accelerate launch``.
"""

from __future__ import annotations

import click

from mint.artifacts.predictions import meta_path
from mint.cli.types import DEFAULT_MODEL, bounded_int, progress_option
from mint.io import allow_replacing, check_output
from mint.models.devices import DEVICE_HELP
from mint.models.load_options import loading_options
from mint.models.predict import DEFAULT_MODES, run_predict
from mint.models.prompts import TEXT_ONLY_IMAGE
from mint.seeds import seed_type
from mint.tasks.demos import DEMO_SELECTION


def model_options(f):
    """The options shared by ``mint predict`` and ``mint profile --suite --model``."""
    opts = [
        click.option(
            "--model",
            "model",
            default=DEFAULT_MODEL,
            show_default=True,
            metavar="M",
            help="tiny (the embedded backbone), tiny-video / tiny-audio (the embedded video / audio backbones), "
            "a local model folder, or a cached Hugging Face id.",
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
        progress_option,
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
