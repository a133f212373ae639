"""Continual tuning (``mint tune --continual``): the groups are stages, trained one after another.

- ``sequential``: ONE shared LoRA adapter (named :data:`SHARED`) carries over from stage to stage, with a fresh
  optimizer and scheduler per stage: the usual sequential-LoRA baseline, exposed to forgetting;
- ``per-group``: one adapter per group, trained in stage order (earlier adapters are never touched again);
- the continual-learning methods of :mod:`mint.tuning.continual_methods` (``replay``, ``o-lora``, ``reglora``),
  each a :class:`~mint.tuning.continual_methods.base.Method` that this trainer calls at fixed points.

After each stage every task seen so far is evaluated on its test split with its task metric (for
``per-group`` each task with its own group's adapter) and the row is saved at once (``checkpoints/state.json``
and ``continual.json``), so a resumed run never redoes it. ``continual.json`` holds the stage x task matrix
(``null`` for tasks not yet seen) and the metrics of :mod:`mint.tuning.continual_metrics`.

Resume: a shared-adapter method (``sequential``, ``replay``) keeps a snapshot of the shared adapter after the last
finished stage (``checkpoints/<adapter>-after-<stage>.safetensors``, a file so checkpoint pruning keeps it); a
stage that was interrupted restarts from its own last checkpoint, or from that snapshot. The result equals an
uninterrupted run.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mint.errors import MintError
from mint.io import atomic_path, atomic_write_json, stamp
from mint.tasks.demos import task_demos
from mint.tuning import checkpoint as ckpt
from mint.tuning import tracking
from mint.tuning.config import TuneConfig
from mint.tuning.continual_methods import get_method
from mint.tuning.continual_metrics import continual_metrics
from mint.tuning.groups import validate_groups
from mint.tuning.trainer import (
    attach_adapters,
    finish_run,
    launch_info,
    make_accelerator,
    prepare_run,
    resolve_towers,
    resume_point,
    save_adapter,
    train_group,
    training_examples,
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
    from mint.tuning.evaluate import score_predictions

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
    from mint.tuning.routing import active_adapter

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


def continual_payload(
    stages: list[str],
    groups: dict[str, list[str]],
    adapters: dict[str, str],
    evals: dict[str, dict[str, dict[str, Any]]],
    mode: str,
    seed: int,
    metrics_of: dict[str, str],
    method: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of ``continual.json`` from the per-stage evaluations done so far (``evals[str(stage)]``)."""
    tasks = [t for g in stages for t in groups[g]]
    stage_of = {t: si for si, g in enumerate(stages) for t in groups[g]}
    done = [si for si in range(len(stages)) if str(si) in evals]
    matrix = [[evals[str(si)][t]["score"] if stage_of[t] <= si else None for t in tasks] for si in done]
    complete = done == list(range(len(stages)))
    return stamp(
        {
            "mode": mode,
            **({"params": method["params"]} if method and method.get("params") else {}),
            "seed": seed,
            "metric": "task score (accuracy for exact/choice, token F1 for f1)",
            "stages": stages,
            "adapters": adapters,
            "tasks": tasks,
            "stage_of": stage_of,
            "task_metrics": {t: metrics_of.get(t, "exact") for t in tasks},
            "n": {t: evals[str(stage_of[t])][t]["n"] for t in tasks if str(stage_of[t]) in evals},
            "matrix": matrix,
            "metrics": continual_metrics(matrix, [stage_of[t] for t in tasks]) if complete else None,
            "complete": complete,
        }
    )


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


