"""``mint cluster``: group the tasks of a profiles.json and write groups.json."""

from __future__ import annotations

from pathlib import Path

import click

from mint.artifacts import Grouping, Profiles
from mint.cli.types import DEFAULT_MODEL, bounded_int
from mint.clustering import METHODS, group
from mint.clustering.affinity import affinity_grouping
from mint.clustering.methods import AFFINITY_METHODS
from mint.errors import MintError
from mint.io import allow_replacing, check_output
from mint.models import load_model
from mint.models.devices import DEVICE_HELP, single_process, world_size
from mint.models.load_options import LoadOptions, loading_options
from mint.models.runner import Shards
from mint.seeds import seed_type
from mint.tasks import load_suite

ALL_METHODS = (*METHODS, *AFFINITY_METHODS)
#: the methods whose per-task passes split over several processes
SPLIT_METHODS = ("gradient", "tag")


@click.command("cluster")
@click.argument("profiles", type=click.Path(path_type=Path), required=False)
@click.option("--method", default="mint", show_default=True, help=f"One of: {', '.join(ALL_METHODS)}.")
@click.option(
    "--k",
    "k",
    default="auto",
    show_default=True,
    help="Number of groups, or 'auto' (mint: interaction types; others: best silhouette).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="groups.json to write.")
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=seed_type(),
    help="Seed for random/kmeans/spectral and the bootstrap.",
)
@click.option("--split-uniqueness", is_flag=True, help="mint: split uniqueness by dominant modality.")
@click.option(
    "--like", type=click.Path(path_type=Path), help="random: copy the group sizes of this groups.json."
)
@click.option(
    "--bootstrap",
    default=200,
    show_default=True,
    type=bounded_int(),
    help="Resamples for the stability report (0 to skip).",
)
@click.option("--suite", help=f"{'/'.join(AFFINITY_METHODS)}: the task suite (file or builtin:<name>).")
@click.option(
    "--model",
    default=DEFAULT_MODEL,
    show_default=True,
    help=f"{'/'.join(AFFINITY_METHODS)}: the backbone ('tiny', a local folder or a Hugging Face id).",
)
@click.option(
    "--steps",
    default=8,
    show_default=True,
    type=bounded_int(),
    help="gradient: warm-up steps of the shared adapter; tag: lookahead steps averaged.",
)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Shared adapter learning rate.")
@click.option(
    "--batch-size", default=4, show_default=True, type=bounded_int(), help="Affinity batch size per task."
)
@click.option(
    "--max-samples", default=16, show_default=True, type=bounded_int(), help="Train samples per task used."
)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--dtype", default="float32", show_default=True)
@loading_options
@click.option("--force", is_flag=True, help="Overwrite an existing output.")
def command(
    profiles: Path | None,
    method: str,
    k: str,
    out: Path,
    seed: int,
    split_uniqueness: bool,
    like: Path | None,
    bootstrap: int,
    suite: str | None,
    model: str | None,
    steps: int,
    lr: float,
    batch_size: int,
    max_samples: int,
    device: str,
    dtype: str,
    force: bool,
    device_map: str | None = None,
    attn_implementation: str | None = None,
) -> None:
    """Group the tasks in PROFILES (a profiles.json) and write groups.json.

    The learned-affinity baselines (gradient, tag, instruction) need no profiles but --suite and --model.
    Under torchrun / accelerate launch, gradient and tag split their per-task passes over the processes
    (the first one writes the file); every other method runs in one process.
    """
    if method not in SPLIT_METHODS:
        single_process(f"mint cluster --method {method}")
    if method not in ALL_METHODS:
        raise MintError(f"unknown method {method!r} (choose from {', '.join(ALL_METHODS)})")
    allow_replacing(force)
    check_output(out, force)
    if method in AFFINITY_METHODS:
        load = LoadOptions(dtype, device_map, attn_implementation).check(device, world_size())
        grouping = _affinity(
            method,
            k,
            seed,
            device,
            load,
            suite=suite,
            model=model,
            steps=steps,
            lr=lr,
            batch_size=batch_size,
            max_samples=max_samples,
        )
        if not Shards.launched(device).is_main:
            return  # every process holds the same result; the first one writes it
        tail = ""
    else:
        if profiles is None:
            raise MintError(f"--method {method}: missing the PROFILES argument (a profiles.json)")
        grouping = group(
            Profiles.load(profiles),
            method=method,
            k=k,
            seed=seed,
            split_uniqueness=split_uniqueness,
            like=like,
            bootstrap=bootstrap,
        ).with_params(profiles=str(profiles), **({"like": str(like)} if like is not None else {}))
        stab = grouping.stability
        tail = (
            f"; same partition in {stab['same_partition']:.0%} of {stab['resamples']} resamples"
            if stab
            else ""
        )
    grouping.save(out, force=force)
    click.echo(f"wrote {out}: {method}, {_sizes(grouping)}{tail}")


def _affinity(
    method: str,
    k: str,
    seed: int,
    device: str,
    load: LoadOptions,
    *,
    suite: str | None,
    model: str | None,
    **training,
) -> Grouping:
    """Learned-affinity grouping of a suite's tasks with a shared LoRA adapter on ``model`` (``training``:
    ``steps``, ``lr``, ``batch_size``, ``max_samples``)."""
    if not suite or not model:
        raise MintError(f"--method {method}: needs --suite (it trains a shared adapter on --model)")
    tasks = load_suite(suite, seed=seed, max_train=training["max_samples"])
    vlm = load_model(
        model,
        device=device,
        dtype=load.dtype,
        device_map=load.device_map,
        attn_implementation=load.attn_implementation,
    )
    kk: int | str = k if k == "auto" else _int_k(k)
    return affinity_grouping(vlm, tasks, method, kk, seed=seed, **training).with_params(
        suite=suite, model=model
    )


def _sizes(grouping: Grouping) -> str:
    """``3 groups (a: 2, b: 1, c: 4)``."""
    groups = grouping.groups
    return f"{len(groups)} groups (" + ", ".join(f"{g}: {len(ts)}" for g, ts in groups.items()) + ")"


def _int_k(k: str) -> int:
    try:
        return int(k)
    except ValueError:
        raise MintError(f"--k: expected a number of groups or 'auto', got {k!r}") from None
