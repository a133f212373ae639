"""Concurrent group adapters: K groups trained in one pass (``tune_concurrent``) against one after another
(``tune_groups``), on the same data and the same optimizer steps; and the mixed-batch forward itself.

1. **Wall time** for K = 2, 4, 8 groups, side by side in one process, one torch thread, CPU. Group ``i`` is one
   task (a copy of a ``builtin:mini`` task under its own name) with ``--per-task`` training examples, so every
   group has the same number of steps; both trainers see the same batches and make the same optimizer steps
   (their adapters agree, tests/tuning/test_concurrent.py). Timed: adapter set-up, training, checkpoints off, saving
   the adapters (``end to end``) and the training loop alone (``train_seconds``); not timed: loading the
   backbone. Median of ``--repeats`` alternating runs. ``tokens conc/seq``: token positions computed by the
   concurrent run over the sequential one (the mixed batch is padded to its longest row).
2. **Mixed-batch step**: one forward + backward over a batch holding K groups' rows, with
   :class:`mint.tuning.mixed_lora.MixedLoRA` (slices, train mode) against peft's own ``adapter_names=[...]``
   forward (index gathers, which peft allows only in eval mode), same rows, same adapters.

The backbone is ``tiny`` when the embedded one is built, else the tiny random LLaVA of
``tests/helpers_models.py`` (hidden 32, one layer per tower); ``--hidden H --layers L`` swaps in a bigger random
LLaVA (same tokenizer and processor) where the weight reads matter more.

    python bench/bench_concurrent.py [--k 2 4 8] [--per-task 32] [--batch-size 8] [--epochs 1] [--repeats 3]
    python bench/bench_concurrent.py --hidden 256 --layers 4
    python bench/bench_concurrent.py --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_env import ROOT  # first: one thread and no network before torch is imported

# isort: split
import torch


def resolve_model(tmp: Path) -> tuple[str, str]:
    """(model spec, description): ``tiny`` if the embedded backbone is installed, else the test helpers' LLaVA."""
    from mint.models import TINY_DIR

    if (TINY_DIR / "config.json").is_file():
        return "tiny", "embedded tiny backbone (mint/models/tiny)"
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers_models import make_tiny_llava

    return make_tiny_llava(
        tmp
    ), "tiny random LLaVA from tests/helpers_models.py (embedded tiny not built here)"


def load(model: str, hidden: int | None, layers: int | None):
    """The backbone; with ``hidden``, its LLaVA config resized (random weights, seeded)."""
    from mint.models import load_model

    vlm = load_model(model)
    if hidden:
        from transformers import LlavaForConditionalGeneration

        cfg = vlm.model.config
        for sub, heads in ((cfg.text_config, 4), (cfg.vision_config, 4)):
            sub.hidden_size, sub.intermediate_size, sub.num_hidden_layers = hidden, 4 * hidden, layers
            sub.num_attention_heads = heads
            if hasattr(sub, "num_key_value_heads"):
                sub.num_key_value_heads = heads
            if hasattr(sub, "head_dim"):
                sub.head_dim = hidden // heads
            if hasattr(sub, "projection_dim"):
                sub.projection_dim = hidden
        torch.manual_seed(0)
        vlm.model = LlavaForConditionalGeneration(cfg).eval()
    return vlm


def make_groups(k: int, per_task: int) -> tuple[list, dict[str, list[str]]]:
    """K one-task groups, each a renamed copy of a ``builtin:mini`` task with ``per_task`` train samples."""
    from mint.tasks import load_suite

    pool = load_suite("builtin:mini", seed=0)
    tasks = [
        dataclasses.replace(
            pool[i % len(pool)], name=f"task_{i}", train=list(pool[i % len(pool)].train)[:per_task]
        )
        for i in range(k)
    ]
    return tasks, {f"group_{i}": [t.name] for i, t in enumerate(tasks)}


def timed_run(
    kind: str, model: str, args: argparse.Namespace, tasks: list, groups: dict, out: Path
) -> tuple[float, float]:
    from mint.tuning import TuneConfig, tune_concurrent, tune_groups

    cfg = TuneConfig(
        batch_size=args.batch_size, epochs=args.epochs, lr=1e-3, dropout=0.0, checkpoint_every=0, seed=0
    )
    vlm = load(model, args.hidden, args.layers)
    train = tune_concurrent if kind == "concurrent" else tune_groups
    t0 = time.perf_counter()
    result = train(vlm, tasks, groups, out, cfg, force=True, progress=False)
    return time.perf_counter() - t0, float(result["train_seconds"])


def padding(model: str, args: argparse.Namespace, tasks: list, groups: dict) -> float:
    """Token positions computed (rows x padded width, summed over micro-batches): concurrent / sequential.
    The union of the groups' micro-batches is padded to its longest row, each group's own batch to its own."""
    from mint.tuning import TuneConfig
    from mint.tuning.concurrent import concurrent_plan
    from mint.tuning.data import collate_examples, group_examples

    vlm = load(model, None, None)
    by_name = {t.name: t for t in tasks}
    examples = {g: group_examples([by_name[t] for t in members]) for g, members in groups.items()}
    length = {
        (g, i): collate_examples(vlm, [ex])["input_ids"].shape[1]
        for g, exs in examples.items()
        for i, ex in enumerate(exs)
    }
    cfg = TuneConfig(batch_size=args.batch_size, epochs=args.epochs, dropout=0.0)
    seq = conc = 0
    for step in concurrent_plan(examples, cfg, 1):
        for a in range(max(len(b) for _, b in step.values())):
            rows = {g: [length[g, i] for i in b[a]] for g, (_, b) in step.items() if a < len(b)}
            seq += sum(len(r) * max(r) for r in rows.values())
            conc += sum(len(r) for r in rows.values()) * max(max(r) for r in rows.values())
    return conc / seq


