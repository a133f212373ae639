"""The interface a continual method offers the continual trainer, and the two plain layouts.

- *shared* layout: every stage trains one adapter (:attr:`Method.shared`), carried over from stage to stage;
- *per-stage* layout: stage ``s`` trains a fresh adapter named after its group.

A method may also change a stage's training examples (:meth:`Method.stage_examples`), the adapters active while
a stage trains and the penalty added to its loss (:meth:`Method.stage_hooks`), the adapters that answer the
evaluation after a stage (:meth:`Method.eval_adapter`), and what is routed at inference (:meth:`Method.finish`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mint.io import atomic_write_json, stamp

#: an adapter name, or several adapters active together (their LoRA updates summed)
AdapterSpec = str | tuple[str, ...]


@dataclass
class StageHooks:
    """What :func:`mint.tuning.trainer.train_group` calls: ``activate(peft_model, adapter)`` instead of
    ``set_adapter(adapter)`` (it must leave only ``adapter``'s weights trainable), and ``penalty()``, a scalar
    added once to every optimizer step's loss."""

    activate: Callable[[Any, str], None] | None = None
    penalty: Callable[[], torch.Tensor] | None = None


@dataclass(frozen=True)
class Finished:
    """What a method's :meth:`Method.on_finish` sees of the run whose stages are all trained."""

    peft_model: Any
    adapters_dir: Path
    stages: list[str]
    adapter_of: dict[str, str]
    accelerator: Any

    def write_on_main(self, path: Path, payload: dict[str, Any]) -> None:
        """Write the JSON file ``path`` (stamped) from the main process only; every process waits for it."""
        if self.accelerator.is_main_process:
            atomic_write_json(path, stamp(payload), replace=True)
        self.accelerator.wait_for_everyone()


class Method:
    """A continual method; the defaults are the per-stage layout without extras."""

    name = "per-group"
    shared: str | None = None  # the adapter every stage trains (shared layout), None: one per stage
    answered_by: str | None = None  # the adapter every task is answered by once trained, None: its stage's

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})

    def adapter_config(self, config: Any) -> Any:
        """The tuning config the method's adapters are created with (default: the run's)."""
        return config

    def setup(self, peft_model: Any, config: Any) -> None:
        """Called once the adapters are attached, before any weights are loaded or trained."""

    def extra_adapters(self) -> list[str]:
        """Adapters the method trains besides the stages' (attached after them)."""
        return []

    def extra_phase(
        self, si: int, stages: list[str], members: dict[str, list[str]], tasks: dict[str, Any], seed: int
    ) -> tuple[str, str, list[Any]] | None:
        """A second training after stage ``si``'s: ``(label, adapter, examples)``, or None."""
        return None

    def prepare_phase(self, peft_model: Any, si: int, seed: int) -> None:
        """Called before the extra phase of stage ``si`` trains (before any checkpoint is restored)."""

    def stage_adapters(self, stages: list[str]) -> dict[str, str]:
        """``{stage group: adapter it trains}``."""
        return {g: self.shared or g for g in stages}

    def stage_examples(
        self, si: int, stages: list[str], examples_of: Callable[[str], list[Any]], seed: int
    ) -> tuple[list[Any], dict[str, Any]]:
        """Stage ``si``'s training examples (``examples_of(group)``: a group's own) and a summary to record."""
        return examples_of(stages[si]), {}

    def stage_hooks(
        self, peft_model: Any, si: int, stages: list[str], adapter_of: dict[str, str]
    ) -> StageHooks:
        return StageHooks()

    def eval_adapter(self, si: int, group: str, stages: list[str], adapter_of: dict[str, str]) -> AdapterSpec:
        """The adapter(s) that answer ``group``'s tasks in the evaluation after stage ``si``."""
        return adapter_of[group]

    def routing(
        self, stages: list[str], members: dict[str, list[str]], adapter_of: dict[str, str]
    ) -> dict[str, str]:
        """tune.json ``routing``: task -> adapter that ``mint evaluate`` uses."""
        return {t: self.answered_by or adapter_of[g] for g in stages for t in members[g]}

    def finish(
        self,
        peft_model: Any,
        adapters_dir: Path,
        stages: list[str],
        adapter_of: dict[str, str],
        accelerator: Any,
    ) -> dict[str, dict[str, Any]]:
        """Write (on the main process) and load any adapter the routing needs beyond the trained ones;
        returns their tune.json ``adapters`` entries (:meth:`on_finish` does the method's part)."""
        return self.on_finish(Finished(peft_model, adapters_dir, stages, adapter_of, accelerator))

    def on_finish(self, run: Finished) -> dict[str, dict[str, Any]]:
        """The method's part of :meth:`finish`: its extra adapters' tune.json entries (default: none)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What tune.json and continual.json record of the method."""
        return {"method": self.name, "params": self.params}


class PerGroup(Method):
    """One adapter per stage, each task answered by its own stage's adapter (routing by task name)."""


class Sequential(Method):
    """One shared adapter carried over from stage to stage (the LoRA-FT baseline)."""

    name = "sequential"
    shared = "sequential"
