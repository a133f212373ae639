"""Continual methods compared: every ``--continual`` method on the embedded default suite, stages in the MINT
grouping's order and in a random order, the five continual metrics with 95% intervals over seeds.

The MINT grouping is computed first, as the pipeline does (``tiny`` backbone, predictions on the train split,
profiles, ``mint`` clustering with ``k: auto``); then, for each seed, each stage order and each method, one
``tune_continual`` run with the same small settings (one torch thread, CPU). The random order is a seeded
permutation of the MINT groups (seed 1000 + run seed). Intervals: mean +- t(0.975, n-1) * sd / sqrt(n) over seeds.

    python bench/bench_continual.py [--seeds 0 1 2] [--max-train 48] [--max-test 40] [--epochs 1]
    python bench/bench_continual.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import bench_env  # noqa: F401  first: one thread and no network before torch is imported
import numpy as np

METHODS = ("sequential", "per-group", "replay", "o-lora", "mr-lora", "moe-lora", "reglora")
METRICS = ("fine_tune_accuracy", "final_accuracy", "average_accuracy", "backward_transfer", "forgetting")
SHORT = {
    "fine_tune_accuracy": "fine-tune",
    "final_accuracy": "final",
    "average_accuracy": "average",
    "backward_transfer": "BWT",
    "forgetting": "forgetting",
}


def mint_groups(model: str, suite: str, tmp: Path, samples: int) -> dict[str, list[str]]:
    """The MINT grouping of ``suite`` (groups.json order), as the pipeline's demo settings compute it."""
    from mint.clustering import group
    from mint.models.predict import run_predict
    from mint.profiling import profile_predictions

    preds = tmp / "predictions.jsonl"
    run_predict(
        suite=suite, model=model, out=preds, split="train", batch_size=32, max_samples=samples, progress=False
    )
    profiles = profile_predictions(preds, samples=10, size=min(50, samples), seed=0, decide_by="corrected")
    return group(profiles, method="mint", k="auto", seed=0, bootstrap=20)["groups"]


def interval(values: list[float]) -> tuple[float, float]:
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    half = float(stats.t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5
    return mean, half


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--suite", default="builtin:default")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--max-train", type=int, default=48)
    ap.add_argument("--max-test", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--quick", action="store_true", help="one seed, 16 train / 10 test samples per task")
    ap.add_argument("--json", type=Path, help="also write the per-run metrics here")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.max_train, args.max_test = [0], 16, 10

    from mint.models import load_model
    from mint.tasks import load_suite
    from mint.tuning import TuneConfig
    from mint.tuning.continual import tune_continual

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        groups = mint_groups(args.model, args.suite, tmp, samples=max(args.max_train, 50))
        print("MINT groups (stage order):", json.dumps(groups))
        rows: dict[tuple[str, str], dict[str, list[float]]] = {}
        orders: dict[str, list[str]] = {}
        for seed in args.seeds:
            names = list(groups)
            rng = np.random.default_rng(1000 + seed)
            random_order = [names[i] for i in rng.permutation(len(names))]
            for order_name, order in (("MINT", names), ("random", random_order)):
                orders[f"{order_name} (seed {seed})"] = order
                tasks = load_suite(args.suite, seed=seed, max_train=args.max_train, max_test=args.max_test)
                for method in args.methods:
                    cfg = TuneConfig(
                        continual=method,
                        stage_order=",".join(order),
                        seed=seed,
                        epochs=args.epochs,
                        batch_size=args.batch_size,
                        lr=args.lr,
                        max_train=args.max_train,
                        checkpoint_every=0,
                    )
                    run = tmp / f"{method}-{order_name}-{seed}"
                    result = tune_continual(
                        load_model(args.model), tasks, groups, run, cfg, progress=False, eval_batch_size=32
                    )
                    metrics = result["continual"]["metrics"]
                    cell = rows.setdefault((order_name, method), {m: [] for m in METRICS})
                    for m in METRICS:
                        cell[m].append(metrics[m])
                    print(
                        f"  seed {seed} {order_name:6s} {method:10s} "
                        + " ".join(f"{SHORT[m]} {metrics[m]:+.3f}" for m in METRICS),
                        flush=True,
                    )
    seconds = time.perf_counter() - t0

    print()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, {platform.system()}, one torch thread"
    )
    print(f"date: {started:%Y-%m-%d %H:%M} UTC, {seconds / 60:.1f} min in all")
    print(
        f"settings: {args.suite}, {args.model}, max_train {args.max_train}, max_test {args.max_test}, "
        f"epochs {args.epochs}, batch {args.batch_size}, lr {args.lr}, seeds {args.seeds}"
    )
    print("stage orders:", json.dumps(orders))
    print()
    print("| order | method | " + " | ".join(SHORT[m] for m in METRICS) + " |")
    print("|---|---|" + "---|" * len(METRICS))
    for (order_name, method), cell in rows.items():
        parts = []
        for m in METRICS:
            mean, half = interval(cell[m])
            parts.append(f"{mean:.3f}" + ("" if half != half else f" ± {half:.3f}"))
        print(f"| {order_name} | {method} | " + " | ".join(parts) + " |")
    if args.json:
        args.json.write_text(
            json.dumps({f"{o}/{m}": cell for (o, m), cell in rows.items()}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
