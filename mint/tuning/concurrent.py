"""Concurrent group adapters (``mint tune --concurrent``): every group's LoRA adapter trained in one pass.

Each concurrent step is the union of every group's next optimizer step of the sequential trainer
(:func:`mint.tuning.trainer.tune_groups`): the same ``step_plan`` per group (a function of seed, group and
epoch), the same micro-batches, the same per-process shards. The rows of each micro-round (one micro-batch
per group still training) are collated into one batch per image count, ordered by group, and run through the
backbone once; :class:`~mint.tuning.mixed_lora.MixedLoRA` adds each group's low-rank product on its slice of
rows. The loss is the sum over groups of each group's answer-token-normalised loss (normalised, as in the
sequential trainer, by the group's answer tokens over all processes and accumulated micro-batches), so each
adapter gets exactly the gradient of its sequential step. Each adapter has its own AdamW state (one optimizer
with a parameter group per adapter: AdamW is element-wise, and an adapter absent from a step has no gradient,
so it is skipped) and its own learning-rate schedule (one ``LambdaLR`` with a lambda per group, built from the
sequential trainer's scheduler over that group's own number of steps); gradients are clipped per adapter.
Groups with fewer steps simply drop out of the later concurrent steps. LoRA dropout must be 0.

The run folder is the sequential trainer's (``adapters/<group>/`` in peft format, ``groups.json``,
``train_log.jsonl`` with one line per group and step, ``tune.json`` with ``"concurrent": true``,
``checkpoints/`` for ``resume``), so :func:`mint.tuning.evaluate_run` reads it unchanged.

Under accelerate the model is prepared once with every adapter trainable. A group that has finished (or a
text-only micro-batch, for vision-tower adapters) leaves parameters without gradients, so DDP must look for
unused parameters: :func:`concurrent_accelerator` asks for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mint.artifacts import Grouping
from mint.errors import MintError
from mint.models.batching import by_image_count
from mint.seeds import process_seed
from mint.tuning import checkpoint as ckpt
from mint.tuning.config import TuneConfig
from mint.tuning.data import Example, shard, step_plan
from mint.tuning.lora import answer_tokens, segment_losses
from mint.tuning.mixed_lora import MixedLoRA
from mint.tuning.precision import NonFiniteSteps, is_finite, optimizer_step
from mint.tuning.trainer import (
    RunOptions,
    TrainingRun,
    attach_adapters,
    make_accelerator,
    make_scheduler,
    release_accelerator,
)

#: one concurrent step: {group: (epoch, [global batch, ...] of that group's optimizer step)}
Step = dict[str, tuple[int, list[list[int]]]]


def concurrent_accelerator(config: TuneConfig, precision: Any = None, **kwargs: Any):
    """An ``Accelerator`` for concurrent tuning: DDP with unused-parameter detection (groups that have
    finished, or vision adapters on text-only batches, get no gradient in some steps)."""
    from accelerate.utils import DistributedDataParallelKwargs

    handlers = [
        h for h in kwargs.pop("kwargs_handlers", []) if not isinstance(h, DistributedDataParallelKwargs)
    ]
    handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    return make_accelerator(config, precision, kwargs_handlers=handlers, **kwargs)


def concurrent_plan(examples: dict[str, list[Example]], config: TuneConfig, processes: int) -> list[Step]:
    """The concurrent steps: step ``t`` holds every group's ``t``-th sequential optimizer step (epochs in
    order), for the groups that have one. A pure function of the data, seed and options."""
    per_group: dict[str, list[tuple[int, list[list[int]]]]] = {}
    for g, exs in examples.items():
        per_group[g] = [
            (e, step)
            for e in range(config.epochs)
            for step in step_plan(
                exs, config.batch_size, processes, config.grad_accum, config.seed, g, e, config.mix
            )
        ]
    total = max(len(s) for s in per_group.values())
    return [{g: steps[t] for g, steps in per_group.items() if t < len(steps)} for t in range(total)]


def _lambda_scheduler(config: TuneConfig, optimizer: torch.optim.Optimizer, steps: list[int]) -> Any:
    """One ``LambdaLR`` whose parameter group ``i`` follows the sequential trainer's schedule over ``steps[i]``."""
    lambdas = []
    for n in steps:
        dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
        lambdas += make_scheduler(config, dummy, n).lr_lambdas
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def _check_distributed(accelerator: Any, nproc: int) -> None:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        raise MintError(
            f"--concurrent runs on one process or under DDP, not {accelerator.distributed_type.value} "
            "(per-adapter gradient clipping needs whole gradients); train without --concurrent"
        )
    if nproc > 1 and not getattr(accelerator.ddp_handler, "find_unused_parameters", False):
        raise MintError(
            "--concurrent under DDP needs find_unused_parameters=True (finished groups get no "
            "gradient); create the accelerator with mint.tuning.concurrent.concurrent_accelerator"
        )


