"""A tuning run from what a user names: a suite, a backbone, a grouping and a run folder.

``mint tune`` and :func:`mint.tune` both come here: the device and precision rules, the checks made before
anything is loaded (options, run folder, resumable checkpoint), loading the suite and the backbone
(dtype, device map, attention implementation, k-bit quantisation), the run's tracking and
:func:`~mint.tuning.modes.train_run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mint.artifacts import Grouping
from mint.errors import MintError
from mint.models import load_model
from mint.models.devices import resolve_device
from mint.models.load_options import LoadOptions, prepare_kbit
from mint.tasks import load_suite
from mint.tuning.checkpoint import check_resumable
from mint.tuning.config import TuneConfig
from mint.tuning.modes import make_run_accelerator, train_run
from mint.tuning.precision import training_precision
from mint.tuning.towers import load_profiles
from mint.tuning.tracking import TRACKING_DIR, Tracking
from mint.tuning.trainer import _world_size, check_run_folder, launch_device_kind

__all__ = ["TuneJob", "device_kwargs", "run_tune_job"]


@dataclass(frozen=True)
class TuneJob:
    """What one tuning run is made of besides its :class:`~mint.tuning.config.TuneConfig`: the tasks of
    ``suite`` (the test split capped at ``max_test``, which a continual run's evaluations use), the backbone
    ``model`` loaded with ``load`` on ``device`` (None or ``auto``: accelerate's choice), the ``grouping`` (or
    its file), the run folder ``out``, the tasks' ``profiles`` (a profiles.json payload or its file, read for
    ``tower: auto`` only) and where they came from, the tracker (``report_to``) and the run controls
    (``resume``, ``force``, ``progress``). Files are read after the options and the run folder are checked."""

    suite: str
    model: str
    grouping: Grouping | Path
    out: Path
    load: LoadOptions = field(default_factory=LoadOptions)
    device: str | None = None
    max_test: int | None = None
    profiles: Mapping[str, Any] | Path | None = None
    profiles_source: str | None = None
    report_to: str = "none"
    resume: bool = False
    force: bool = False
    progress: bool = False


def device_kwargs(device: str | None) -> dict[str, Any]:
    """``Accelerator`` arguments for ``device`` (the one device rule, :mod:`mint.models.devices`): ``auto``
    is accelerate's own choice, ``cpu`` is ``cpu=True``, a numbered GPU is made the current one (one process
    only: under several, each process takes its local rank's)."""
    if device in (None, "auto"):
        return {}
    import torch

    dev = resolve_device(device)
    if dev.type == "cpu":
        return {"cpu": True}
    if dev.type == "cuda" and ":" in str(device):
        if _world_size() > 1:
            raise MintError(
                f"--device {device}: under several processes each takes its own GPU (give --device cuda)"
            )
        torch.cuda.set_device(dev)
    return {}


def run_tune_job(config: TuneConfig, job: TuneJob) -> dict[str, Any]:
    """Train ``job`` with ``config`` into ``job.out``; returns the content of tune.json."""
    load, device = job.load, job.device
    if load.dtype is not None:  # impossible option combinations fail before anything starts
        load.check(device, _world_size())
    placement = device_kwargs(device)
    kind = "cpu" if placement.get("cpu") else launch_device_kind()
    precision = training_precision(load.dtype, kind)  # the policy: bf16 on GPUs, fp16 only with loss scaling
    load = dataclasses.replace(load, dtype=precision.dtype).check(device, _world_size())
    accelerator = make_run_accelerator(config, precision, **placement)
    check_run_folder(job.out, job.resume, job.force)  # fail before loading anything
    if job.resume:
        check_resumable(job.out / "checkpoints", accelerator.process_index)
    max_test = job.max_test
    if max_test is not None and (not isinstance(max_test, int) or max_test < 1):
        raise MintError(f"max_test: must be a positive integer, got {max_test!r}")
    tasks = load_suite(job.suite, seed=config.seed, max_train=config.max_train, max_test=max_test)
    grouping = job.grouping if isinstance(job.grouping, Grouping) else Grouping.load(job.grouping)
    grouping = grouping.adapter_ready().check_tasks([t.name for t in tasks])
    profiles = None
    if config.tower == "auto" and job.profiles is not None:
        profiles = dict(job.profiles) if isinstance(job.profiles, Mapping) else load_profiles(job.profiles)
    vlm = load_model(
        job.model,
        device=str(accelerator.device),
        dtype=load.dtype,
        device_map=load.device_map,
        attn_implementation=load.attn_implementation,
        quantize=load.quantize,
    )
    if load.quantize:
        prepare_kbit(vlm)
    tracking = Tracking(
        job.report_to,
        job.out / TRACKING_DIR,
        grouping.data.get("method", "custom"),
        config.seed,
        {**config.to_dict(), "suite": job.suite, "model": job.model},
    )
    meta = _meta(config, job, grouping.source, load, precision.mixed_precision)
    if tracking.enabled:
        meta["tracking"] = tracking.describe()
    with tracking:
        return train_run(
            vlm,
            tasks,
            grouping,
            job.out,
            config,
            profiles=profiles,
            profiles_source=job.profiles_source or "profiles.json",
            accelerator=accelerator,
            resume=job.resume,
            force=job.force,
            meta=meta,
            progress=job.progress,
        )


def _meta(config: TuneConfig, job: TuneJob, source: str, load: LoadOptions, mixed_precision: str) -> dict:
    """What tune.json records of the run's inputs (the files among them let ``--resume`` find them again);
    ``source``: where the grouping came from."""
    return {
        "suite": job.suite,
        "model": job.model,
        **load.record(),
        "mixed_precision": mixed_precision,
        "max_train": config.max_train,
        "max_test": job.max_test,
        **({"groups_file": str(source)} if Path(source).is_file() else {}),
        **({"profiles_file": job.profiles_source} if job.profiles_source else {}),
    }
