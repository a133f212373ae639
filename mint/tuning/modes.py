"""One entry point for every training mode: sequential groups, ``--concurrent``, ``--continual``, and
``--tower auto`` (towers chosen per adapter from the tasks' profiles)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mint.artifacts import Grouping
from mint.errors import MintError
from mint.tasks.demos import check_multi_image
from mint.tuning.concurrent import concurrent_accelerator, run_concurrent
from mint.tuning.config import TuneConfig
from mint.tuning.continual import adapter_groups, run_continual
from mint.tuning.towers import group_towers
from mint.tuning.trainer import RunOptions, TrainingRun, as_grouping, make_accelerator, run_sequential


def auto_towers(
    config: TuneConfig, groups: Grouping, profiles: dict[str, Any] | None, source: str = "profiles.json"
) -> dict[str, str] | None:
    """``{adapter: tower}`` from the profiles for ``tower: auto`` (None for a fixed tower)."""
    if config.tower != "auto":
        return None
    if profiles is None:
        raise MintError("--tower auto needs --profiles profiles.json (the tasks' interaction profiles)")
    members = groups.groups
    if config.continual:
        members = adapter_groups(members, config.continual, config.stage_order)
    return group_towers(members, profiles, source)


def tune(
    vlm: Any,
    tasks: list[Any],
    groups: Grouping | Mapping[str, Any],
    out_dir: str | Path,
    config: TuneConfig | None = None,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Train ``groups`` into the run folder ``out_dir`` with the strategy ``config`` asks for (continual
    stages, all groups concurrently, or one group after another); return tune.json. ``options``: see
    :class:`~mint.tuning.trainer.RunOptions`."""
    config = config or TuneConfig()
    if config.continual:
        strategy = run_continual
    elif config.concurrent:
        strategy = run_concurrent
    else:
        strategy = run_sequential
    return strategy(TrainingRun(vlm, tasks, groups, out_dir, config, options or RunOptions()))


def train_run(
    vlm: Any,
    tasks: list[Any],
    groups: Grouping | Mapping[str, Any],
    out_dir: str | Path,
    config: TuneConfig,
    *,
    profiles: dict[str, Any] | None = None,
    profiles_source: str = "profiles.json",
    **options: Any,
) -> dict[str, Any]:
    """:func:`tune`, with in-context settings checked and ``tower: auto`` resolved from the tasks' ``profiles``;
    ``options`` (resume, force, accelerator, meta, progress, on_step) are :class:`~mint.tuning.trainer.RunOptions`.
    """
    check_multi_image(vlm, tasks, config.in_context)  # in-context demonstrations need several images a prompt
    groups = as_grouping(groups)
    towers = auto_towers(config, groups, profiles, profiles_source)
    return tune(vlm, tasks, groups, out_dir, config, RunOptions(towers=towers, **options))


def make_run_accelerator(config: TuneConfig, precision: Any = None, **kwargs: Any) -> Any:
    """The accelerator the mode needs (concurrent training prepares all adapters at once), with the mixed
    precision of ``precision`` (:func:`mint.tuning.precision.training_precision`) where given; ``kwargs`` go
    to ``Accelerator`` (e.g. ``cpu=True``)."""
    if config.concurrent:
        return concurrent_accelerator(config, precision, **kwargs)
    return make_accelerator(config, precision, **kwargs)
