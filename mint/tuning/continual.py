"""Continual tuning (``mint tune --continual``): the groups are stages, trained one after another.

- ``sequential``: ONE shared LoRA adapter (named :data:`SHARED`) carries over from stage to stage, with a fresh
  optimizer and scheduler per stage: the usual sequential-LoRA baseline, exposed to forgetting;
- ``per-group``: one adapter per group, trained in stage order (earlier adapters are never touched again);
- the continual-learning methods of :mod:`mint.tuning.continual_methods` (``replay``, ``o-lora``, ``reglora``),
  each a :class:`~mint.tuning.continual_methods.base.Method` that this trainer calls at fixed points.

After each stage every task seen so far is evaluated on its test split with its task metric (for
``per-group`` each task with its own group's adapter) and the row is saved at once (``checkpoints/state.json``
and ``continual.json``), so a resumed run never redoes it. ``continual.json`` holds the stage x task matrix
(``null`` for tasks not yet seen) and the metrics of :mod:`mint.tuning.continual_metrics`. Under several
processes the seen tasks are shared out among them (each task evaluated whole on one process, as one process
evaluates it alone) and the scores gathered, so no process waits while another evaluates everything.

Resume: a shared-adapter method (``sequential``, ``replay``) keeps a snapshot of the shared adapter after the last
finished stage (``checkpoints/<adapter>-after-<stage>.safetensors``, a file so checkpoint pruning keeps it); a
stage that was interrupted restarts from its own last checkpoint, or from that snapshot. The result equals an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mint.artifacts import Grouping
from mint.errors import MintError
from mint.io import atomic_path, atomic_write_json, stamp
from mint.tasks.demos import task_demos
from mint.tuning import tracking
from mint.tuning.config import TuneConfig
from mint.tuning.continual_methods import get_method
from mint.tuning.continual_methods.base import Method
from mint.tuning.continual_metrics import continual_metrics
from mint.tuning.evaluate import score_predictions
from mint.tuning.routing import active_adapter
from mint.tuning.trainer import (
    GroupJob,
    RunOptions,
    TrainingRun,
    attach_adapters,
    train_group,
)

CONTINUAL = "continual.json"
#: the adapter every stage trains in ``sequential`` mode
SHARED = "sequential"


def stage_order(groups: dict[str, list[str]], order: str | list[str] | None = None) -> list[str]:
    """The stages: the groups in groups.json order, or ``order`` (comma-separated or a list), which must
    name every group exactly once."""
    names = list(groups)
    if order is None:
        return names
    wanted = [g.strip() for g in order.split(",")] if isinstance(order, str) else [str(g) for g in order]
    wanted = [g for g in wanted if g]
    unknown = [g for g in wanted if g not in groups]
    if unknown:
        raise MintError(f"stage_order: unknown group {unknown[0]!r} (groups: {', '.join(names)})")
    if len(set(wanted)) != len(wanted):
        raise MintError(f"stage_order: a group is named twice in {','.join(wanted)}")
    missing = [g for g in names if g not in wanted]
    if missing:
        raise MintError(f"stage_order: group {missing[0]!r} is missing (name every group once)")
    return wanted


def stage_adapters(stages: list[str], mode: str) -> dict[str, str]:
    """``{stage group: adapter name}``: the shared adapter (``sequential``, ``replay``) or the group's own."""
    return get_method(mode).stage_adapters(stages)


def adapter_groups(
    groups: dict[str, list[str]], mode: str, order: str | list[str] | None = None
) -> dict[str, list[str]]:
    """``{adapter: [tasks]}``: what each trained adapter of a continual run learns (for ``--tower auto``)."""
    out: dict[str, list[str]] = {}
    for g, a in stage_adapters(stage_order(groups, order), mode).items():
        out.setdefault(a, []).extend(groups[g])
    return out


