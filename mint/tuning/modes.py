"""One entry point for every training mode: sequential groups, ``--concurrent``, ``--continual``, and
``--tower auto`` (towers chosen per adapter from the tasks' profiles)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mint.errors import MintError
from mint.tuning.config import TuneConfig


def auto_towers(
    config: TuneConfig, groups: dict[str, Any], profiles: dict[str, Any] | None, source: str = "profiles.json"
) -> dict[str, str] | None:
    """``{adapter: tower}`` from the profiles for ``tower: auto`` (None for a fixed tower)."""
    if config.tower != "auto":
        return None
    from mint.tuning.towers import group_towers

    if profiles is None:
        raise MintError("--tower auto needs --profiles profiles.json (the tasks' interaction profiles)")
    members = groups["groups"]
    if config.continual:
        from mint.tuning.continual import adapter_groups

        members = adapter_groups(members, config.continual, config.stage_order)
    return group_towers(members, profiles, source)


def train_run(
    vlm: Any,
    tasks: list[Any],
    groups: dict[str, Any],
    out_dir: str | Path,
    config: TuneConfig,
    *,
    profiles: dict[str, Any] | None = None,
    profiles_source: str = "profiles.json",
    accelerator: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Train ``groups`` into the run folder ``out_dir`` in the mode ``config`` asks for; return tune.json.

    ``kwargs`` (resume, force, meta, progress, on_step) go to the trainer of that mode.
    """
    from mint.tasks.demos import check_multi_image

    check_multi_image(vlm, tasks, config.in_context)  # in-context demonstrations need several images a prompt
    towers = auto_towers(config, groups, profiles, profiles_source)
    if config.continual:
        from mint.tuning.continual import tune_continual as train
    elif config.concurrent:
        from mint.tuning.concurrent import tune_concurrent as train
    else:
        from mint.tuning.trainer import tune_groups as train
    return train(vlm, tasks, groups, out_dir, config, accelerator=accelerator, towers=towers, **kwargs)


def make_run_accelerator(config: TuneConfig, precision: Any = None, **kwargs: Any) -> Any:
    """The accelerator the mode needs (concurrent training prepares all adapters at once), with the mixed
    precision of ``precision`` (:func:`mint.tuning.precision.training_precision`) where given; ``kwargs`` go
    to ``Accelerator`` (e.g. ``cpu=True``)."""
    if config.concurrent:
        from mint.tuning.concurrent import concurrent_accelerator

        return concurrent_accelerator(config, precision, **kwargs)
    from mint.tuning.trainer import make_accelerator

    return make_accelerator(config, precision, **kwargs)