def run_concurrent(run: TrainingRun) -> dict[str, Any]:
    """Train every group's LoRA adapter of the run at once (mixed batches); see :func:`tune_concurrent`."""
    if run.config.dropout > 0:
        raise MintError(
            f"concurrent tuning trains without LoRA dropout (got dropout {run.config.dropout}): set dropout to 0"
        )
    run.config = config = dataclasses.replace(run.config, concurrent=True)
    vlm = run.vlm
    group_names = list(run.members)
    chosen = run.towers(group_names)
    run.connect(run.options.accelerator or concurrent_accelerator(config))
    _check_distributed(run.accelerator, run.nproc)
    examples = {g: run.examples(g) for g in group_names}
    finished = run.begin({"towers": chosen})
    if finished is not None:
        return finished

    peft_model = attach_adapters(vlm, group_names, config, chosen)
    run.resume()
    mixed = MixedLoRA(peft_model, group_names).install()
    try:
        summary, seconds = _train(run, peft_model, mixed, examples)
    finally:
        mixed.remove()
    peft_model = run.accelerator.unwrap_model(peft_model)
    if run.is_main:
        for g in group_names:
            run.save_adapter(peft_model, g)
        run.state.done = summary
        run.commit()
    run.accelerator.wait_for_everyone()
    fields = run.adapter_fields(peft_model, summary, chosen)
    return run.finish(peft_model, {"concurrent": True, **fields, "train_seconds": round(seconds, 3)})


def tune_concurrent(
    vlm: Any,
    tasks: list[Any],
    groups: Grouping | Mapping[str, Any],
    out_dir: str | Path,
    config: TuneConfig | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train every group's LoRA adapter at once (mixed batches); write the same run folder as
    :func:`~mint.tuning.trainer.tune_groups` and return ``tune.json``.

    ``config.dropout`` must be 0 (:class:`MintError` otherwise); ``config.concurrent`` is set. ``options`` are
    those of :class:`~mint.tuning.trainer.RunOptions`; the default accelerator is
    :func:`concurrent_accelerator`'s. ``on_step`` is called after every concurrent step (and its checkpoint)
    with ``{"step", "seconds", "groups": {group: {"step", "epoch", "loss", "lr"}}}``; raising in it stops the
    run, which ``resume=True`` continues. ``vlm.model`` is left as a ``PeftModel`` with every group's adapter,
    in eval mode.
    """
    config = config or TuneConfig(dropout=0.0, concurrent=True)
    return run_concurrent(TrainingRun(vlm, tasks, groups, out_dir, config, RunOptions(**options)))


@dataclasses.dataclass
class _Concurrent:
    """The concurrent loop's trainer: the prepared model and its routing, one optimizer (a parameter group
    per adapter) and schedule, each group's parameters and examples, the count of non-finite steps."""

    model: Any
    mixed: MixedLoRA
    optimizer: Any
    scheduler: Any
    params: dict[str, list[torch.nn.Parameter]]
    examples: dict[str, list[Example]]
    nonfinite: NonFiniteSteps

    def nonfinite_entry(self) -> dict[str, int]:
        return {"nonfinite_steps": self.nonfinite.total} if self.nonfinite.total else {}


