"""``--tower auto`` against language-only LoRA on the default suite: mean test accuracy and trainable parameters.

Both settings tune the same groups with the same seed, data, steps and LoRA shape; only where LoRA goes differs
(auto: per group from the tasks' profiles, see ``mint.tuning.towers``). Profiles: ``--profiles profiles.json``
(from ``mint profile``), else the suite's own design labels (each built-in task's ``kind`` / ``dominant``), which
is what a profile of a well-trained backbone should recover. Groups: ``--groups groups.json``, else both of
``interaction`` (one group per interaction type: what MINT's 1-D cut-points give, image- and text-unique tasks
together) and ``dominant`` (uniqueness split by dominant modality), each compared on its own. Backbone: the embedded
``tiny`` if built, else the tiny random LLaVA of ``tests/helpers_models.py`` (the script says which).

    python bench/bench_tower.py [--max-train 64] [--max-test 50] [--epochs 2] [--seed 0] [--grouping dominant]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench_env import ROOT  # first: one thread and no network before torch is imported


def resolve_model(spec: str, tmp: Path) -> tuple[str, str]:
    """(model spec, description): ``tiny`` if the embedded backbone is built, else a tiny random LLaVA."""
    from mint.models import TINY_DIR

    if spec != "tiny" or (TINY_DIR / "config.json").is_file():
        return spec, f"{spec} (load_model)"
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers_models import make_tiny_llava

    return make_tiny_llava(
        tmp
    ), "tiny random LLaVA from tests/helpers_models.py (embedded tiny not built here)"


def design_profiles(tasks: list) -> dict:
    """A profiles.json payload from the built-in tasks' design labels (``kind``, ``dominant``)."""
    out = {}
    for t in tasks:
        if t.kind not in ("redundancy", "uniqueness", "synergy"):
            raise SystemExit(f"task {t.name} has no design label (kind={t.kind!r}); pass --profiles")
        out[t.name] = {
            "interaction": t.kind,
            "dominant_modality": t.dominant if t.kind == "uniqueness" else None,
        }
    return {"config": {"modalities": ["image", "text"], "source": "suite design labels"}, "tasks": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--suite", default="builtin:default")
    ap.add_argument("--profiles", type=Path)
    ap.add_argument("--groups", type=Path)
    ap.add_argument(
        "--grouping",
        choices=("interaction", "dominant", "both"),
        default="both",
        help="default groupings to compare on (without --groups)",
    )
    ap.add_argument("--max-train", type=int, default=64)
    ap.add_argument("--max-test", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from mint.io import read_json
    from mint.tasks import load_suite
    from mint.tuning import load_groups
    from mint.tuning.towers import group_towers

    tasks = load_suite(args.suite, seed=args.seed, max_train=args.max_train, max_test=args.max_test)
    profiles = read_json(args.profiles) if args.profiles else design_profiles(tasks)
    groupings: dict[str, dict[str, list[str]]] = {}
    if args.groups:
        groupings[str(args.groups)] = load_groups(args.groups, [t.name for t in tasks])["groups"]
    for kind in ("interaction", "dominant") if not args.groups else ():
        if args.grouping not in (kind, "both"):
            continue
        groups: dict[str, list[str]] = {}
        for t in tasks:
            p = profiles["tasks"][t.name]
            name = p["interaction"]
            if kind == "dominant" and name == "uniqueness" and p.get("dominant_modality"):
                name = f"uniqueness_{p['dominant_modality']}"
            groups.setdefault(name, []).append(t.name)
        groupings[kind] = groups
    with tempfile.TemporaryDirectory() as tmp:
        model, described = resolve_model(args.model, Path(tmp))
        print(f"backbone: {described}")
        print(
            f"suite: {args.suite}, {len(tasks)} tasks, {args.max_train} train / {args.max_test} test per task; "
            f"profiles: {args.profiles or 'suite design labels'}; seed {args.seed}, {args.epochs} epochs, "
            f"batch {args.batch_size}, lr {args.lr}, rank {args.rank}; {platform.processor() or platform.machine()}, "
            "1 thread"
        )
        for label, groups in groupings.items():
            compare(label, groups, group_towers(groups, profiles), tasks, model, args, Path(tmp))


def compare(
    label: str,
    groups: dict[str, list[str]],
    towers: dict[str, str],
    tasks: list,
    model: str,
    args: argparse.Namespace,
    tmp: Path,
) -> None:
    """Tune ``groups`` language-only and tower-auto (same seed, data and steps); print them side by side."""
    from mint.models import load_model
    from mint.tuning import TuneConfig, evaluate_run, tune_groups

    print(f"\n== grouping: {label}")
    for g, members in groups.items():
        print(f"  group {g}: {len(members)} tasks -> auto tower {towers[g]}")
    rows = {}
    for setting in ("language", "auto"):
        cfg = TuneConfig(
            tower=setting,
            rank=args.rank,
            lr=args.lr,
            epochs=args.epochs,
            batch_size=args.batch_size,
            seed=args.seed,
            checkpoint_every=0,
        )
        vlm = load_model(model)
        run = tmp / f"{label.replace('/', '_')}-{setting}"
        t0 = time.perf_counter()
        tune = tune_groups(
            vlm,
            tasks,
            groups,
            run,
            cfg,
            progress=False,
            meta={"suite": args.suite, "model": model},
            towers=towers if setting == "auto" else None,
        )
        seconds = time.perf_counter() - t0
        ev = evaluate_run(run, tasks, vlm=vlm, zero_shot=setting == "language", progress=False)
        if "zero_shot" in ev:  # the backbone alone, for scale
            rows["zero_shot"] = {
                "mean": ev["zero_shot"]["mean"],
                "trainable_params": 0,
                "steps": 0,
                "train_seconds": 0.0,
                "wall_seconds": 0.0,
                "tasks": {t: v["score"] for t, v in ev["zero_shot"]["tasks"].items()},
            }
        rows[setting] = {
            "mean": ev["mean"],
            "tasks": {t: v["score"] for t, v in ev["tasks"].items()},
            "trainable_params": tune["trainable_params"],
            "steps": sum(a["steps"] for a in tune["adapters"].values()),
            "train_seconds": tune["train_seconds"],
            "wall_seconds": round(seconds, 1),
        }
    names = list(rows)
    print()
    print(f"{'':24}" + "".join(f"{n:>14}" for n in names))
    print(f"{'mean test accuracy':24}" + "".join(f"{rows[n]['mean']:>14.4f}" for n in names))
    print(f"{'trainable params':24}" + "".join(f"{rows[n]['trainable_params']:>14d}" for n in names))
    print(f"{'optimizer steps':24}" + "".join(f"{rows[n]['steps']:>14d}" for n in names))
    print(f"{'train seconds':24}" + "".join(f"{rows[n]['train_seconds']:>14.1f}" for n in names))
    print()
    print(f"{'task':20}{'group':>16}" + "".join(f"{n:>14}" for n in names))
    for g, members in groups.items():
        for t in members:
            print(f"{t:20}{g[:14]:>16}" + "".join(f"{rows[n]['tasks'][t]:>14.3f}" for n in names))
    print()
    print(
        json.dumps(
            {
                "towers": towers,
                "rows": {n: {k: v for k, v in r.items() if k != "tasks"} for n, r in rows.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
