"""Group-wise LoRA tuning: one peft adapter per group on one resident backbone, under accelerate.

All adapters are added up front (seeded, in group order), then trained one group at a time:
``set_adapter(group)`` makes only that group's LoRA weights trainable, a fresh optimizer and scheduler are
built. The model is prepared once per run, without a DDP wrapper: with several processes each adapter
starts from rank 0's weights and its gradients are averaged once per step (:mod:`mint.tuning.gradsync`),
so the frozen backbone is never broadcast and no wrapper is built per group. The loss is the token-level cross-entropy on the answer tokens,
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mint.artifacts import Grouping
from mint.errors import MintError
from mint.io import atomic_write_json, atomic_write_text, dumps_json, file_mode, read_json, stamp
from mint.models.devices import LAUNCH_HINT, auto_kind, world_size
from mint.seeds import process_seed
from mint.tuning import checkpoint as ckpt
from mint.tuning import tracking
from mint.tuning.config import TuneConfig
from mint.tuning.data import CollateCache, Example, group_examples, shard, step_plan
from mint.tuning.frozen_features import FrozenFeatures
from mint.tuning.gradsync import average_gradients, broadcast_from_first, prepare_once, sharded
from mint.tuning.lora import add_lora, answer_loss, answer_tokens, lora_config, trainable, use_mask_dropout
from mint.tuning.precision import NonFiniteSteps, Precision, is_finite, optimizer_step
from mint.tuning.routing import load_adapters
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


def as_grouping(groups: Grouping | Mapping[str, Any]) -> Grouping:
    """``groups`` (a :class:`~mint.artifacts.Grouping`, a groups.json payload or a plain ``{group: [tasks]}``
    mapping) as a checked grouping whose group names can name adapters."""
    if not isinstance(groups, Grouping):
        if "groups" not in groups:  # a plain {group: [tasks]} mapping
            groups = {"method": "custom", "groups": dict(groups)}
        groups = Grouping.from_dict(groups, "groups")
    return groups.adapter_ready()


class TrainingStopped(Exception):
    """Raised by an ``on_step`` callback to stop training (the checkpoints allow ``resume``)."""


def make_accelerator(config: TuneConfig, precision: Precision | None = None, **kwargs: Any):
    """An ``Accelerator`` for ``config``: DDP (used by the concurrent run, whose one wrapper trains every
    adapter) with unused-parameter detection when LoRA reaches the vision tower (text-only batches leave
    its adapters without gradients); the mixed precision of
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
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes"):
        return "cpu"
    return auto_kind() if _has_accelerator() else "cpu"