def _train(
    run: TrainingRun, peft_model: Any, mixed: MixedLoRA, examples: dict[str, list[Example]]
) -> tuple[dict[str, dict[str, Any]], float]:
    """The concurrent loop; returns the per-group summaries (as the sequential trainer's) and the wall time."""
    from accelerate.utils import set_seed

    config, group_names = run.config, list(run.members)
    plan = concurrent_plan(examples, config, run.nproc)
    totals = {g: sum(g in step for step in plan) for g in group_names}
    peft_model.set_requires_grad(group_names, True)  # every adapter trainable, the backbone frozen
    params = {g: mixed.parameters(g) for g in group_names}
    optimizer = torch.optim.AdamW(
        [{"params": params[g]} for g in group_names], lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = _lambda_scheduler(config, optimizer, [totals[g] for g in group_names])
    set_seed(process_seed(config.seed, run.rank))
    nonfinite = NonFiniteSteps("concurrent tuning")
    start, seconds0, last = _resume(run, peft_model, optimizer, scheduler, nonfinite)
    model, optimizer = run.accelerator.prepare(peft_model, optimizer)
    loop = _Concurrent(model, mixed, optimizer, scheduler, params, examples, nonfinite)
    model.train()
    t0 = time.perf_counter() - seconds0
    bar = run.progress_bar(len(plan), start, f"tune {len(group_names)} groups concurrently")
    try:
        for t in range(start, len(plan)):
            rows, seconds = _advance(run, loop, plan[t], t, last, t0)
            bar.update(1)
            if config.checkpoint_every and (t + 1) % config.checkpoint_every == 0 and t + 1 < len(plan):
                _checkpoint(run, loop, {"step": t + 1, "seconds": seconds, "last": last})
            if run.options.on_step is not None:
                run.options.on_step(
                    {
                        "step": t + 1,
                        "seconds": round(seconds, 4),
                        "groups": {
                            g: {k: r[k] for k in ("step", "epoch", "loss", "lr")} for g, r in rows.items()
                        },
                    }
                )
    finally:
        bar.close()
    model.eval()
    seconds = time.perf_counter() - t0
    release_accelerator(run.accelerator)
    summary = {
        g: {
            "tasks": list(run.members[g]),
            "examples": len(examples[g]),
            "steps": totals[g],
            "trainable_params": sum(p.numel() for p in params[g]),
            # the groups share the wall time: a group's seconds are those until its last step
            "train_seconds": round(last[g]["seconds"], 3) if g in last else 0.0,
            "final_loss": last[g]["loss"] if g in last else None,
            **loop.nonfinite_entry(),
        }
        for g in group_names
    }
    return summary, seconds


def _resume(
    run: TrainingRun, peft_model: Any, optimizer: Any, scheduler: Any, nonfinite: NonFiniteSteps
) -> tuple[int, float, dict[str, dict[str, Any]]]:
    """Restore the run's checkpoint, if any: (first step, seconds so far, each group's last log row)."""
    from peft.utils import set_peft_model_state_dict

    if run.position is None:
        return 0, 0.0, {}
    pos, weights = run.position["position"], run.position["adapter"]
    for g in run.members:
        prefix = f"{g}/"
        set_peft_model_state_dict(
            peft_model,
            {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)},
            adapter_name=g,
        )
    ckpt.restore(run.position, optimizer, scheduler, run.accelerator.scaler)
    nonfinite.total = pos.get("nonfinite_steps", 0)
    return pos["step"], pos["seconds"], pos["last"]


def _advance(
    run: TrainingRun, loop: _Concurrent, step: Step, t: int, last: dict[str, dict[str, Any]], t0: float
) -> tuple[dict[str, dict[str, Any]], float]:
    """Concurrent step ``t``: train, schedule, log one row per group (``last`` updated); returns the rows and
    the seconds since the start."""
    losses, norms, skipped = _step(run, loop, step)
    if not skipped:  # a non-finite step (or an fp16 overflow): no step, no schedule
        loop.scheduler.step()
    loop.nonfinite.record(skipped, t + 1, str(run.vlm.dtype).replace("torch.", ""))
    seconds = time.perf_counter() - t0
    lrs = loop.scheduler.get_last_lr()
    group_names = list(run.members)
    rows = {}
    for g in step:
        rows[g] = {
            "step": (last[g]["step"] if g in last else 0) + 1,
            "group": g,
            "epoch": step[g][0],
            "loss": losses[g],
            "lr": lrs[group_names.index(g)],
            "seconds": round(seconds, 4),
            "concurrent_step": t + 1,
            "grad_norm": norms[g],
            "samples": sum(len(b) for b in step[g][1]),
            **({"skipped": True} if skipped else {}),
        }
        run.log.write(rows[g])
        last[g] = rows[g]
    return rows, seconds


