"""The frozen path of a training step, cached and cheapened: collation and image features once per example, and
mint's LoRA dropout.

Side by side in one process, one torch thread, CPU, on the demo's tune settings (``mint/configs/demo.yaml``:
batch 16, 2 epochs, LoRA rank 8, dropout 0.05) and the embedded default suite:

1. **Collation** of every batch of an epoch, for ``--epochs`` epochs: ``collate_examples`` each time (what the
   trainers did) against :class:`mint.tuning.data.CollateCache` (each batch collated once, later batches
   stacked from the held rows).
2. **LoRA dropout** on the inputs of a LoRA layer: peft's ``torch.nn.Dropout`` against
   :class:`mint.tuning.lora.MaskDropout` (the same distribution of masks, a quarter of the random numbers).
3. **Training end to end**: ``tune_groups`` (the suite's tasks in ``--groups`` groups, language tower) with all
   three switched off (``COLLATE_CACHE_BYTES = 0``, peft's dropout kept, image features recomputed) against the
   default; ``train_seconds`` summed over groups, median of ``--repeats`` alternating runs.
4. **Image features kept** (:class:`mint.tuning.frozen_features.FrozenFeatures`): the same language-only
   ``tune_groups`` with the vision tower and projector run on every batch (``VISION_PATHS`` emptied, so every
   architecture takes the normal path) against each example's image features computed once; the collation cache
   and mint's dropout on in both; median of ``--repeats`` alternating runs.

Every line prints the ratio old / new (above 1: the new path is faster).

    python bench/bench_frozen_cache.py [--model tiny] [--per-task 48] [--groups 2] [--epochs 2] [--repeats 3]
    python bench/bench_frozen_cache.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from bench_env import resolve_model  # first: one thread and no network before torch is imported

# isort: split
import torch


def collation(vlm, examples: list, args: argparse.Namespace) -> tuple[float, float]:
    from mint.tuning.data import CollateCache, collate_examples, epoch_batches

    plans = [epoch_batches(examples, 16, 0, "bench", e) for e in range(args.epochs)]

    def again() -> None:
        for plan in plans:
            for idx in plan:
                collate_examples(vlm, [examples[i] for i in idx])

    def cached() -> None:
        cache = CollateCache(vlm)
        for plan in plans:
            for idx in plan:
                cache([examples[i] for i in idx])

    return _median_pair(again, cached, args.repeats)


def dropout(args: argparse.Namespace) -> tuple[float, float]:
    from mint.tuning.lora import MaskDropout

    x = torch.randn(16, 96, 64)  # a batch of 16 prompts of ~96 tokens through a 64-wide layer
    old, new = torch.nn.Dropout(0.05).train(), MaskDropout(0.05).train()
    n = 2000 if not args.quick else 200
    return _median_pair(lambda: [old(x) for _ in range(n)], lambda: [new(x) for _ in range(n)], args.repeats)


def training(model: str, tasks: list, args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    import mint.tuning.data as data_mod
    import mint.tuning.frozen_features as ff_mod
    import mint.tuning.trainer as trainer_mod
    from mint.models import load_model
    from mint.tuning import TuneConfig, tune_groups

    names = [t.name for t in tasks]
    groups = {f"group_{i}": names[i :: args.groups] for i in range(args.groups)}
    config = TuneConfig(rank=8, alpha=16, lr=0.003, epochs=args.epochs, batch_size=16, checkpoint_every=0)
    real_dropout, real_limit, real_paths = (
        trainer_mod.use_mask_dropout,
        data_mod.COLLATE_CACHE_BYTES,
        ff_mod.VISION_PATHS,
    )

    def run(new: bool) -> float:
        trainer_mod.use_mask_dropout = real_dropout if new else (lambda model: 0)
        data_mod.COLLATE_CACHE_BYTES = real_limit if new else 0
        ff_mod.VISION_PATHS = real_paths if new else {}
        try:
            vlm = load_model(model)
            out = tmp / ("new" if new else "old")
            result = tune_groups(vlm, tasks, groups, out, config, force=True, progress=False)
            return float(result["train_seconds"])
        finally:
            trainer_mod.use_mask_dropout, data_mod.COLLATE_CACHE_BYTES = real_dropout, real_limit
            ff_mod.VISION_PATHS = real_paths

    old, new = [], []
    for _ in range(args.repeats):
        old.append(run(False))
        new.append(run(True))
    return statistics.median(old), statistics.median(new)


def kept_features(model: str, tasks: list, args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    import mint.tuning.frozen_features as ff_mod
    from mint.models import load_model
    from mint.tuning import TuneConfig, tune_groups

    names = [t.name for t in tasks]
    groups = {f"group_{i}": names[i :: args.groups] for i in range(args.groups)}
    config = TuneConfig(rank=8, alpha=16, lr=0.003, epochs=args.epochs, batch_size=16, checkpoint_every=0)
    real = ff_mod.VISION_PATHS

    def run(kept: bool) -> float:
        ff_mod.VISION_PATHS = real if kept else {}
        try:
            vlm = load_model(model)
            out = tmp / ("kept" if kept else "recomputed")
            result = tune_groups(vlm, tasks, groups, out, config, force=True, progress=False)
            return float(result["train_seconds"])
        finally:
            ff_mod.VISION_PATHS = real

    recomputed, kept = [], []
    for _ in range(args.repeats):
        recomputed.append(run(False))
        kept.append(run(True))
    return statistics.median(recomputed), statistics.median(kept)


def _median_pair(old, new, repeats: int) -> tuple[float, float]:
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(repeats):  # alternating, so that a load change hits both
        for name, f in (("old", old), ("new", new)):
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return statistics.median(times["old"]), statistics.median(times["new"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--per-task", type=int, default=48, help="training samples per task")
    p.add_argument("--groups", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a smoke run: 8 samples per task, one repeat")
    args = p.parse_args()
    if args.quick:
        args.per_task, args.repeats = 8, 1

    from mint.tasks import load_suite
    from mint.tuning.data import group_examples

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"torch {torch.__version__}, 1 thread; {args.per_task} samples per task, {args.epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        model = resolve_model(args.model, Path(tmp))
        tasks = load_suite("builtin:default", seed=0, max_train=args.per_task)
        from mint.models import load_model

        vlm = load_model(model)
        old, new = collation(vlm, group_examples(tasks), args)
        print(f"collation, {args.epochs} epochs: re-collated / cached = {old / new:.2f}x")
        old, new = dropout(args)
        print(f"LoRA dropout on a (16, 96, 64) input: torch Dropout / MaskDropout = {old / new:.2f}x")
        old, new = training(model, tasks, args, Path(tmp))
        print(f"tune_groups train_seconds, {args.groups} groups: before / now = {old / new:.2f}x")
        old, new = kept_features(model, tasks, args, Path(tmp))
        print(
            f"tune_groups train_seconds, {args.groups} language-only groups: image features recomputed / kept "
            f"= {old / new:.2f}x"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