def wall_times(model: str, args: argparse.Namespace, tmp: Path) -> None:
    print(
        f"\n1. wall time, K groups one after another (tune_groups) / all at once (tune_concurrent); "
        f"{args.per_task} examples per group, batch {args.batch_size}, {args.epochs} epoch(s), "
        f"median of {args.repeats}"
    )
    print(
        f"{'K':>3} {'steps':>6} | {'sequential s':>12} {'concurrent s':>12} {'ratio':>6} | "
        f"{'seq loop s':>10} {'conc loop s':>11} {'ratio':>6} | {'tokens conc/seq':>15}"
    )
    for k in args.k:
        tasks, groups = make_groups(k, args.per_task)
        timed_run("sequential", model, args, tasks, groups, tmp / "warm")  # warm-up (first-call overheads)
        res: dict[str, list[tuple[float, float]]] = {"sequential": [], "concurrent": []}
        for r in range(args.repeats):
            order = ("sequential", "concurrent") if r % 2 == 0 else ("concurrent", "sequential")
            for kind in order:
                res[kind].append(timed_run(kind, model, args, tasks, groups, tmp / f"{kind}-{k}"))
        seq_e2e = statistics.median(x[0] for x in res["sequential"])
        con_e2e = statistics.median(x[0] for x in res["concurrent"])
        seq_loop = statistics.median(x[1] for x in res["sequential"])
        con_loop = statistics.median(x[1] for x in res["concurrent"])
        steps = args.epochs * -(-args.per_task // args.batch_size)
        print(
            f"{k:>3} {steps:>6} | {seq_e2e:>12.2f} {con_e2e:>12.2f} {seq_e2e / con_e2e:>5.2f}x | "
            f"{seq_loop:>10.2f} {con_loop:>11.2f} {seq_loop / con_loop:>5.2f}x | "
            f"{padding(model, args, tasks, groups):>15.2f}"
        )


def mixed_step(model: str, args: argparse.Namespace) -> None:
    from mint.tuning import TuneConfig, attach_adapters
    from mint.tuning.data import collate_examples, group_examples
    from mint.tuning.mixed_lora import MixedLoRA, segment_losses

    print(
        f"\n2. one forward + backward of a mixed batch ({args.batch_size} rows per group), ms, median of 20"
    )
    print(f"{'K':>3} | {'MixedLoRA':>10} {'peft adapter_names':>19} {'ratio':>6}")
    for k in args.k:
        tasks, groups = make_groups(k, args.batch_size)
        vlm = load(model, args.hidden, args.layers)
        names = list(groups)
        peft_model = attach_adapters(vlm, names, TuneConfig(dropout=0.0))
        peft_model.set_requires_grad(names, True)
        examples = [e for t in tasks for e in group_examples([t])]
        batch = collate_examples(vlm, examples)
        segments = [(g, i * args.batch_size, (i + 1) * args.batch_size) for i, g in enumerate(names)]
        rows = [g for g, s, e in segments for _ in range(s, e)]
        labels = batch["labels"]
        mixed = MixedLoRA(peft_model, names)

        def ours() -> None:
            peft_model.train()
            with mixed, mixed.route(segments):
                losses, counts = segment_losses(peft_model, batch, segments)
            sum(x / n for x, n in zip(losses, counts)).backward()

        def peft_names() -> None:
            peft_model.eval()  # peft refuses adapter_names in training mode
            inputs = {kk: v for kk, v in batch.items() if kk != "labels"}
            logits = peft_model(**inputs, adapter_names=rows).logits[:, :-1].float()
            tok = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
                reduction="none",
            ).view(labels[:, 1:].shape)
            per_row, n_row = tok.sum(-1), (labels[:, 1:] != -100).sum(-1)
            sum(per_row[s:e].sum() / n_row[s:e].sum() for _, s, e in segments).backward()

        times = {}
        for name, fn in (("ours", ours), ("peft", peft_names)):
            fn()
            samples = []
            for _ in range(20):
                peft_model.zero_grad(set_to_none=True)
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            times[name] = statistics.median(samples) * 1000
        print(
            f"{k:>3} | {times['ours']:>10.1f} {times['peft']:>19.1f} {times['peft'] / times['ours']:>5.2f}x"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--per-task", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--hidden", type=int, default=None, help="resize the LLaVA backbone (random weights)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="K = 2 and 4, 16 examples per group, 1 repeat")
    args = p.parse_args()
    if args.quick:
        args.k, args.per_task, args.repeats = [2, 4], 16, 1
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu}")
    with tempfile.TemporaryDirectory() as tmp:
        model, what = resolve_model(Path(tmp))
        size = f", resized to hidden {args.hidden}, {args.layers} layers per tower" if args.hidden else ""
        print(f"backbone: {what}{size}")
        wall_times(model, args, Path(tmp))
        mixed_step(model, args)


if __name__ == "__main__":
    main()
