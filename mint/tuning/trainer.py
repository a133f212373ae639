"""Group-wise LoRA tuning: one peft adapter per group on one resident backbone, under accelerate.

All adapters are added up front (seeded, in group order), then trained one group at a time:
``set_adapter(group)`` makes only that group's LoRA weights trainable, a fresh optimizer and scheduler are
built, and model + optimizer are prepared by accelerate for that group (so under DDP each group's
parameters are registered with the wrapper that trains them; switching adapters inside one wrapper would
let them drift apart across ranks). The loss is the token-level cross-entropy on the answer tokens,
normalised by the number of answer tokens in the whole global step (all processes, all accumulated
micro-batches), so one process with batch B equals P processes with batch B/P at LoRA dropout 0. With
dropout each process draws its own masks (:func:`process_seed`): a P-process run is repeatable for that P,
and differs from a one-process run by the dropout noise.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mint.errors import MintError
from mint.io import atomic_write_json, atomic_write_text, dumps_json, file_mode, read_json, stamp
from mint.seeds import process_seed
from mint.tuning import checkpoint as ckpt
from mint.tuning import tracking
from mint.tuning.config import TuneConfig
from mint.tuning.data import Example, collate_examples, group_examples, shard, step_plan
from mint.tuning.groups import validate_groups
from mint.tuning.lora import add_lora, answer_loss, answer_tokens, lora_config, trainable
from mint.tuning.precision import NonFiniteSteps, Precision, is_finite, optimizer_step
from mint.tuning.targets import lora_targets

#: files and folders a tuning run writes (what --force removes, and nothing else)
RUN_OUTPUTS = (
    "adapters",
    "checkpoints",
    "groups.json",
    "train_log.jsonl",
    "tune.json",
    "eval.json",
    "eval_predictions.jsonl",
    "report.json",
    "report.md",
    "report.html",
    "figures",
    "continual.json",
    tracking.TRACKING_DIR,
)


class TrainingStopped(Exception):
    """Raised by an ``on_step`` callback to stop training (the checkpoints allow ``resume``)."""


def make_accelerator(config: TuneConfig, precision: Precision | None = None, **kwargs: Any):
    """An ``Accelerator`` for ``config``: DDP with unused-parameter detection when LoRA reaches the
    vision tower (text-only batches leave its adapters without gradients); the mixed precision of
    ``precision`` (:func:`mint.tuning.precision.training_precision`) where given."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    if precision is not None:
        kwargs.setdefault("mixed_precision", precision.mixed_precision)

    if "cpu" not in kwargs and _world_size() > 1 and not _has_accelerator():
        kwargs["cpu"] = (
            True  # torchrun on a machine without GPUs: gloo ranks on CPU (accelerate wants cpu=True)
        )
    handlers = list(kwargs.pop("kwargs_handlers", []))
    if not any(isinstance(h, DistributedDataParallelKwargs) for h in handlers):
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=config.tower != "language"))
    return Accelerator(kwargs_handlers=handlers, **kwargs)


def _world_size() -> int:
    from mint.models.devices import world_size

    return world_size()


def launcher_processes(cmdline: list[str]) -> int | None:
    """The ``--num_processes`` that an ``accelerate launch`` command line asks for (None: not one, or not
    said)."""
    if not any("accelerate" in a for a in cmdline[:3]):
        return None
    for i, arg in enumerate(cmdline):
        for flag in ("--num_processes", "--num-processes"):
            if arg == flag and i + 1 < len(cmdline) and cmdline[i + 1].isdigit():
                return int(cmdline[i + 1])
            if arg.startswith(flag + "=") and arg[len(flag) + 1 :].isdigit():
                return int(arg[len(flag) + 1 :])
    return None


def _parent_cmdline() -> list[str]:
    """The command line of the process that started this one (Linux; empty elsewhere)."""
    try:
        raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _has_accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    return bool(acc.is_available()) if acc is not None else torch.cuda.is_available()


