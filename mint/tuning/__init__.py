"""Group-wise LoRA tuning on a shared frozen backbone, routing tasks to adapters, evaluation and reports.

``tune(vlm, tasks, groups, out_dir, TuneConfig(...))`` trains one adapter per group (one after another,
concurrently, or as continual stages, as the config says) and writes a run folder; ``evaluate_run(run_dir)``
answers every task with its group's adapter, writes eval.json and returns it as an
:class:`~mint.artifacts.Evaluation`; ``make_report({row: Evaluation or [one per seed]})`` compares evaluated
runs in a :class:`~mint.artifacts.Report` (:func:`mint.report` also draws its figures and writes report.json,
report.md and report.html).
"""

from mint.tuning.concurrent import concurrent_accelerator, tune_concurrent
from mint.tuning.config import TuneConfig
from mint.tuning.continual import tune_continual
from mint.tuning.evaluate import evaluate_run
from mint.tuning.groups import groups_payload, load_groups, validate_groups
from mint.tuning.modes import make_run_accelerator, train_run, tune
from mint.tuning.report import make_report, rows_from_runs, write_report
from mint.tuning.routing import Router, active_adapter, load_adapters
from mint.tuning.targets import lora_targets, target_regex
from mint.tuning.trainer import (
    RunOptions,
    TrainingRun,
    TrainingStopped,
    attach_adapters,
    make_accelerator,
    tune_groups,
)

__all__ = [
    "TuneConfig",
    "tune",
    "RunOptions",
    "TrainingRun",
    "tune_groups",
    "evaluate_run",
    "write_report",
    "make_report",
    "rows_from_runs",
    "load_groups",
    "validate_groups",
    "groups_payload",
    "Router",
    "active_adapter",
    "load_adapters",
    "target_regex",
    "lora_targets",
    "attach_adapters",
    "make_accelerator",
    "TrainingStopped",
    "tune_concurrent",
    "concurrent_accelerator",
    "tune_continual",
    "train_run",
    "make_run_accelerator",
]
