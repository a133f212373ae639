"""The whole experiment: `mint run --jobs N` against one peft + HF ``Trainer`` script per run.

The experiment is the demo's (``mint/configs/demo.yaml``): the groupings ``mint``, ``all``, ``random`` and
``single``, each tuned with the demo's seeds and evaluated on every task, plus the zero-shot backbone;
``--max-train``, ``--max-test`` and ``--epochs`` scale it down (the values used are printed). Both sides
start from the same prepared folder (predictions, profiles and the groupings, made once by
``mint run --stage prepare`` and not timed), so both tune and evaluate the same groups on the same samples
with the same LoRA options.

- **mint**: ``mint run CONFIG --jobs N`` in a fresh process: every ``<row>/seed-<s>`` stage (tune the
  grouping's adapters, evaluate every task) in N worker processes, then the report; with
  ``--sequential`` also plain ``mint run CONFIG`` (one process) on a copy of the prepared folder.
- **baseline**: what a user without mint runs: one script per grouping and seed, one after another, each
  a fresh Python process that loads the backbone and, per group, wraps a fresh copy in
  ``peft.get_peft_model``, trains it with ``transformers.Trainer`` (same examples, prompts, answer-only
  labels, batch size, epochs, learning rate, LoRA rank and targets), saves the adapter and scores the
  group's tasks by batched greedy ``generate`` with left padding (exact match); the first script also
  scores the bare backbone.

It prints the wall time ratio (baseline over mint) measured side by side in one run, the mean accuracy of
each side (they score differently: mint compares the closed answers' likelihoods, the baseline generates),
the machine's load average before and after, and the date.

    python bench/bench_experiment.py [--jobs 2] [--max-train 48] [--max-test 32] [--epochs 1] [--sequential]
    python bench/bench_experiment.py --quick        # two groupings, two seeds, few samples
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_env import ROOT, trainer_arguments  # first: one thread and no network before torch is imported


def baseline_run(
    model: str, out: Path, groups_file: Path, seed: int, tune: dict, caps: dict, zero: bool
) -> None:
    """One grouping and seed, as a plain peft + Trainer script would do it (runs in a child process)."""
    from peft import get_peft_model
    from transformers import Trainer

    from mint.models import load_model
    from mint.profiling.similarity import normalize_answer
    from mint.tasks import load_suite
    from mint.tuning import TuneConfig
    from mint.tuning.data import collate_examples, group_examples
    from mint.tuning.lora import lora_config, lora_targets

    cfg = TuneConfig.from_dict({**tune, "seed": seed}, "bench")
    tasks = {
        t.name: t
        for t in load_suite("builtin:default", seed=0, max_train=caps["max_train"], max_test=caps["max_test"])
    }
    groups = json.loads(groups_file.read_text())["groups"]
    scores: dict[str, float] = {}

    def score(vlm, names: list[str]) -> dict[str, float]:
        sys.path.insert(0, str(ROOT / "bench"))
        from bench_predict import baseline_batched

        vlm.model.eval()
        result = {}
        for name in names:
            task = tasks[name]
            answers = baseline_batched(vlm, task, task.test, "both", 32)
            result[name] = statistics.fmean(
                normalize_answer(a) == normalize_answer(str(s.answer)) for a, s in zip(answers, task.test)
            )
        return result

    if zero:
        scores.update({f"zero_shot/{k}": v for k, v in score(load_model(model), list(tasks)).items()})
    for group, members in groups.items():
        vlm = load_model(model)
        lora = lora_config(cfg.rank, cfg.alpha, cfg.dropout, lora_targets(vlm.model, cfg.tower))
        vlm.model = get_peft_model(vlm.model, lora)
        args = trainer_arguments(out / group, cfg, seed)
        examples = group_examples([tasks[t] for t in members], cfg.max_train)
        trainer = Trainer(
            model=vlm.model,
            args=args,
            train_dataset=examples,
            data_collator=lambda feats, vlm=vlm: collate_examples(vlm, feats, cfg.mode),
        )
        trainer.train()
        vlm.model.save_pretrained(str(out / group / "adapter"))
        scores.update(score(vlm, members))
    (out / "scores.json").write_text(json.dumps(scores))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_run":
        spec = json.loads(sys.argv[2])
        baseline_run(
            spec["model"],
            Path(spec["out"]),
            Path(spec["groups"]),
            spec["seed"],
            spec["tune"],
            spec["caps"],
            spec["zero"],
        )
        return
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-train", type=int, default=48, help="train samples per task (the demo: 200)")
    ap.add_argument("--max-test", type=int, default=32, help="test samples per task (the demo: 100)")
    ap.add_argument("--epochs", type=int, default=1, help="epochs (the demo: 2)")
    ap.add_argument(
        "--sequential", action="store_true", help="also time `mint run` in one process (no --jobs)"
    )
    ap.add_argument(
        "--quick", action="store_true", help="groupings mint and all, seeds 0 and 1, 16/8 samples"
    )
    args = ap.parse_args()

    demo = yaml.safe_load((ROOT / "mint" / "configs" / "demo.yaml").read_text())
    if args.quick:
        args.max_train, args.max_test = 16, 8
        demo["seeds"], demo["cluster"]["methods"] = [0, 1], ["mint", "all"]
    demo.update(max_train=args.max_train, max_test=args.max_test, threads=1)
    demo["predict"]["max_samples"] = min(demo["predict"]["max_samples"], args.max_train)
    demo["tune"]["epochs"] = args.epochs
    tmp = Path(tempfile.mkdtemp(prefix="bench_experiment_"))
    out = tmp / "mint"
    demo["out"] = str(out)
    config = tmp / "experiment.yaml"
    config.write_text(yaml.safe_dump(demo))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    mint = [sys.executable, "-m", "mint.cli", "run", str(config), "--no-progress"]
    methods, seeds = demo["cluster"]["methods"], demo["seeds"]
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores; experiment: groupings "
        f"{', '.join(methods)} x seeds {seeds} on builtin:default + tiny, max_train {args.max_train}, "
        f"max_test {args.max_test}, {args.epochs} epoch(s), batch {demo['tune']['batch_size']}, one thread per process"
    )
    subprocess.run([*mint, "--stage", "prepare"], env=env, check=True, capture_output=True)
    if args.sequential:  # the same prepared folder, for `mint run` in one process
        shutil.copytree(out, tmp / "mint-sequential")

    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run([*mint, "--jobs", str(args.jobs)], env=env, check=True, capture_output=True)
    mint_s = time.perf_counter() - t0
    report = json.loads((out / "report.json").read_text())

    seq_s = None
    if args.sequential:
        t0 = time.perf_counter()
        subprocess.run(
            [*mint, "--out", str(tmp / "mint-sequential")], env=env, check=True, capture_output=True
        )
        seq_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    base_scores: dict[str, list[float]] = {}
    for i, (method, seed) in enumerate((m, s) for m in methods for s in seeds):
        run_out = tmp / "baseline" / method / f"seed-{seed}"
        run_out.mkdir(parents=True)
        spec = {
            "model": demo["model"],
            "out": str(run_out),
            "groups": str(out / "groups" / f"{method}.json"),
            "seed": seed,
            "tune": {**demo["tune"], "max_train": args.max_train, "checkpoint_every": 0},
            "caps": {"max_train": args.max_train, "max_test": args.max_test},
            "zero": i == 0,
        }
        subprocess.run(
            [sys.executable, __file__, "--_run", json.dumps(spec)], env=env, check=True, capture_output=True
        )
        for key, value in json.loads((run_out / "scores.json").read_text()).items():
            row = "zero_shot" if key.startswith("zero_shot/") else method
            base_scores.setdefault(row, []).append(value)
    base_s = time.perf_counter() - t0
    load1 = os.getloadavg()[0]

    runs = len(methods) * len(seeds)
    print(f"load average (1 min): {load0:.2f} before, {load1:.2f} after (other jobs share the machine)")
    print(f"mint run --jobs {args.jobs}: {runs} tune + evaluate stages and the report")
    print(f"baseline: {runs} peft + Trainer scripts, one after another")
    print(f"ratio baseline / mint --jobs {args.jobs} (wall time, side by side): {base_s / mint_s:.2f}x")
    if seq_s is not None:
        print(f"ratio baseline / mint in one process (no --jobs): {base_s / seq_s:.2f}x")
        print(f"ratio mint in one process / mint --jobs {args.jobs}: {seq_s / mint_s:.2f}x")
    print("mean accuracy per row (mint: closed-answer scoring; baseline: greedy generate, exact match):")
    for row in ["zero_shot", *methods]:
        ours = report["rows"].get(row, {}).get("mean")
        theirs = statistics.fmean(base_scores[row]) if row in base_scores else None
        print(
            f"  {row:<10} mint {ours if ours is None else f'{ours:.3f}'}   baseline {theirs if theirs is None else f'{theirs:.3f}'}"
        )


if __name__ == "__main__":
    main()