def launch_device_kind() -> str:
    """The kind of device an ``Accelerator`` made now would train on: ``cpu`` under
    ``accelerate launch --cpu`` (``ACCELERATE_USE_CPU``) or without an accelerator, else its kind."""
    from mint.models.devices import auto_kind

    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return "cpu"
    return auto_kind() if _has_accelerator() else "cpu"


def resolve_towers(
    groups: list[str], config: TuneConfig, towers: dict[str, str] | None = None
) -> dict[str, str]:
    """``{group: tower}``: ``config.tower`` for every group, or ``towers`` (required) when it is ``auto``."""
    if config.tower != "auto":
        return dict.fromkeys(groups, config.tower)
    missing = [g for g in groups if g not in (towers or {})]
    if missing:
        raise MintError(
            f"tower auto: no tower chosen for group {missing[0]!r} (pass the tasks' profiles: "
            "--profiles profiles.json)"
        )
    return {g: towers[g] for g in groups}


def attach_adapters(
    vlm: Any, groups: list[str], config: TuneConfig, towers: dict[str, str] | None = None
) -> Any:
    """Add one fresh LoRA adapter per group to ``vlm.model`` (replacing it by a ``PeftModel``); the i-th
    group's initial weights are seeded with ``config.seed + i`` alone.

    Each group's LoRA goes into its tower (``towers[group]`` with ``tower: auto``, else ``config.tower``)."""
    from peft import PeftModel

    if isinstance(vlm.model, PeftModel):
        raise MintError("the backbone already carries peft adapters; load a fresh model to tune")
    chosen = resolve_towers(groups, config, towers)
    regexes = {t: lora_targets(vlm.model, t) for t in sorted(set(chosen.values()))}
    if config.gradient_checkpointing:  # non-reentrant: the frozen embeddings need no requires_grad trick
        if not getattr(vlm.model, "supports_gradient_checkpointing", False):
            raise MintError(f"{vlm.model_type}: this model does not support gradient checkpointing")
        vlm.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    peft_model = vlm.model
    for i, g in enumerate(groups):  # each adapter's init seeded on its own (as its training: seed + index),
        # so it does not depend on the other groups' towers or sizes
        lora = lora_config(config.rank, config.alpha, config.dropout, regexes[chosen[g]])
        peft_model = add_lora(peft_model, g, lora, config.seed + i)
    vlm.model = peft_model
    return peft_model