def tune_continual(
    vlm: Any,
    tasks: list[Any],
    groups: dict[str, Any],
    out_dir: str | Path,
    config: TuneConfig,
    *,
    resume: bool = False,
    force: bool = False,
    accelerator: Any = None,
    meta: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
    towers: dict[str, str] | None = None,
    eval_batch_size: int = 8,
) -> dict[str, Any]:
    """Train the groups as stages (``config.continual``: a method of :mod:`mint.tuning.continual_methods`, order
    ``config.stage_order`` or groups.json's), evaluate the seen tasks after each stage, write the run folder
    with ``continual.json``; returns the content of ``tune.json``.

    ``tasks`` carry the test splits the stages are evaluated on. ``towers`` (``{adapter: tower}``, see
    :func:`adapter_groups`) is required with ``tower: auto``. ``on_step`` and ``resume`` work as in
    :func:`mint.tuning.trainer.tune_groups`.
    """
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    mode = config.continual
    if mode is None:
        raise MintError("continual: set config.continual to a continual method (e.g. sequential)")
    method = get_method(mode, config.continual_params)
    out = Path(out_dir)
    by_name = {t.name: t for t in tasks}
    if isinstance(groups, dict) and "groups" not in groups:
        groups = {"method": "custom", "groups": groups}
    payload = validate_groups(groups, "groups", by_name)
    members_of = payload["groups"]
    stages = stage_order(members_of, config.stage_order)
    adapter_of = method.stage_adapters(stages)
    adapter_names = list(dict.fromkeys(adapter_of.values()))
    chosen = resolve_towers(adapter_names, config, towers)
    for t in tasks:
        if not t.test:
            raise MintError(f"task {t.name!r}: no test samples for the per-stage evaluation")
    accelerator = accelerator or make_accelerator(config)
    is_main, rank, nproc = launch_info(accelerator)
    ckpt_dir, adapters_dir = out / "checkpoints", out / "adapters"
    meta = dict(meta or {})

    # ---------------------------------------------------------------- run folder and saved state
    identity = {
        "config": config.to_dict(),
        "groups": members_of,
        "tasks": sorted(by_name),
        "processes": nproc,
        "towers": chosen,
        "stages": stages,
        "tests": {t.name: [str(s.id) for s in t.test] for t in tasks},
    }
    state, finished = prepare_run(
        vlm,
        out,
        payload,
        identity,
        meta,
        accelerator,
        resume=resume,
        force=force,
        initial={"evals": {}, "snapshot": None},
    )
    if finished is not None:
        return finished

    extra_names = method.extra_adapters()
    extra_towers = dict.fromkeys(extra_names, "language" if config.tower == "auto" else config.tower)
    peft_model = attach_adapters(
        vlm, adapter_names + extra_names, method.adapter_config(config), {**chosen, **extra_towers}
    )
    method.setup(peft_model, config)
    if method.shared and state.get("snapshot"):  # the shared adapter after the last finished stage
        set_peft_model_state_dict(
            peft_model, load_file(str(ckpt_dir / state["snapshot"])), adapter_name=method.shared
        )
    position, log = resume_point(out, state, rank, is_main, resume)
    metrics_of = {t.name: t.metric for t in tasks}
    summary: dict[str, dict[str, Any]] = {}

    for si, group in enumerate(stages):
        adapter = adapter_of[group]
        members = members_of[group]
        trained_before = state.get("trained", {})  # stages whose own training ended before an extra phase
        if group in state["done"] or group in trained_before:  # finished before the interruption
            for name in ([] if method.shared else [adapter]) + [
                a for a in extra_names if (adapters_dir / a / "adapter_model.safetensors").is_file()
            ]:
                set_peft_model_state_dict(
                    peft_model,
                    load_file(str(adapters_dir / name / "adapter_model.safetensors")),
                    adapter_name=name,
                )
        if group in state["done"]:
            summary[group] = state["done"][group]
            continue
        if group in trained_before:
            summary[group] = trained_before[group]
        else:
            examples, extra = method.stage_examples(
                si, stages, lambda g: training_examples(by_name, members_of[g], config, g), config.seed
            )
            trained = train_group(
                vlm,
                peft_model,
                accelerator,
                config,
                group,
                si,
                members,
                examples,
                log,
                position if position and position["position"]["group"] == group else None,
                ckpt_dir,
                state,
                on_step,
                progress,
                adapter=adapter,
                hooks=method.stage_hooks(peft_model, si, stages, adapter_of),
            )
            peft_model = accelerator.unwrap_model(peft_model)
            peft_model.set_adapter(adapter)  # one active adapter again (a method may have stacked several)
            vlm.model = peft_model
            summary[group] = {"stage": si + 1, "group": group, "adapter": adapter, **trained, **extra}
        phase = method.extra_phase(si, stages, members_of, by_name, config.seed)
        if phase is not None:  # e.g. mr-lora's router, trained after the stage's expert
            if is_main and group not in trained_before:
                save_adapter(peft_model, adapter, adapters_dir)
                state.setdefault("trained", {})[group] = summary[group]
                state["checkpoint"], state["log_lines"] = None, log.lines
                ckpt.write_state(ckpt_dir, state)
                ckpt.prune(ckpt_dir, None)
            accelerator.wait_for_everyone()
            label, phase_adapter, phase_examples = phase
            method.prepare_phase(peft_model, si, config.seed)
            phase_trained = train_group(
                vlm,
                peft_model,
                accelerator,
                config,
                label,
                si,
                members,
                phase_examples,
                log,
                position if position and position["position"]["group"] == label else None,
                ckpt_dir,
                state,
                on_step,
                progress,
                adapter=phase_adapter,
            )
            peft_model = accelerator.unwrap_model(peft_model)
            vlm.model = peft_model
            summary[group][phase_adapter] = {k: phase_trained[k] for k in ("examples", "steps", "final_loss")}
            if is_main:
                save_adapter(peft_model, phase_adapter, adapters_dir)
        position = None
        if is_main:
            save_adapter(peft_model, adapter, adapters_dir)
            old_snapshot = state.get("snapshot")
            if method.shared:
                state["snapshot"] = _snapshot_name(method.shared, si + 1)
                _write_snapshot(peft_model, method.shared, ckpt_dir / state["snapshot"])
            seen = [
                (by_name[t], method.eval_adapter(si, g, stages, adapter_of))
                for g in stages[: si + 1]
                for t in members_of[g]
            ]
            t0 = time.perf_counter()
            state["evals"][str(si)] = evaluate_seen(
                vlm,
                seen,
                eval_batch_size,
                progress,
                lambda t: task_demos(t, config.in_context, config.demo_selection, config.seed),
            )
            summary[group]["eval_seconds"] = round(time.perf_counter() - t0, 3)
            tracking.log_eval(  # --report-to: the seen tasks' scores, in the stage's run
                group, {t: v["score"] for t, v in state["evals"][str(si)].items()}, summary[group]["steps"]
            )
            state["done"][group] = summary[group]
            state["checkpoint"], state["log_lines"] = None, log.lines
            ckpt.write_state(ckpt_dir, state)
            ckpt.prune(ckpt_dir, None)
            if old_snapshot and old_snapshot != state["snapshot"]:
                (ckpt_dir / old_snapshot).unlink(missing_ok=True)
            atomic_write_json(
                out / CONTINUAL,
                continual_payload(
                    stages,
                    members_of,
                    adapter_of,
                    state["evals"],
                    mode,
                    config.seed,
                    metrics_of,
                    method.describe(),
                ),
                replace=True,
            )
        accelerator.wait_for_everyone()

    state = ckpt.read_state(ckpt_dir)  # the evaluations (made on the main process)
    report = continual_payload(
        stages, members_of, adapter_of, state["evals"], mode, config.seed, metrics_of, method.describe()
    )
    adapters: dict[str, dict[str, Any]] = {}
    for g in stages:
        a = adapter_of[g]
        entry = adapters.setdefault(
            a,
            {
                "path": f"adapters/{a}",
                "tasks": [],
                "stages": [],
                "examples": 0,
                "steps": 0,
                "train_seconds": 0.0,
                "tower": chosen[a],
            },
        )
        entry["tasks"] += members_of[g]
        entry["stages"].append(g)
        entry["examples"] += summary[g]["examples"]
        entry["steps"] += summary[g]["steps"]
        entry["train_seconds"] = round(entry["train_seconds"] + summary[g]["train_seconds"], 3)
        entry["trainable_params"] = summary[g]["trainable_params"]
        entry["final_loss"] = summary[g]["final_loss"]
    adapters.update(method.finish(peft_model, adapters_dir, stages, adapter_of, accelerator))
    if is_main:
        atomic_write_json(out / CONTINUAL, report, replace=True)
    return finish_run(
        vlm,
        peft_model,
        accelerator,
        out,
        state,
        meta,
        config,
        payload,
        {
            "groups": members_of,
            "continual": {
                "mode": mode,
                **({"params": method.params} if method.params else {}),
                "stages": stages,
                "adapters": adapter_of,
                "metrics": report["metrics"],
            },
            "routing": method.routing(stages, members_of, adapter_of),
            "stages": [summary[g] for g in stages],
            "adapters": adapters,
            "towers": chosen,
            "target_modules": peft_model.peft_config[adapter_names[0]].target_modules,
            "trainable_params": sum(a.get("trainable_params", 0) for a in adapters.values()),
            "train_seconds": round(sum(summary[g]["train_seconds"] for g in stages), 3),
        },
    )
