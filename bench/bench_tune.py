"""Group-wise tuning: throughput against plain peft + HF ``Trainer``, memory of K adapters on one backbone.

1. **Throughput** (samples/s), side by side in one process, one torch thread, CPU: ``mint.tuning.tune_groups``
   (all K adapters on one resident backbone, one group after another) against, for each group, a fresh
   ``peft.get_peft_model`` + ``transformers.Trainer`` run of the same LoRA config on the same examples
   (same prompts and answer-only labels, same batch size, epochs, lr and schedule). Timed: adapter set-up,
   training and saving the adapters; not timed: loading the backbone. Median of ``--repeats`` alternating runs.
   The default runs enough optimizer steps per group (``--per-task 64 --epochs 2``: 32 steps) that the
   Trainer's fixed cost per run (set-up and end of training, printed) does not decide the ratio; the ratio
   of the training loops alone is printed beside it.
2. **Memory** of K adapters on one backbone: mint's ``attach_adapters`` against peft's own sharing
   (``get_peft_model`` for the first adapter, ``add_adapter`` for the others: also one backbone), and, for
   scale, K separately loaded backbones with one adapter each; K = 2, 4, 8, each in a fresh subprocess:
   parameter + buffer bytes, and the RSS growth from after the imports to after building the setting and one
   forward pass (nothing is freed in between, so this is its peak). The model is a LLaVA built from a config
   (``--hidden``, ``--layers``) so that its weights dominate RSS.

    python bench/bench_tune.py [--model tiny] [--groups 2] [--per-task 64] [--batch-size 8] [--epochs 2]
    python bench/bench_tune.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_env import resolve_model, trainer_arguments  # first: one thread, no network before torch

# isort: split
import torch


# ---------------------------------------------------------------------------------------------- throughput
def split_groups(tasks: list, k: int) -> dict[str, list[str]]:
    names = [t.name for t in tasks]
    return {f"group_{i}": names[i::k] for i in range(k)}


def run_mint(model: str, tasks: list, groups: dict, cfg, out: Path) -> tuple[float, float, int]:
    from mint.models import load_model
    from mint.tuning import tune_groups

    vlm = load_model(model)
    t0 = time.perf_counter()
    result = tune_groups(vlm, tasks, groups, out, cfg, force=True, progress=False)
    seconds = time.perf_counter() - t0
    return (
        seconds,
        result["train_seconds"],
        sum(a["examples"] for a in result["adapters"].values()) * cfg.epochs,
    )


def run_hf_trainer(model: str, tasks: list, groups: dict, cfg, out: Path) -> tuple[float, float, int]:
    """One plain peft + ``Trainer`` run per group, on a fresh copy of the backbone each."""
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer

    from mint.models import load_model
    from mint.tuning.data import collate_examples, group_examples
    from mint.tuning.targets import lora_targets

    by_name = {t.name: t for t in tasks}
    seconds, loop_seconds, samples = 0.0, 0.0, 0
    for g, members in groups.items():
        vlm = load_model(model)
        examples = group_examples([by_name[t] for t in members], cfg.max_train)
        t0 = time.perf_counter()
        lora = LoraConfig(
            r=cfg.rank,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=lora_targets(vlm.model, cfg.tower),
            bias="none",
        )
        vlm.model = get_peft_model(vlm.model, lora)
        args = trainer_arguments(out / g, cfg, cfg.seed)
        trainer = Trainer(
            model=vlm.model,
            args=args,
            train_dataset=examples,
            data_collator=lambda feats, vlm=vlm: collate_examples(vlm, feats, cfg.mode),
        )
        loop_seconds += trainer.train().metrics["train_runtime"]
        vlm.model.save_pretrained(str(out / g / "adapter"))
        seconds += time.perf_counter() - t0
        samples += len(examples) * cfg.epochs
    return seconds, loop_seconds, samples


def throughput(args: argparse.Namespace) -> None:
    from mint.tasks import load_suite
    from mint.tuning import TuneConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench_tune_"))
    model = resolve_model(args.model, tmp)
    tasks = load_suite(args.suite, seed=0, max_train=args.per_task, max_test=1)
    groups = split_groups(tasks, args.groups)
    cfg = TuneConfig(
        batch_size=args.batch_size,
        epochs=args.epochs,
        lr=1e-3,
        dropout=0.05,
        checkpoint_every=0,
        max_train=args.per_task,
    )
    print(
        f"model {model}; {len(tasks)} tasks x {args.per_task} train samples in {len(groups)} groups; "
        f"batch {cfg.batch_size}, {cfg.epochs} epoch(s), LoRA r={cfg.rank} on the {cfg.tower} tower"
    )
    runs: dict[str, list[float]] = {"mint": [], "hf": []}
    loops: dict[str, list[float]] = {"mint": [], "hf": []}
    samples = {}
    for r in range(args.repeats):
        order = ("mint", "hf") if r % 2 == 0 else ("hf", "mint")
        for name in order:
            fn = run_mint if name == "mint" else run_hf_trainer
            s, loop, n = fn(model, tasks, groups, cfg, tmp / f"{name}{r}")
            runs[name].append(s)
            loops[name].append(loop)
            samples[name] = n
    med = {k: statistics.median(v) for k, v in runs.items()}
    sps = {k: samples[k] / med[k] for k in med}
    steps = sum(-(-len(m) * args.per_task // cfg.batch_size) for m in groups.values()) * cfg.epochs
    fixed = statistics.median(r - lp for r, lp in zip(runs["hf"], loops["hf"])) / len(groups)
    print(
        f"\nthroughput (median of {args.repeats}; samples = examples x epochs = {samples['mint']}, about "
        f"{steps} optimizer steps in all; load average {os.getloadavg()[0]:.2f})"
    )
    print(f"  Trainer's fixed cost outside its training loop: {fixed:.2f} s per run ({len(groups)} runs)")
    print(
        f"  mint tune_groups (K adapters, one backbone): {med['mint']:7.2f} s  {sps['mint']:8.1f} samples/s"
    )
    print(f"  peft + HF Trainer (one run per group):       {med['hf']:7.2f} s  {sps['hf']:8.1f} samples/s")
    print(f"  ratio mint / HF Trainer (samples/s): {sps['mint'] / sps['hf']:.2f}x")
    loop = {k: samples[k] / statistics.median(v) for k, v in loops.items()}
    print(
        f"  training loops only (mint train_seconds vs Trainer train_runtime): {loop['mint']:.1f} vs "
        f"{loop['hf']:.1f} samples/s, ratio {loop['mint'] / loop['hf']:.2f}x"
    )


# ---------------------------------------------------------------------------------------------- memory
def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def build_llava(hidden: int, layers: int, seed: int = 0):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(seed)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=64,
            patch_size=8,
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            projection_dim=hidden,
        ),
        text_config=LlamaConfig(
            vocab_size=4096,
            hidden_size=hidden,
            intermediate_size=4 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=4,
        ),
        image_token_index=4095,
    )
    return LlavaForConditionalGeneration(cfg).eval()


def _model_bytes(models: list) -> int:
    seen, total = set(), 0
    for m in models:
        for t in [*m.parameters(), *m.buffers()]:
            key = t.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
    return total


def memory_child(mode: str, k: int, hidden: int, layers: int) -> None:
    """Runs in a fresh interpreter: build the setting, print its sizes as JSON."""
    from types import SimpleNamespace

    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration  # noqa: F401  (imported before the baseline)

    from mint.tuning import TuneConfig, attach_adapters
    from mint.tuning.targets import lora_targets

    base_rss = _rss_bytes()
    cfg = TuneConfig()
    if mode == "shared":
        vlm = SimpleNamespace(model=build_llava(hidden, layers))
        attach_adapters(vlm, [f"group_{i}" for i in range(k)], cfg)
        models = [vlm.model]
    elif mode == "peft":  # peft's own sharing: one backbone, adapters added by name
        m = build_llava(hidden, layers)
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=lora_targets(m, cfg.tower))
        peft_model = get_peft_model(m, lora, adapter_name="group_0")
        for i in range(1, k):
            peft_model.add_adapter(f"group_{i}", lora)
        models = [peft_model]
    else:
        models = []
        for i in range(k):
            m = build_llava(hidden, layers, seed=i)
            lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=lora_targets(m, cfg.tower))
            models.append(get_peft_model(m, lora))
    x = torch.randint(0, 4000, (2, 16))  # one forward each, so lazily allocated state is counted too
    with torch.no_grad():
        for m in models:
            m(input_ids=x)
    print(json.dumps({"bytes": _model_bytes(models), "rss_growth": _rss_bytes() - base_rss}))


def memory(args: argparse.Namespace) -> None:
    print(
        f"\nmemory: LLaVA from config (hidden {args.hidden}, {args.layers} layers per tower), LoRA r=8 on "
        "the language tower; each setting in a fresh process"
    )
    print(
        f"  {'K':>2}  {'weights: mint':>14} {'peft add_adapter':>17} {'ratio':>6} {'K copies':>10}   "
        f"{'RSS growth: mint':>17} {'peft add_adapter':>17} {'ratio':>6} {'K copies':>10}"
    )
    for k in args.ks:
        res = {}
        for mode in ("shared", "peft", "separate"):
            out = subprocess.run(
                [sys.executable, __file__, "--_memory", mode, str(k), str(args.hidden), str(args.layers)],
                capture_output=True,
                text=True,
                check=True,
            )
            res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        mb = 1 / 2**20
        w = {m: r["bytes"] * mb for m, r in res.items()}
        g = {m: r["rss_growth"] * mb for m, r in res.items()}
        print(
            f"  {k:>2}  {w['shared']:11.1f} MB {w['peft']:14.1f} MB {w['peft'] / w['shared']:5.2f}x "
            f"{w['separate']:7.1f} MB   {g['shared']:14.1f} MB {g['peft']:14.1f} MB "
            f"{g['peft'] / g['shared']:5.2f}x {g['separate']:7.1f} MB"
        )
    print("  ratio: peft add_adapter over mint (above 1: mint uses less)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_memory":
        mode, k, hidden, layers = sys.argv[2], *map(int, sys.argv[3:6])
        memory_child(mode, k, hidden, layers)
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny")
    p.add_argument("--suite", default="builtin:mini")
    p.add_argument("--groups", type=int, default=2)
    p.add_argument("--per-task", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--quick", action="store_true", help="fewer samples and repeats")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.per_task, args.repeats, args.hidden, args.layers = 8, 1, 128, 2
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; python {platform.python_version()}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread(s), {platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} (1 min)"
    )
    if not args.skip_throughput:
        throughput(args)
    if not args.skip_memory:
        memory(args)


if __name__ == "__main__":
    main()