def evaluate_seen(
    vlm: Any,
    seen: list[tuple[Any, str]],
    batch_size: int = 8,
    progress: bool = False,
    demos_for: Callable[[Any], Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """``{task: {"score", "n"}}`` for ``(task, adapter)`` pairs: test split, task metric, adapter active (a tuple
    of names: those adapters active together, their updates summed); ``demos_for(task)``: the ``demos`` argument
    of ``vlm.predict`` (in-context demonstrations)."""
    out: dict[str, dict[str, Any]] = {}
    by_adapter: dict[Any, list[Any]] = {}
    for task, adapter in seen:
        by_adapter.setdefault(adapter, []).append(task)
    for adapter, tasks in by_adapter.items():
        routed = hasattr(adapter, "predict")  # per-sample routing (mr-lora): the router picks each adapter
        with contextlib.nullcontext() if routed else _active(vlm, adapter):
            for task in tasks:
                predict = functools.partial(adapter.predict, vlm) if routed else vlm.predict
                preds = predict(
                    task,
                    task.test,
                    "both",
                    batch_size=batch_size,
                    progress=progress,
                    demos=demos_for(task) if demos_for else (),
                )
                scores = score_predictions(task, preds)
                out[task.name] = {"score": float(np.mean(scores)), "n": len(scores)}
    return out


@contextlib.contextmanager
def _active(vlm: Any, adapter: str | tuple[str, ...]) -> Iterator[None]:
    """:func:`mint.tuning.routing.active_adapter`, or several adapters active together (frozen)."""
    if isinstance(adapter, str):
        with active_adapter(vlm, adapter):
            yield
        return
    model = vlm.model
    previous = model.active_adapter
    model.base_model.set_adapter(list(adapter), inference_mode=True)
    try:
        yield
    finally:
        model.set_adapter(previous if isinstance(previous, str) else adapter[-1], inference_mode=True)


def _snapshot_name(adapter: str, stage: int) -> str:
    return f"{adapter}-after-{stage:03d}.safetensors"


def _write_snapshot(peft_model: Any, adapter: str, path: Path) -> None:
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    weights = get_peft_model_state_dict(peft_model, adapter_name=adapter)
    with atomic_path(path, replace=True) as tmp:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in weights.items()},
            str(tmp),
            metadata={"format": "pt"},
        )


def run_continual(run: TrainingRun) -> dict[str, Any]:
    """Train the run's groups as stages and evaluate the seen tasks after each; see :func:`tune_continual`."""
    config, tasks = run.config, run.tasks
    if config.continual is None:
        raise MintError("continual: set config.continual to a continual method (e.g. sequential)")
    method = get_method(config.continual, config.continual_params)
    stages = stage_order(run.members, config.stage_order)
    adapter_of = method.stage_adapters(stages)
    adapter_names = list(dict.fromkeys(adapter_of.values()))
    chosen = run.towers(adapter_names)
    for t in tasks:
        if not t.test:
            raise MintError(f"task {t.name!r}: no test samples for the per-stage evaluation")
    run.connect()
    identity = {
        "towers": chosen,
        "stages": stages,
        "tests": {t.name: [str(s.id) for s in t.test] for t in tasks},
    }
    finished = run.begin(identity, initial={"evals": {}, "snapshot": None})
    if finished is not None:
        return finished

    plan = _Stages(
        method, stages, adapter_of, method.extra_adapters(), chosen, {t.name: t.metric for t in tasks}
    )
    peft_model = _attach(run, plan)
    run.resume()
    summary: dict[str, dict[str, Any]] = {}
    for si in range(len(stages)):
        peft_model = _stage(run, plan, peft_model, si, summary)

    run.reload_state()  # the evaluations (recorded by the main process)
    report = _payload(run, plan)
    adapters = _adapter_entries(run, plan, summary)
    adapters.update(method.finish(peft_model, run.adapters_dir, stages, adapter_of, run.accelerator))
    if run.is_main:
        atomic_write_json(run.out / CONTINUAL, report, replace=True)
    return run.finish(
        peft_model,
        {
            "groups": run.members,
            "continual": {
                "mode": config.continual,
                **({"params": method.params} if method.params else {}),
                "stages": stages,
                "adapters": adapter_of,
                "metrics": report["metrics"],
            },
            "routing": method.routing(stages, run.members, adapter_of),
            "stages": [summary[g] for g in stages],
            "adapters": adapters,
            "towers": chosen,
            "target_modules": peft_model.peft_config[adapter_names[0]].target_modules,
            "trainable_params": sum(a.get("trainable_params", 0) for a in adapters.values()),
            "train_seconds": round(sum(summary[g]["train_seconds"] for g in stages), 3),
        },
    )


def tune_continual(
    vlm: Any,
    tasks: list[Any],
    groups: Grouping | Mapping[str, Any],
    out_dir: str | Path,
    config: TuneConfig,
    **options: Any,
) -> dict[str, Any]:
    """Train the groups as stages (``config.continual``: a method of :mod:`mint.tuning.continual_methods`, order
    ``config.stage_order`` or groups.json's), evaluate the seen tasks after each stage, write the run folder
    with ``continual.json``; returns the content of ``tune.json``.

    ``tasks`` carry the test splits the stages are evaluated on. ``options`` are those of
    :class:`~mint.tuning.trainer.RunOptions` (``eval_batch_size``: the per-stage evaluation's batch size);
    ``towers`` (``{adapter: tower}``, see :func:`adapter_groups`) is required with ``tower: auto``.
    ``on_step`` and ``resume`` work as in :func:`mint.tuning.trainer.tune_groups`.
    """
    return run_continual(TrainingRun(vlm, tasks, groups, out_dir, config, RunOptions(**options)))