def make_scheduler(config: TuneConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    """The learning-rate schedule of ``config`` (warm-up, then linear / cosine / constant) over ``total_steps``."""
    from transformers import get_scheduler

    warmup = int(config.warmup_ratio * total_steps)
    name = "constant_with_warmup" if config.scheduler == "constant" else config.scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


def check_run_folder(out: Path, resume: bool, force: bool) -> list[str]:
    """The run outputs present in ``out``; an error if there are some and neither resume nor force."""
    present = [n for n in RUN_OUTPUTS if (out / n).exists()]
    if present and not (resume or force):
        raise MintError(
            f"{out} already holds a tuning run ({', '.join(present)}); use --resume to continue "
            "it or --force to start over"
        )
    return present


def _clear_out(out: Path, present: list[str]) -> None:
    for n in present:
        p = out / n
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def _check_same(saved: dict[str, Any], now: dict[str, Any], what: str, out: Path) -> None:
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise MintError(
                f"{out}: cannot resume: {what} {key} was {saved.get(key)!r}, now {now.get(key)!r} "
                "(use the same options, or --force to start over)"
            )


def launch_info(accelerator: Any) -> tuple[bool, int, int]:
    """(is main process, rank, processes); refuses a multi-process launch that accelerate runs as one
    process per copy (each would train alone)."""
    from mint.models.devices import LAUNCH_HINT

    nproc = accelerator.num_processes
    if _world_size() != nproc:
        raise MintError(
            f"launched as {_world_size()} processes but accelerate runs {nproc}: every process would "
            f"train alone (launch with {LAUNCH_HINT})"
        )
    asked = launcher_processes(_parent_cmdline()) if nproc == 1 else None
    if asked is not None and asked > 1:
        raise MintError(
            f"accelerate launch was asked for {asked} processes but started one (accelerate launch --cpu, or "
            f"without --multi_gpu, runs a single process): launch with {LAUNCH_HINT}"
        )
    return accelerator.is_main_process, accelerator.process_index, nproc


def training_examples(
    by_name: dict[str, Any], members: list[str], config: TuneConfig, group: str
) -> list[Example]:
    """The training examples of a group's tasks (with their demonstrations); a group with none is an error."""
    examples = group_examples(
        [by_name[t] for t in members], config.max_train, config.in_context, config.demo_selection, config.seed
    )
    if not examples:
        raise MintError(f"group {group!r}: its tasks have no training samples")
    return examples


def prepare_run(
    vlm: Any,
    out: Path,
    payload: dict[str, Any],
    identity: dict[str, Any],
    meta: dict[str, Any],
    accelerator: Any,
    *,
    resume: bool,
    force: bool,
    initial: dict[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Check a resumed run against ``identity`` and lay out the run folder and its saved state.

    Returns ``(state, None)``, or ``(None, tune.json)`` when the resumed run had already finished (its
    adapters are then loaded onto ``vlm``). ``initial`` adds keys to a new run's state.
    """
    ckpt_dir = out / "checkpoints"
    state = ckpt.read_state(ckpt_dir) if resume else None
    if resume and state is None:
        raise MintError(f"{out}: nothing to resume (no {ckpt_dir / ckpt.STATE}); run without --resume")
    if state is not None:
        _check_same(state["config"], identity["config"], "option", out)
        _check_same(
            {k: state.get(k) for k in identity if k != "config"},
            {k: v for k, v in identity.items() if k != "config"},
            "run",
            out,
        )
        if (out / "tune.json").is_file() and state.get("complete"):  # nothing left to do
            from mint.tuning.routing import load_adapters

            load_adapters(vlm, out)
            return None, read_json(out / "tune.json", "tune.json")
    present = check_run_folder(out, resume, force)  # on every process, before any of them writes
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if not resume:
            _clear_out(out, present)
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            out / "groups.json",
            stamp({k: v for k, v in payload.items() if k not in ("mint_version", "schema")}),
            replace=True,
        )
        if state is None:
            state = {
                **identity,
                "meta": meta,
                "done": {},
                "checkpoint": None,
                "log_lines": 0,
                **(initial or {}),
            }
            ckpt.write_state(ckpt_dir, state, new=True)
    accelerator.wait_for_everyone()
    return ckpt.read_state(ckpt_dir), None


def save_adapter(peft_model: Any, group: str, adapters_dir: Path) -> None:
    """``adapters/<group>/`` in peft format (adapter_config.json + adapter_model.safetensors); an adapter with
    non-finite weights is an error, never saved."""
    from peft.utils import get_peft_model_state_dict

    bad = [
        k
        for k, v in get_peft_model_state_dict(peft_model, adapter_name=group).items()
        if not v.isfinite().all()
    ]
    if bad:
        raise MintError(f"adapter {group!r} has non-finite weights ({bad[0]}); it is not saved")
    adapters_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=adapters_dir, prefix=f".{group}.") as tmp:
        peft_model.save_pretrained(tmp, selected_adapters=[group])
        for f in Path(tmp).rglob("*"):
            if f.is_file():
                f.chmod(file_mode())  # safetensors writes 0600 files; outputs follow the umask
        final = adapters_dir / group
        if final.exists():
            shutil.rmtree(final)
        (Path(tmp) / group).rename(final)


class TrainingLog:
    """``train_log.jsonl``, appended line by line on the main process; truncated on resume."""

    def __init__(self, path: Path, is_main: bool, keep_lines: int | None) -> None:
        self.path, self.is_main = path, is_main
        self.lines = 0
        if is_main:
            if keep_lines is None or not path.exists():
                lines: list[str] = []
            else:
                lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[:keep_lines]
            atomic_write_text(path, "".join(lines), replace=True)
            self.lines = len(lines)

    def write(self, row: dict[str, Any]) -> None:
        if self.is_main:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(dumps_json(row, indent=None))
            self.lines += 1
            tracking.log_step(row)  # --report-to: the same record to the active tracker, if any


def resume_point(
    out: Path, state: dict[str, Any], rank: int, is_main: bool, resume: bool
) -> tuple[dict[str, Any] | None, TrainingLog]:
    """The saved checkpoint to continue from (None: start of training) and the training log, truncated to
    the lines written up to that checkpoint (or up to the end of a resumed run's last finished part)."""
    current = state.get("checkpoint")
    position = (
        ckpt.load_checkpoint(ckpt.checkpoint_folder(out / "checkpoints", current), rank) if current else None
    )
    keep = position["position"]["log_lines"] if position else (state.get("log_lines") if resume else None)
    return position, TrainingLog(out / "train_log.jsonl", is_main, keep)


def tune_groups(
    vlm: Any,
    tasks: list[Any],
    groups: dict[str, Any],
    out_dir: str | Path,
    config: TuneConfig | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    accelerator: Any = None,
    meta: dict[str, Any] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
    towers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Train one LoRA adapter per group of ``groups`` on ``vlm``; write the run folder.

    ``groups`` is a groups.json payload (see :func:`mint.tuning.groups.load_groups`) or a plain
    ``{group: [task, ...]}`` mapping.

    ``tasks`` are the suite's tasks (each must be in exactly one group). ``meta`` (e.g. the suite and model
    specs) is recorded in ``tune.json``. ``on_step`` is called after every optimizer step (and its
    checkpoint) with ``{"group", "step", "epoch", "loss", "lr", "seconds"}``; raising in it stops the run,
    which ``resume=True`` continues. Returns the content of ``tune.json``. ``vlm.model`` is left as a
    ``PeftModel`` with every group's adapter, in eval mode. ``towers`` (``{group: tower}``, see
    :mod:`mint.tuning.towers`) is required with ``config.tower == "auto"``.
    """
    config = config or TuneConfig()
    out = Path(out_dir)
    by_name = {t.name: t for t in tasks}
    if isinstance(groups, dict) and "groups" not in groups:  # a plain {group: [tasks]} mapping
        groups = {"method": "custom", "groups": groups}
    payload = validate_groups(groups, "groups", by_name)
    group_names = list(payload["groups"])
    chosen = resolve_towers(group_names, config, towers)
    accelerator = accelerator or make_accelerator(config)
    is_main, rank, nproc = launch_info(accelerator)
    ckpt_dir, adapters_dir = out / "checkpoints", out / "adapters"
    meta = dict(meta or {})

    # ---------------------------------------------------------------- run folder and saved state
    identity = {
        "config": config.to_dict(),
        "groups": payload["groups"],
        "tasks": sorted(by_name),
        "processes": nproc,
        "towers": chosen,
    }
    state, finished = prepare_run(vlm, out, payload, identity, meta, accelerator, resume=resume, force=force)
    if finished is not None:
        return finished

    peft_model = attach_adapters(vlm, group_names, config, chosen)
    summary: dict[str, dict[str, Any]] = {}
    position, log = resume_point(out, state, rank, is_main, resume)

    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    for gi, group in enumerate(group_names):
        members = payload["groups"][group]
        if group in state["done"]:  # finished before the interruption: reload its saved adapter
            set_peft_model_state_dict(
                peft_model,
                load_file(str(adapters_dir / group / "adapter_model.safetensors")),
                adapter_name=group,
            )
            summary[group] = state["done"][group]
            continue
        examples = training_examples(by_name, members, config, group)
        summary[group] = train_group(
            vlm,
            peft_model,
            accelerator,
            config,
            group,
            gi,
            members,
            examples,
            log,
            position if position and position["position"]["group"] == group else None,
            ckpt_dir,
            state,
            on_step,
            progress,
        )
        position = None
        peft_model = accelerator.unwrap_model(peft_model)
        if is_main:
            save_adapter(peft_model, group, adapters_dir)
            state["done"][group] = summary[group]
            state["checkpoint"], state["log_lines"] = None, log.lines
            ckpt.write_state(ckpt_dir, state)
            ckpt.prune(ckpt_dir, None)
        accelerator.wait_for_everyone()

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
            "groups": payload["groups"],
            "adapters": {g: {"path": f"adapters/{g}", **summary[g], "tower": chosen[g]} for g in group_names},
            "towers": chosen,
            "target_modules": peft_model.peft_config[group_names[0]].target_modules,
            "trainable_params": sum(s["trainable_params"] for s in summary.values()),
            "train_seconds": round(sum(s["train_seconds"] for s in summary.values()), 3),
        },
    )


def finish_run(
    vlm: Any,
    peft_model: Any,
    accelerator: Any,
    out: Path,
    state: dict[str, Any],
    meta: dict[str, Any],
    config: TuneConfig,
    payload: dict[str, Any],
    fields: dict[str, Any],
) -> dict[str, Any]:
    """Leave the tuned ``peft_model`` on ``vlm`` (eval mode), write ``tune.json`` (meta, seed, config, method,
    then the trainer's ``fields``) and mark the saved state complete; return tune.json."""
    peft_model.eval()
    vlm.model = peft_model
    result = stamp(
        {
            **meta,
            "seed": config.seed,
            "config": config.to_dict(),
            "method": payload.get("method", "custom"),
            **fields,
            "processes": accelerator.num_processes,
        }
    )
    if accelerator.is_main_process:
        atomic_write_json(out / "tune.json", result)
        state["complete"] = True
        ckpt.write_state(out / "checkpoints", state)
    accelerator.wait_for_everyone()
    return result


def train_group(
    vlm: Any,
    peft_model: Any,
    accelerator: Any,
    config: TuneConfig,
    group: str,
    gi: int,
    members: list[str],
    examples: list[Example],
    log: TrainingLog,
    resume_from: dict[str, Any] | None,
    ckpt_dir: Path,
    state: dict[str, Any],
    on_step: Callable[[dict[str, Any]], None] | None,
    progress: bool,
    adapter: str | None = None,
    hooks: Any = None,
) -> dict[str, Any]:
    """Train ``group``'s examples into adapter ``adapter`` (default: the group's own; fresh optimizer +
    scheduler), from a checkpoint when one is given. ``hooks`` (a continual method's, see
    :class:`mint.tuning.continual_methods.base.StageHooks`) may activate other adapters alongside and add a
    penalty to every step's loss."""
    from accelerate.utils import set_seed
    from peft.utils import set_peft_model_state_dict
    from tqdm.auto import tqdm

    rank, nproc, is_main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    plans = [
        step_plan(examples, config.batch_size, nproc, config.grad_accum, config.seed, group, e, config.mix)
        for e in range(config.epochs)
    ]
    total = sum(len(p) for p in plans)
    adapter = adapter or group
    if getattr(hooks, "activate", None) is not None:
        hooks.activate(peft_model, adapter)  # other adapters active too, frozen
    else:
        peft_model.set_adapter(adapter)  # only this adapter's LoRA weights require grad
    params = trainable(peft_model)
    n_params = sum(p.numel() for p in params)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(config, optimizer, total)
    set_seed(process_seed(config.seed + gi, rank))
    start_epoch, start_step, done_steps, seconds0, last_loss = 0, 0, 0, 0.0, None
    nonfinite = NonFiniteSteps(f"group {group!r}")
    if resume_from is not None:
        pos = resume_from["position"]
        set_peft_model_state_dict(peft_model, resume_from["adapter"], adapter_name=adapter)
        ckpt.restore(resume_from, optimizer, scheduler, accelerator.scaler)
        start_epoch, start_step = pos["epoch"], pos["step_in_epoch"]
        done_steps, seconds0, last_loss = pos["global_step"], pos["seconds"], pos.get("loss")
        nonfinite.total = pos.get("nonfinite_steps", 0)
    model, optimizer = prepare_group(accelerator, peft_model, optimizer)
    model.train()
    t0 = time.perf_counter() - seconds0
    bar = tqdm(
        total=total,
        initial=done_steps,
        desc=f"tune {group}",
        unit="step",
        disable=not (progress and is_main),
        leave=False,
    )
    try:
        for epoch in range(start_epoch, config.epochs):
            for si in range(start_step if epoch == start_epoch else 0, len(plans[epoch])):
                last_loss, grad_norm, skipped = _step(
                    vlm,
                    model,
                    optimizer,
                    accelerator,
                    config,
                    examples,
                    plans[epoch][si],
                    rank,
                    nproc,
                    params,
                    getattr(hooks, "penalty", None),
                )
                if not skipped:  # a non-finite step (or an fp16 overflow): no step, no schedule
                    scheduler.step()
                done_steps += 1
                nonfinite.record(skipped, done_steps, str(vlm.dtype).replace("torch.", ""))
                seconds = time.perf_counter() - t0
                row = {
                    "step": done_steps,
                    "group": group,
                    "epoch": epoch,
                    "loss": last_loss,
                    "lr": scheduler.get_last_lr()[0],
                    "seconds": round(seconds, 4),
                    "grad_norm": grad_norm,
                    "samples": sum(len(b) for b in plans[epoch][si]),
                    **({"skipped": True} if skipped else {}),
                }
                log.write(row)
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}")
                if (
                    config.checkpoint_every
                    and done_steps % config.checkpoint_every == 0
                    and done_steps < total
                ):
                    _checkpoint(
                        accelerator,
                        model,
                        optimizer,
                        scheduler,
                        group,
                        epoch,
                        si + 1,
                        done_steps,
                        seconds,
                        last_loss,
                        log,
                        ckpt_dir,
                        state,
                        adapter,
                        nonfinite.total,
                    )
                if on_step is not None:
                    on_step(dict(row))
    finally:
        bar.close()
    model.eval()
    train_seconds = time.perf_counter() - t0
    release_accelerator(accelerator)
    return {
        "tasks": list(members),
        "examples": len(examples),
        "steps": done_steps,
        "trainable_params": n_params,
        "train_seconds": round(train_seconds, 3),
        "final_loss": last_loss,
        **({"nonfinite_steps": nonfinite.total} if nonfinite.total else {}),
    }


def prepare_group(accelerator: Any, peft_model: Any, optimizer: Any) -> tuple[Any, Any]:
    """``peft_model`` and ``optimizer`` prepared by accelerate for one group, after its ``set_adapter`` (so DDP
    registers exactly the weights that group trains: one wrapper for all adapters, made for one of them,
    would let the others drift apart across ranks).

    Only the run's first wrapper broadcasts the model from rank 0; later groups' wrappers skip that
    (``init_sync=False``), so the frozen backbone is not sent again for every group: it is the same weight
    file on every rank, and the adapters were initialised (or resumed) identically on all of them."""
    if getattr(accelerator, "_mint_synced", False) and _DDP_INIT_SYNC:
        accelerator.ddp_handler = _without_broadcast(accelerator.ddp_handler)
    prepared = accelerator.prepare(peft_model, optimizer)
    accelerator._mint_synced = True
    return prepared


def _ddp_takes_init_sync() -> bool:
    import inspect

    return "init_sync" in inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters


_DDP_INIT_SYNC = _ddp_takes_init_sync()


def _without_broadcast(handler: Any) -> Any:
    """accelerate's DDP settings ``handler`` plus ``init_sync=False``."""
    import dataclasses

    from accelerate.utils import DistributedDataParallelKwargs

    @dataclasses.dataclass
    class WithoutInitialBroadcast(DistributedDataParallelKwargs):
        init_sync: bool = True

    fields = dataclasses.asdict(handler) if handler is not None else {}
    return WithoutInitialBroadcast(**{**fields, "init_sync": False})


def release_accelerator(accelerator: Any) -> None:
    """Drop accelerate's references to this group's wrapped model and optimizer. On an accelerator device,
    ``free_memory`` also collects garbage and empties the device cache; on CPU that full ``gc.collect``
    would cost more than a tiny group's training, so only the references are dropped."""
    if accelerator.device.type != "cpu":
        accelerator.free_memory()
        return
    for attr in ("_models", "_optimizers", "_schedulers", "_dataloaders"):
        held = getattr(accelerator, attr, None)
        if isinstance(held, list):
            held.clear()


def _step(
    vlm: Any,
    model: Any,
    optimizer: Any,
    accelerator: Any,
    config: TuneConfig,
    examples: list[Example],
    step: list[list[int]],
    rank: int,
    nproc: int,
    params: list[torch.nn.Parameter],
    penalty: Callable[[], torch.Tensor] | None = None,
) -> tuple[float, float | None, bool]:
    """One optimizer step over ``grad_accum`` global batches; returns the mean answer-token loss, the
    gradient norm before clipping, and whether the step was skipped (a non-finite loss or gradient norm, the
    same on every process).

    ``penalty()`` (a continual method's regulariser) is added once per step: a share on every micro-batch of
    every process, so the gradient DDP averages is the penalty's own."""
    micro = []
    for global_batch in step:
        mine = shard(global_batch, rank, nproc)
        weight = 1.0 if mine else 0.0  # an empty shard still runs (DDP needs every rank) but adds nothing
        batch = collate_examples(vlm, [examples[i] for i in (mine or global_batch[:1])], config.mode)
        micro.append((batch, weight, int(answer_tokens(batch["labels"]).sum().item()) if mine else 0))
    counts = torch.tensor([float(sum(m[2] for m in micro))], device=accelerator.device)
    total_tokens = float(accelerator.reduce(counts, "sum").item())
    loss_sum = torch.zeros((), device=accelerator.device)
    for i, (batch, weight, _) in enumerate(micro):
        sync = i == len(micro) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(model):
            loss, _ = answer_loss(model, batch)
            scaled = loss * (weight * nproc / max(total_tokens, 1.0))
            if penalty is not None:
                scaled = scaled + penalty() / len(micro)
            accelerator.backward(scaled)
        loss_sum += loss.detach() * weight
    # max_grad_norm 0 (no clipping): an infinite bound only measures the norm (the gradients are scaled by 1)
    norm = accelerator.clip_grad_norm_(params, config.max_grad_norm or math.inf)  # None under DeepSpeed
    global_loss = float(accelerator.reduce(loss_sum.reshape(1), "sum").item()) / max(total_tokens, 1.0)
    finite = is_finite(global_loss) and (norm is None or is_finite(norm))
    skipped = optimizer_step(accelerator, optimizer, finite)
    loss = global_loss if math.isfinite(global_loss) else float("nan")
    return loss, None if norm is None else float(norm), skipped


def _checkpoint(
    accelerator: Any,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    group: str,
    epoch: int,
    step_in_epoch: int,
    global_step: int,
    seconds: float,
    loss: float,
    log: TrainingLog,
    ckpt_dir: Path,
    state: dict[str, Any],
    adapter: str | None = None,
    nonfinite_steps: int = 0,
) -> None:
    from peft.utils import get_peft_model_state_dict

    name = f"{group}-step-{global_step:06d}"
    unwrapped = accelerator.unwrap_model(model)
    position = {
        "group": group,
        "epoch": epoch,
        "step_in_epoch": step_in_epoch,
        "global_step": global_step,
        "seconds": seconds,
        "loss": loss,
        "log_lines": log.lines,
        **({"nonfinite_steps": nonfinite_steps} if nonfinite_steps else {}),
    }
    weights = (
        get_peft_model_state_dict(unwrapped, adapter_name=adapter or group)
        if accelerator.is_main_process
        else None
    )
    ckpt.save_checkpoint(
        ckpt_dir / name,
        adapter_state=weights,
        optimizer=optimizer,
        scheduler=scheduler,
        position=position,
        rank=accelerator.process_index,
        is_main=accelerator.is_main_process,
        scaler=accelerator.scaler,
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state["checkpoint"], state["log_lines"] = name, log.lines
        ckpt.write_state(ckpt_dir, state)
        ckpt.prune(ckpt_dir, name)
    accelerator.wait_for_everyone()