def _step(run: TrainingRun, loop: _Concurrent, step: Step) -> tuple[dict[str, float], dict[str, float], bool]:
    """One concurrent optimizer step; returns each present group's mean answer-token loss and gradient norm
    (before clipping), and whether the step was skipped (a non-finite loss or gradient norm in any group: the
    step is one for all)."""
    accelerator, rank, nproc, params = run.accelerator, run.rank, run.nproc, loop.params
    names = list(step)
    rounds = max(len(batches) for _, batches in step.values())
    micro = []  # (batch, segments, group indices, weights)
    tokens = torch.zeros(len(names), dtype=torch.float64)
    for a in range(rounds):
        rows: list[tuple[int, list[Example], float]] = []
        for gi, g in enumerate(names):
            batches = step[g][1]
            if a >= len(batches):
                continue
            mine = shard(batches[a], rank, nproc)
            # an empty shard still runs (DDP needs every rank) but adds nothing, as in the sequential trainer
            exs = [loop.examples[g][i] for i in (mine or batches[a][:1])]
            rows.append((gi, exs, 1.0 if mine else 0.0))
        for parts in by_image_count(rows, lambda row: row[1][0].n_images).values():
            batch = run.collate([e for _, exs, _ in parts for e in exs])
            segments, pos = [], 0
            for gi, exs, _ in parts:
                segments.append((names[gi], pos, pos + len(exs)))
                pos += len(exs)
            per_row = answer_tokens(batch["labels"])
            for (gi, _, w), (_, s, e) in zip(parts, segments):
                if w:
                    tokens[gi] += float(per_row[s:e].sum().item())
            micro.append((batch, segments, [gi for gi, _, _ in parts], [w for _, _, w in parts]))
    total = accelerator.reduce(tokens.to(torch.float32).to(accelerator.device), "sum").double().cpu()
    loss_sums = torch.zeros(len(names), device=accelerator.device)
    for i, (batch, segments, gis, weights) in enumerate(micro):
        sync = i == len(micro) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(loop.model):
            with loop.mixed.route(segments):
                losses, _ = segment_losses(loop.model, batch, segments)
            objective = sum(
                loss * (w * nproc / max(float(total[gi]), 1.0)) for loss, gi, w in zip(losses, gis, weights)
            )
            accelerator.backward(objective)
        for loss, gi, w in zip(losses, gis, weights):
            loss_sums[gi] += loss.detach() * w
    accelerator.unscale_gradients()
    norms = {  # each adapter clipped on its own, as when it is trained alone (inf: measured, not clipped)
        g: float(torch.nn.utils.clip_grad_norm_(params[g], run.config.max_grad_norm or math.inf))
        for g in names
    }
    sums = accelerator.reduce(loss_sums, "sum").double().cpu()
    out = {}
    for gi, g in enumerate(names):
        value = float(sums[gi]) / max(float(total[gi]), 1.0)
        out[g] = value if math.isfinite(value) else float("nan")
    skipped = optimizer_step(accelerator, loop.optimizer, is_finite(*norms.values(), *out.values()))
    return out, norms, skipped


def _checkpoint(run: TrainingRun, loop: _Concurrent, position: dict[str, Any]) -> None:
    """Checkpoint every adapter (weights keyed ``<group>/<name>``) at concurrent step ``position["step"]``."""
    from peft.utils import get_peft_model_state_dict

    unwrapped = run.accelerator.unwrap_model(loop.model)

    def weights() -> dict[str, torch.Tensor]:
        return {
            f"{g}/{k}": v
            for g in run.members
            for k, v in get_peft_model_state_dict(unwrapped, adapter_name=g).items()
        }

    run.save_checkpoint(f"concurrent-step-{position['step']:06d}", loop, weights, position)