@dataclass(frozen=True)
class _Stages:
    """What a continual run trains: the method, the stages in order, each stage's adapter, the method's extra
    adapters, the stage adapters' towers and each task's metric."""

    method: Method
    stages: list[str]
    adapter_of: dict[str, str]
    extra_names: list[str]
    towers: dict[str, str]
    metrics_of: dict[str, str]


def _attach(run: TrainingRun, plan: _Stages) -> Any:
    """Attach the stage adapters and the method's extras; the shared adapter as after the last finished stage."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    config = run.config
    extra_towers = dict.fromkeys(plan.extra_names, "language" if config.tower == "auto" else config.tower)
    names = list(dict.fromkeys(plan.adapter_of.values())) + plan.extra_names
    peft_model = attach_adapters(
        run.vlm, names, plan.method.adapter_config(config), {**plan.towers, **extra_towers}
    )
    plan.method.setup(peft_model, config)
    snapshot = run.state.extra.get("snapshot")
    if plan.method.shared and snapshot:
        weights = load_file(str(run.ckpt_dir / snapshot))
        set_peft_model_state_dict(peft_model, weights, adapter_name=plan.method.shared)
    return peft_model


def _stage(run: TrainingRun, plan: _Stages, peft_model: Any, si: int, summary: dict[str, Any]) -> Any:
    """Stage ``si``: train it (and the method's extra phase), save and evaluate it, unless it was done before
    the interruption; returns the model (unwrapped)."""
    group = plan.stages[si]
    adapter = plan.adapter_of[group]
    done, trained_before = run.state.done, run.state.extra.get("trained", {})
    if group in done or group in trained_before:  # finished before the interruption
        saved = [
            a for a in plan.extra_names if (run.adapters_dir / a / "adapter_model.safetensors").is_file()
        ]
        for name in ([] if plan.method.shared else [adapter]) + saved:
            run.load_adapter(peft_model, name)
    if group in done:
        summary[group] = done[group]
        return peft_model
    if group in trained_before:
        summary[group] = trained_before[group]
    else:
        peft_model = _train_stage(run, plan, peft_model, si, summary)
    phase = plan.method.extra_phase(si, plan.stages, run.members, run.by_name, run.config.seed)
    if phase is not None:  # e.g. mr-lora's router, trained after the stage's expert
        peft_model = _train_phase(run, plan, peft_model, si, summary, phase)
    run.position = None
    t0 = time.perf_counter()
    evals = _evaluate_stage(run, plan, si)
    summary[group]["eval_seconds"] = round(time.perf_counter() - t0, 3)
    if run.is_main:
        _save_stage(run, plan, peft_model, si, summary, evals)
    run.accelerator.wait_for_everyone()
    return peft_model


def _evaluate_stage(run: TrainingRun, plan: _Stages, si: int) -> dict[str, dict[str, Any]]:
    """Every task seen up to stage ``si`` evaluated on its test split, the tasks shared out among the
    processes (each task whole, on one process, as a single process would evaluate it) and the scores
    gathered on every process in the order :func:`evaluate_seen` gives them."""
    from accelerate.utils import gather_object

    config = run.config
    seen = [
        (run.by_name[t], plan.method.eval_adapter(si, g, plan.stages, plan.adapter_of))
        for g in plan.stages[: si + 1]
        for t in run.members[g]
    ]
    mine = evaluate_seen(
        run.vlm,
        seen[run.rank :: run.nproc],
        run.options.eval_batch_size,
        run.options.progress and run.is_main,
        lambda t: task_demos(t, config.in_context, config.demo_selection, config.seed),
    )
    scores = {k: v for part in gather_object([mine]) for k, v in part.items()} if run.nproc > 1 else mine
    order: dict[Any, list[str]] = {}  # evaluate_seen's order: by adapter, in order of first appearance
    for task, adapter in seen:
        order.setdefault(adapter, []).append(task.name)
    return {name: scores[name] for names in order.values() for name in names}


def _train_stage(run: TrainingRun, plan: _Stages, peft_model: Any, si: int, summary: dict[str, Any]) -> Any:
    group = plan.stages[si]
    adapter = plan.adapter_of[group]
    config = run.config
    examples, extra = plan.method.stage_examples(si, plan.stages, run.examples, config.seed)
    hooks = plan.method.stage_hooks(peft_model, si, plan.stages, plan.adapter_of)
    trained = train_group(run, peft_model, GroupJob(group, si, run.members[group], examples, adapter, hooks))
    peft_model = run.accelerator.unwrap_model(peft_model)
    peft_model.set_adapter(adapter)  # one active adapter again (a method may have stacked several)
    run.vlm.model = peft_model
    summary[group] = {"stage": si + 1, "group": group, "adapter": adapter, **trained, **extra}
    return peft_model


def _train_phase(
    run: TrainingRun, plan: _Stages, peft_model: Any, si: int, summary: dict[str, Any], phase: tuple
) -> Any:
    """The method's extra phase after stage ``si`` (the stage's own adapter saved first, so that an
    interruption during the phase does not train the stage again)."""
    group = plan.stages[si]
    if run.is_main and group not in run.state.extra.get("trained", {}):
        run.save_adapter(peft_model, plan.adapter_of[group])
        run.state.extra.setdefault("trained", {})[group] = summary[group]
        run.commit()
    run.accelerator.wait_for_everyone()
    label, phase_adapter, phase_examples = phase
    plan.method.prepare_phase(peft_model, si, run.config.seed)
    job = GroupJob(label, si, run.members[group], phase_examples, phase_adapter)
    phase_trained = train_group(run, peft_model, job)
    peft_model = run.accelerator.unwrap_model(peft_model)
    run.vlm.model = peft_model
    summary[group][phase_adapter] = {k: phase_trained[k] for k in ("examples", "steps", "final_loss")}
    if run.is_main:
        run.save_adapter(peft_model, phase_adapter)
    return peft_model


def _save_stage(
    run: TrainingRun, plan: _Stages, peft_model: Any, si: int, summary: dict[str, Any], evals: dict[str, Any]
) -> None:
    """On the main process: save stage ``si``'s adapter (and the shared adapter's snapshot), record the seen
    tasks' scores ``evals`` and the stage as done, and rewrite continual.json."""
    group, state = plan.stages[si], run.state
    run.save_adapter(peft_model, plan.adapter_of[group])
    old_snapshot = state.extra.get("snapshot")
    if plan.method.shared:
        state.extra["snapshot"] = _snapshot_name(plan.method.shared, si + 1)
        _write_snapshot(peft_model, plan.method.shared, run.ckpt_dir / state.extra["snapshot"])
    state.extra["evals"][str(si)] = evals
    scores = {t: v["score"] for t, v in evals.items()}
    tracking.log_eval(group, scores, summary[group]["steps"])  # --report-to: in the stage's run
    state.done[group] = summary[group]
    run.commit()
    if old_snapshot and old_snapshot != state.extra["snapshot"]:
        (run.ckpt_dir / old_snapshot).unlink(missing_ok=True)
    atomic_write_json(run.out / CONTINUAL, _payload(run, plan), replace=True)