def _resolve_towers(
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
    group's initial weights are seeded with ``config.seed + i`` alone, and its LoRA dropout (if any) is a
    :class:`~mint.tuning.lora.MaskDropout`.

    Each group's LoRA goes into its tower (``towers[group]`` with ``tower: auto``, else ``config.tower``)."""
    from peft import PeftModel

    if isinstance(vlm.model, PeftModel):
        raise MintError("the backbone already carries peft adapters; load a fresh model to tune")
    chosen = _resolve_towers(groups, config, towers)
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
    use_mask_dropout(peft_model)  # the same distribution of dropout masks, a quarter of the random numbers
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


def _training_examples(
    by_name: dict[str, Any], members: list[str], config: TuneConfig, group: str
) -> list[Example]:
    """The training examples of a group's tasks (with their demonstrations); a group with none is an error."""
    examples = group_examples(
        [by_name[t] for t in members], config.max_train, config.in_context, config.demo_selection, config.seed
    )
    if not examples:
        raise MintError(f"group {group!r}: its tasks have no training samples")
    return examples


def _save_adapter(peft_model: Any, group: str, adapters_dir: Path) -> None:
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


def _load_adapter(peft_model: Any, name: str, adapters_dir: Path) -> None:
    """Put the weights of ``adapters/<name>/`` (saved by :func:`_save_adapter`) into adapter ``name``."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(adapters_dir / name / "adapter_model.safetensors"))
    set_peft_model_state_dict(peft_model, weights, adapter_name=name)


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


# ------------------------------------------------------------------------------------------ the run
@dataclass(frozen=True)
class RunOptions:
    """How a run is driven (none of it changes what is trained): continue a run (``resume``) or replace one
    (``force``), the ``accelerator`` (None: the strategy's default), ``meta`` recorded in tune.json, an
    ``on_step`` callback (raising in it stops the run, which ``resume`` continues), the progress bars,
    ``towers`` (``{adapter: tower}``, required with ``tower: auto``) and the batch size of the continual
    per-stage evaluation."""

    resume: bool = False
    force: bool = False
    accelerator: Any = None
    meta: dict[str, Any] | None = None
    on_step: Callable[[dict[str, Any]], None] | None = None
    progress: bool = True
    towers: dict[str, str] | None = None
    eval_batch_size: int = 8


@dataclass
class RunState:
    """``checkpoints/state.json``: what identifies the run (``identity``: options, groups, tasks, processes,
    towers, ...), ``meta``, the finished parts (``done``: summaries by group or stage), the latest checkpoint
    and the log lines written up to it, a strategy's own keys (``extra``: the continual evaluations,
    snapshot, ...) and whether the run is ``complete``."""

    identity: dict[str, Any]
    meta: dict[str, Any]
    done: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    log_lines: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        fixed = {
            "meta": self.meta,
            "done": self.done,
            "checkpoint": self.checkpoint,
            "log_lines": self.log_lines,
        }
        return {**self.identity, **fixed, **self.extra, **({"complete": True} if self.complete else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any], identity_keys: list[str]) -> RunState:
        fixed = {"meta", "done", "checkpoint", "log_lines", "complete", "mint_version", "schema"}
        return cls(
            identity={k: data.get(k) for k in identity_keys},
            meta=data.get("meta") or {},
            done=data.get("done") or {},
            checkpoint=data.get("checkpoint"),
            log_lines=data.get("log_lines") or 0,
            extra={k: v for k, v in data.items() if k not in fixed and k not in identity_keys},
            complete=bool(data.get("complete")),
        )


class TrainingRun:
    """One tuning run: the run folder (groups.json, adapters/, train_log.jsonl, tune.json), the accelerator
    and this process's place in the launch, the saved state (:class:`RunState`), the training log, the
    checkpoints and the resume point. The strategies (sequential :func:`tune_groups`, concurrent, continual)
    open one, :meth:`begin` it, train, and :meth:`finish` it."""

    def __init__(
        self,
        vlm: Any,
        tasks: list[Any],
        groups: Grouping | Mapping[str, Any],
        out_dir: str | Path,
        config: TuneConfig,
        options: RunOptions,
    ) -> None:
        self.vlm, self.config, self.options = vlm, config, options
        self.out = Path(out_dir)
        self.ckpt_dir, self.adapters_dir = self.out / "checkpoints", self.out / "adapters"
        self.tasks = list(tasks)
        self.by_name = {t.name: t for t in tasks}
        self.grouping = as_grouping(groups).check_tasks(self.by_name)
        self.payload = self.grouping.data
        self.members: dict[str, list[str]] = self.payload["groups"]
        self.meta = dict(options.meta or {})
        self.accelerator: Any = None
        self.is_main, self.rank, self.nproc = True, 0, 1
        self.state: RunState | None = None
        self.position: dict[str, Any] | None = None  # the checkpoint to continue from
        self.log: TrainingLog | None = None
        # each example's frozen collation done once a run, and its image features while the vision path is frozen
        self.collate = FrozenFeatures(vlm, CollateCache(vlm, config.mode))

    def connect(self, accelerator: Any = None) -> None:
        """Take the run's accelerator (``options.accelerator``, else ``accelerator``, else the default) and
        this process's place in the launch."""
        self.accelerator = self.options.accelerator or accelerator or make_accelerator(self.config)
        self.is_main, self.rank, self.nproc = launch_info(self.accelerator)
        self.collate.mixed_precision = self.accelerator.mixed_precision

    def examples(self, group: str) -> list[Example]:
        return _training_examples(self.by_name, self.members[group], self.config, group)

    def begin(self, identity: dict[str, Any], initial: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Check a resumed run against its identity (options, groups, tasks, processes and ``identity``) and
        lay out the run folder and its saved state; None, or tune.json when the resumed run had already
        finished (its adapters are then loaded onto the model). ``initial``: a new run's extra state."""
        now = {
            "config": self.config.to_dict(),
            "groups": self.members,
            "tasks": sorted(self.by_name),
            "processes": self.nproc,
            **identity,
        }
        resume, out, ckpt_dir = self.options.resume, self.out, self.ckpt_dir
        saved = ckpt.read_state(ckpt_dir) if resume else None
        if resume and saved is None:
            raise MintError(f"{out}: nothing to resume (no {ckpt_dir / ckpt.STATE}); run without --resume")
        if saved is not None:
            _check_same(saved["config"], now["config"], "option", out)
            _check_same(
                {k: saved.get(k) for k in now if k != "config"},
                {k: v for k, v in now.items() if k != "config"},
                "run",
                out,
            )
            if (out / "tune.json").is_file() and saved.get("complete"):  # nothing left to do
                load_adapters(self.vlm, out)
                return read_json(out / "tune.json", "tune.json")
        present = check_run_folder(out, resume, self.options.force)  # every process, before any writes
        self.accelerator.wait_for_everyone()
        if self.is_main:
            if not resume:
                _clear_out(out, present)
            out.mkdir(parents=True, exist_ok=True)
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                out / "groups.json",
                stamp({k: v for k, v in self.payload.items() if k not in ("mint_version", "schema")}),
                replace=True,
            )
            if saved is None:
                new = RunState(identity=now, meta=self.meta, extra=dict(initial or {}))
                ckpt.write_state(ckpt_dir, new.to_json(), new=True)
        self.accelerator.wait_for_everyone()
        self.state = RunState.from_json(ckpt.read_state(ckpt_dir), list(now))
        return None

    def reload_state(self) -> None:
        """Read the saved state again (what the main process recorded)."""
        self.state = RunState.from_json(ckpt.read_state(self.ckpt_dir), list(self.state.identity))

    def resume(self) -> None:
        """Load the checkpoint to continue from (none: the start of training) and open the training log,
        truncated to the lines written up to that checkpoint (or to the end of the last finished part)."""
        current = self.state.checkpoint
        folder = ckpt.checkpoint_folder(self.ckpt_dir, current) if current else None
        self.position = ckpt.load_checkpoint(folder, self.rank) if folder else None
        if self.position:
            keep = self.position["position"]["log_lines"]
        else:
            keep = self.state.log_lines if self.options.resume else None
        self.log = TrainingLog(self.out / "train_log.jsonl", self.is_main, keep)

    def checkpoint_of(self, label: str) -> dict[str, Any] | None:
        """The loaded checkpoint if it belongs to ``label`` (a group, stage or phase), else None."""
        pos = self.position
        return pos if pos and pos["position"].get("group") == label else None

    def progress_bar(self, total: int, initial: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        show = self.options.progress and self.is_main
        return tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not show, leave=False)

    def save_checkpoint(self, name: str, trainer: Any, weights: Any, position: dict[str, Any]) -> None:
        """Write checkpoint ``name`` (``trainer``: the optimizer and scheduler; ``weights``: the adapter
        state, read on the main process), then make it the run's latest and remove the older ones."""
        acc = self.accelerator
        ckpt.save_checkpoint(
            self.ckpt_dir / name,
            adapter_state=weights() if acc.is_main_process else None,
            optimizer=trainer.optimizer,
            scheduler=trainer.scheduler,
            position={**position, "log_lines": self.log.lines, **trainer.nonfinite_entry()},
            rank=acc.process_index,
            is_main=acc.is_main_process,
            scaler=acc.scaler,
        )
        acc.wait_for_everyone()
        if acc.is_main_process:
            self.state.checkpoint, self.state.log_lines = name, self.log.lines
            self.write_state()
            ckpt.prune(self.ckpt_dir, name)
        acc.wait_for_everyone()

    def towers(self, names: list[str]) -> dict[str, str]:
        """``{adapter: tower}`` for ``names``: the config's tower, or ``options.towers`` with ``tower: auto``."""
        return _resolve_towers(names, self.config, self.options.towers)

    def save_adapter(self, peft_model: Any, name: str) -> None:
        """``adapters/<name>/`` in peft format (see :func:`_save_adapter`)."""
        _save_adapter(peft_model, name, self.adapters_dir)

    def load_adapter(self, peft_model: Any, name: str) -> None:
        """Adapter ``name``'s weights from ``adapters/<name>/`` (a part finished before an interruption)."""
        _load_adapter(peft_model, name, self.adapters_dir)

    def adapter_fields(self, peft_model: Any, summary: dict[str, Any], towers: dict[str, str]) -> dict:
        """tune.json's groups, adapters, towers, target modules and trainable parameters of a run with one
        adapter per group."""
        names = list(self.members)
        return {
            "groups": self.members,
            "adapters": {g: {"path": f"adapters/{g}", **summary[g], "tower": towers[g]} for g in names},
            "towers": towers,
            "target_modules": peft_model.peft_config[names[0]].target_modules,
            "trainable_params": sum(s["trainable_params"] for s in summary.values()),
        }

    def write_state(self) -> None:
        ckpt.write_state(self.ckpt_dir, self.state.to_json())

    def commit(self) -> None:
        """On the main process: record that everything trained so far is saved outside the checkpoints
        (adapters, summaries in the state), so the run resumes after it; the checkpoints go."""
        self.state.checkpoint, self.state.log_lines = None, self.log.lines
        self.write_state()
        ckpt.prune(self.ckpt_dir, None)

    def finish(self, peft_model: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """Leave the tuned ``peft_model`` on the model (eval mode), write ``tune.json`` (meta, seed, config,
        method, then the strategy's ``fields``) and mark the saved state complete; return tune.json."""
        peft_model.eval()
        self.vlm.model = peft_model
        result = stamp(
            {
                **self.meta,
                "seed": self.config.seed,
                "config": self.config.to_dict(),
                "method": self.payload.get("method", "custom"),
                **fields,
                "processes": self.accelerator.num_processes,
            }
        )
        if self.accelerator.is_main_process:
            atomic_write_json(self.out / "tune.json", result)
            self.state.complete = True
            self.write_state()
        self.accelerator.wait_for_everyone()
        return result


# ------------------------------------------------------------------------------------------ sequential
def run_sequential(run: TrainingRun) -> dict[str, Any]:
    """Train one LoRA adapter per group of the run, one group after another; write the run folder and
    return the content of ``tune.json`` (see :func:`tune_groups`)."""
    vlm, config = run.vlm, run.config
    group_names = list(run.members)
    chosen = run.towers(group_names)
    run.connect()
    finished = run.begin({"towers": chosen})
    if finished is not None:
        return finished
    peft_model = attach_adapters(vlm, group_names, config, chosen)
    run.resume()
    summary: dict[str, dict[str, Any]] = {}
    for gi, group in enumerate(group_names):
        if group in run.state.done:  # finished before the interruption: reload its saved adapter
            run.load_adapter(peft_model, group)
            summary[group] = run.state.done[group]
            continue
        job = GroupJob(group, gi, run.members[group], run.examples(group), group)
        summary[group] = train_group(run, peft_model, job)
        run.position = None
        peft_model = run.accelerator.unwrap_model(peft_model)
        if run.is_main:
            run.save_adapter(peft_model, group)
            run.state.done[group] = summary[group]
            run.commit()
        run.accelerator.wait_for_everyone()
    seconds = round(sum(s["train_seconds"] for s in summary.values()), 3)
    return run.finish(
        peft_model, {**run.adapter_fields(peft_model, summary, chosen), "train_seconds": seconds}
    )


def tune_groups(
    vlm: Any,
    tasks: list[Any],
    groups: Grouping | Mapping[str, Any],
    out_dir: str | Path,
    config: TuneConfig | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train one LoRA adapter per group of ``groups`` on ``vlm``; write the run folder.

    ``groups`` is a groups.json payload (see :func:`mint.tuning.groups.load_groups`) or a plain
    ``{group: [task, ...]}`` mapping.

    ``tasks`` are the suite's tasks (each must be in exactly one group). ``options`` are those of
    :class:`RunOptions`: ``meta`` (e.g. the suite and model specs) is recorded in ``tune.json``; ``on_step``
    is called after every optimizer step (and its checkpoint) with ``{"group", "step", "epoch", "loss",
    "lr", "seconds"}``; raising in it stops the run, which ``resume=True`` continues. Returns the content
    of ``tune.json``. ``vlm.model`` is left as a ``PeftModel`` with every group's adapter, in eval mode.
    ``towers`` (``{group: tower}``, see :mod:`mint.tuning.towers`) is required with ``config.tower == "auto"``.
    """
    run = TrainingRun(vlm, tasks, groups, out_dir, config or TuneConfig(), RunOptions(**options))
    return run_sequential(run)


@dataclass(frozen=True)
class GroupJob:
    """One adapter's training on one set of examples: a group of the sequential run, a continual stage or a
    method's extra phase. ``label`` names it in the log, the checkpoints and the batch order; ``index``
    seeds it (``config.seed + index``); ``hooks`` (a continual method's
    :class:`~mint.tuning.continual_methods.base.StageHooks`) may activate other adapters alongside and add
    a penalty to every step's loss."""

    label: str
    index: int
    members: list[str]
    examples: list[Example]
    adapter: str
    hooks: Any = None


@dataclass
class _Trainer:
    """What one optimizer step needs: the prepared model, the optimizer and schedule, the trained
    parameters and the count of non-finite steps."""

    model: Any
    optimizer: Any
    scheduler: Any
    params: list[torch.nn.Parameter]
    nonfinite: NonFiniteSteps
    own_sync: bool = False  # mint averages the gradients across processes itself (no DDP wrapper)

    def nonfinite_entry(self) -> dict[str, int]:
        return {"nonfinite_steps": self.nonfinite.total} if self.nonfinite.total else {}


def train_group(run: TrainingRun, peft_model: Any, job: GroupJob) -> dict[str, Any]:
    """Train ``job`` into its adapter (fresh optimizer + scheduler), from its checkpoint when the run has
    one; return the group's summary for tune.json."""
    config, accelerator = run.config, run.accelerator
    plans = [
        step_plan(
            job.examples,
            config.batch_size,
            run.nproc,
            config.grad_accum,
            config.seed,
            job.label,
            e,
            config.mix,
        )
        for e in range(config.epochs)
    ]
    total = sum(len(p) for p in plans)
    trainer, at = _start(run, peft_model, job, total)
    model, scheduler, nonfinite = trainer.model, trainer.scheduler, trainer.nonfinite
    t0 = time.perf_counter() - at["seconds"]
    done_steps, last_loss = at["global_step"], at.get("loss")
    bar = run.progress_bar(total, done_steps, f"tune {job.label}")
    try:
        for epoch in range(at["epoch"], config.epochs):
            for si in range(at["step_in_epoch"] if epoch == at["epoch"] else 0, len(plans[epoch])):
                last_loss, grad_norm, skipped = _step(run, trainer, job, plans[epoch][si])
                if not skipped:  # a non-finite step (or an fp16 overflow): no step, no schedule
                    scheduler.step()
                done_steps += 1
                nonfinite.record(skipped, done_steps, str(run.vlm.dtype).replace("torch.", ""))
                seconds = time.perf_counter() - t0
                row = {
                    "step": done_steps,
                    "group": job.label,
                    "epoch": epoch,
                    "loss": last_loss,
                    "lr": scheduler.get_last_lr()[0],
                    "seconds": round(seconds, 4),
                    "grad_norm": grad_norm,
                    "samples": sum(len(b) for b in plans[epoch][si]),
                    **({"skipped": True} if skipped else {}),
                }
                run.log.write(row)
                bar.update(1)
                bar.set_postfix(loss=f"{last_loss:.4f}")
                if (
                    config.checkpoint_every
                    and done_steps % config.checkpoint_every == 0
                    and done_steps < total
                ):
                    position = {
                        "group": job.label,
                        "epoch": epoch,
                        "step_in_epoch": si + 1,
                        "global_step": done_steps,
                        "seconds": seconds,
                        "loss": last_loss,
                    }
                    _checkpoint(run, trainer, job.adapter, position)
                if run.options.on_step is not None:
                    run.options.on_step(dict(row))
    finally:
        bar.close()
    model.eval()
    train_seconds = time.perf_counter() - t0
    release_accelerator(accelerator)
    return {
        "tasks": list(job.members),
        "examples": len(job.examples),
        "steps": done_steps,
        "trainable_params": sum(p.numel() for p in trainer.params),
        "train_seconds": round(train_seconds, 3),
        "final_loss": last_loss,
        **trainer.nonfinite_entry(),
    }


def _start(run: TrainingRun, peft_model: Any, job: GroupJob, total: int) -> tuple[_Trainer, dict[str, Any]]:
    """Make ``job``'s adapter the trained one, with a fresh optimizer and schedule over ``total`` steps and
    the RNGs seeded for it, then restore its checkpoint if the run has one; returns the prepared trainer and
    the position to start from (epoch, step in epoch, global step, seconds, loss)."""
    from accelerate.utils import set_seed
    from peft.utils import set_peft_model_state_dict

    config = run.config
    if getattr(job.hooks, "activate", None) is not None:
        job.hooks.activate(peft_model, job.adapter)  # other adapters active too, frozen
    else:
        peft_model.set_adapter(job.adapter)  # only this adapter's LoRA weights require grad
    params = trainable(peft_model)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = make_scheduler(config, optimizer, total)
    set_seed(process_seed(config.seed + job.index, run.rank))
    at = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "seconds": 0.0, "loss": None}
    nonfinite = NonFiniteSteps(f"group {job.label!r}")
    resume_from = run.checkpoint_of(job.label)
    if resume_from is not None:
        at = resume_from["position"]
        set_peft_model_state_dict(peft_model, resume_from["adapter"], adapter_name=job.adapter)
        ckpt.restore(resume_from, optimizer, scheduler, run.accelerator.scaler)
        nonfinite.total = at.get("nonfinite_steps", 0)
    model, optimizer = prepare_group(run.accelerator, peft_model, optimizer)
    own_sync = run.nproc > 1 and not sharded(run.accelerator)
    if own_sync:  # every process starts this adapter from rank 0's weights, as DDP's first broadcast would
        broadcast_from_first(params)
    model.train()
    return _Trainer(model, optimizer, scheduler, params, nonfinite, own_sync), at


def _checkpoint(run: TrainingRun, trainer: _Trainer, adapter: str, position: dict[str, Any]) -> None:
    """Checkpoint ``adapter``'s training at ``position`` (named after its group and global step)."""
    from peft.utils import get_peft_model_state_dict

    unwrapped = run.accelerator.unwrap_model(trainer.model)
    name = f"{position['group']}-step-{position['global_step']:06d}"
    run.save_checkpoint(
        name, trainer, lambda: get_peft_model_state_dict(unwrapped, adapter_name=adapter), position
    )


def prepare_group(accelerator: Any, peft_model: Any, optimizer: Any) -> tuple[Any, Any]:
    """``peft_model`` and ``optimizer`` ready for one adapter's training, after its ``set_adapter``.

    The model is prepared once per run (:func:`~mint.tuning.gradsync.prepare_once`: device placement and
    mixed precision, no DDP wrapper) and each adapter's optimizer by itself; the processes keep the trained
    adapter in step through :mod:`mint.tuning.gradsync`. Under FSDP or DeepSpeed accelerate prepares model and
    optimizer together for every adapter, as those engines require."""
    if sharded(accelerator):
        return accelerator.prepare(peft_model, optimizer)
    return prepare_once(accelerator, peft_model), accelerator.prepare_optimizer(optimizer)


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
    run: TrainingRun, trainer: _Trainer, job: GroupJob, step: list[list[int]]
) -> tuple[float, float | None, bool]:
    """One optimizer step over ``grad_accum`` global batches; returns the mean answer-token loss, the
    gradient norm before clipping, and whether the step was skipped (a non-finite loss or gradient norm, the
    same on every process).

    A continual method's penalty (``job.hooks.penalty()``) is added once per step: a share on every
    micro-batch of every process, so the gradient averaged over the processes is the penalty's own."""
    accelerator, nproc = run.accelerator, run.nproc
    penalty = getattr(job.hooks, "penalty", None)
    micro = []
    for global_batch in step:
        mine = shard(global_batch, run.rank, nproc)
        weight = 1.0 if mine else 0.0  # an empty shard still runs (DDP needs every rank) but adds nothing
        batch = run.collate([job.examples[i] for i in (mine or global_batch[:1])])
        micro.append((batch, weight, int(answer_tokens(batch["labels"]).sum().item()) if mine else 0))
    counts = torch.tensor([float(sum(m[2] for m in micro))], device=accelerator.device)
    total_tokens = float(accelerator.reduce(counts, "sum").item())
    loss_sum = torch.zeros((), device=accelerator.device)
    for i, (batch, weight, _) in enumerate(micro):
        sync = i == len(micro) - 1
        with contextlib.nullcontext() if sync else accelerator.no_sync(trainer.model):
            loss, _ = answer_loss(trainer.model, batch)
            scaled = loss * (weight * nproc / max(total_tokens, 1.0))
            if penalty is not None:
                scaled = scaled + penalty() / len(micro)
            accelerator.backward(scaled)
        loss_sum += loss.detach() * weight
    if trainer.own_sync:
        average_gradients(trainer.params, nproc)
    # max_grad_norm 0 (no clipping): an infinite bound only measures the norm (the gradients are scaled by 1)
    norm = accelerator.clip_grad_norm_(
        trainer.params, run.config.max_grad_norm or math.inf
    )  # None: DeepSpeed
    global_loss = float(accelerator.reduce(loss_sum.reshape(1), "sum").item()) / max(total_tokens, 1.0)
    finite = is_finite(global_loss) and (norm is None or is_finite(norm))
    skipped = optimizer_step(accelerator, trainer.optimizer, finite)
    loss = global_loss if math.isfinite(global_loss) else float("nan")
    return loss, None if norm is None else float(norm), skipped