def _payload(run: TrainingRun, plan: _Stages) -> dict[str, Any]:
    """The content of ``continual.json`` from the per-stage evaluations saved so far (``evals[str(stage)]``)."""
    stages, groups, evals = plan.stages, run.members, run.state.extra["evals"]
    method = plan.method.describe()
    tasks = [t for g in stages for t in groups[g]]
    stage_of = {t: si for si, g in enumerate(stages) for t in groups[g]}
    done = [si for si in range(len(stages)) if str(si) in evals]
    matrix = [[evals[str(si)][t]["score"] if stage_of[t] <= si else None for t in tasks] for si in done]
    complete = done == list(range(len(stages)))
    return stamp(
        {
            "mode": run.config.continual,
            **({"params": method["params"]} if method and method.get("params") else {}),
            "seed": run.config.seed,
            "metric": "task score (accuracy for exact/choice, token F1 for f1)",
            "stages": stages,
            "adapters": plan.adapter_of,
            "tasks": tasks,
            "stage_of": stage_of,
            "task_metrics": {t: plan.metrics_of.get(t, "exact") for t in tasks},
            "n": {t: evals[str(stage_of[t])][t]["n"] for t in tasks if str(stage_of[t]) in evals},
            "matrix": matrix,
            "metrics": continual_metrics(matrix, [stage_of[t] for t in tasks]) if complete else None,
            "complete": complete,
        }
    )


def _adapter_entries(run: TrainingRun, plan: _Stages, summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """tune.json ``adapters``: each trained adapter's tasks, stages, examples, steps and training time."""
    adapters: dict[str, dict[str, Any]] = {}
    for g in plan.stages:
        a = plan.adapter_of[g]
        entry = adapters.setdefault(
            a,
            {
                "path": f"adapters/{a}",
                "tasks": [],
                "stages": [],
                "examples": 0,
                "steps": 0,
                "train_seconds": 0.0,
                "tower": plan.towers[a],
            },
        )
        entry["tasks"] += run.members[g]
        entry["stages"].append(g)
        entry["examples"] += summary[g]["examples"]
        entry["steps"] += summary[g]["steps"]
        entry["train_seconds"] = round(entry["train_seconds"] + summary[g]["train_seconds"], 3)
        entry["trainable_params"] = summary[g]["trainable_params"]
        entry["final_loss"] = summary[g]["final_loss"]
    return adapters
