"""Experiment tracking through accelerate's trackers (``--report-to tensorboard|wandb|mlflow|none``).

One tracker run per trained group, named ``<grouping>/<group>/seed<seed>`` (tagged with the grouping,
group and seed), so that the groups and groupings of an experiment can be compared side by side; the
run of ``mint evaluate`` is ``<grouping>/eval/seed<seed>``. Training is hooked in one place:
:class:`mint.tuning.trainer.TrainingLog` hands every per-step record of ``train_log.jsonl`` to
:func:`log_step`, which forwards it to the :class:`Tracking` session that is active (``with tracking:``)
and does nothing otherwise. Everything here runs on the main process only (the training log's).

Logged series: ``train/loss``, ``train/lr``, ``train/grad_norm`` (before clipping),
``train/samples_per_second`` (the step's samples over its wall time) and ``train/epoch`` at the group's
optimizer step; ``eval/<task>`` and ``eval/mean`` when evaluation scores are made (after each stage of
a continual run, and by ``mint evaluate``).

The tracker packages are optional (``pip install 'mint[tracking]'``): a missing one is a
:class:`~mint.errors.MintError`. wandb runs offline unless ``WANDB_MODE`` says otherwise, MLflow writes
a local database (``mlflow.db``) in the tracking folder unless ``MLFLOW_TRACKING_URI`` is set.
"""

from __future__ import annotations

import contextvars
import math
import os
from pathlib import Path
from typing import Any

from mint.errors import MintError

REPORT_TO = ("none", "tensorboard", "wandb", "mlflow")
#: the pip package that each tracker needs
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
#: the folder, inside a run (``mint tune``) or pipeline output (``mint run``), that trackers write to
TRACKING_DIR = "tracking"

_active: contextvars.ContextVar[Tracking | None] = contextvars.ContextVar("mint_tracking", default=None)


def check_report_to(report_to: str | None, source: str = "--report-to") -> str:
    """``report_to`` if it names a tracker whose package is installed (or ``none``); else MintError."""
    name = "none" if report_to is None else str(report_to)
    if name not in REPORT_TO:
        raise MintError(f"{source}: expected one of {', '.join(REPORT_TO)}, got {name!r}")
    if name == "none":
        return name
    from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_wandb_available

    available = {
        "tensorboard": is_tensorboard_available,
        "wandb": is_wandb_available,
        "mlflow": is_mlflow_available,
    }[name]()
    if not available:
        raise MintError(
            f"{source}: {name} is not installed (pip install {PACKAGES[name]}, or pip install 'mint[tracking]')"
        )
    return name


def run_name(grouping: str, group: str, seed: int) -> str:
    """The tracker run of one group: ``<grouping>/<group>/seed<seed>``."""
    return f"{grouping}/{group}/seed{seed}"


def _flat_config(config: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as trackers take them (bool, str, int, float; other values as text, None left out)."""
    return {
        k: v if isinstance(v, (bool, str, int, float)) else str(v) for k, v in config.items() if v is not None
    }


class Tracking:
    """A tracking session for one tuning run (or one evaluation): opens a tracker run per group at the
    group's first logged step, logs to it, and closes them all on exit.

    ``report_to``: a name of :data:`REPORT_TO`; ``directory``: where trackers write; ``grouping``: the
    compared setting's name (the grouping method, or a pipeline variant); ``config``: hyperparameters
    recorded with each run; ``project``: the wandb project / MLflow experiment.
    """

    def __init__(
        self,
        report_to: str,
        directory: str | os.PathLike,
        grouping: str,
        seed: int,
        config: dict[str, Any] | None = None,
        project: str = "mint",
    ) -> None:
        self.report_to = check_report_to(report_to)
        self.directory = Path(directory)
        self.grouping, self.seed, self.project = str(grouping), int(seed), project
        self.config = dict(config or {})
        self.trackers: dict[str, Any] = {}
        self._last_seconds: dict[str, float] = {}
        self._log_kwargs: dict[str, dict[str, Any]] = {}
        self._token: contextvars.Token | None = None

    @property
    def enabled(self) -> bool:
        return self.report_to != "none"

    def describe(self) -> dict[str, Any]:
        """What tune.json records (so that ``mint evaluate`` logs to the same place)."""
        return {"report_to": self.report_to, "dir": str(self.directory), "grouping": self.grouping}

    # ------------------------------------------------------------------ runs
    def _tracker(self, group: str, first_step: int) -> Any:
        if group in self.trackers:
            return self.trackers[group]
        from accelerate import PartialState

        PartialState()  # accelerate's trackers log through its state (set up already when training)
        name = run_name(self.grouping, group, self.seed)
        tags = {"grouping": self.grouping, "group": group, "seed": str(self.seed)}
        hparams = _flat_config({**self.config, **tags})
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.report_to == "tensorboard":
            from accelerate.tracking import TensorBoardTracker

            # purge_step: a resumed or re-run group hides what an earlier attempt logged from this step on
            tracker = TensorBoardTracker(name, self.directory, purge_step=first_step)
        elif self.report_to == "wandb":
            from accelerate.tracking import WandBTracker

            tracker = WandBTracker(
                self.project,
                name=name,
                group=self.grouping,
                job_type=group,
                tags=[f"{k}:{v}" for k, v in tags.items()],
                dir=str(self.directory),
                mode=os.environ.get("WANDB_MODE", "offline"),
                reinit="create_new",  # one run per group, several open at once (concurrent training)
                config=hparams,  # (accelerate's store_init_configuration writes to the global run)
            )
        else:
            import mlflow
            from accelerate.tracking import MLflowTracker

            if not os.environ.get("MLFLOW_TRACKING_URI"):
                mlflow.set_tracking_uri(f"sqlite:///{(self.directory / 'mlflow.db').resolve()}")
            tracker = MLflowTracker(self.project, run_name=name, tags=tags)
        tracker.start()
        if self.report_to != "wandb":
            tracker.store_init_configuration(hparams)
        if self.report_to == "mlflow":
            # MLflow has one active run per thread, and the concurrent trainer logs its groups in turn:
            # leave the run open but inactive, and log to it by id
            import mlflow

            self._log_kwargs[group] = {"run_id": tracker.active_run.info.run_id}
            mlflow.end_run("RUNNING")
        self.trackers[group] = tracker
        return tracker

    def _log(self, group: str, values: dict[str, float], step: int) -> None:
        self.trackers[group].log(values, step=step, **self._log_kwargs.get(group, {}))

    def _finish(self, group: str) -> None:
        tracker = self.trackers.pop(group, None)
        if tracker is None:
            return
        if self.report_to == "mlflow":
            import mlflow

            mlflow.MlflowClient().set_terminated(self._log_kwargs.pop(group)["run_id"])
        else:
            tracker.finish()

    # ------------------------------------------------------------------ logging
    def log_step(self, row: dict[str, Any]) -> None:
        """Log one ``train_log.jsonl`` record (``group``, ``step``, ``epoch``, ``loss``, ``lr``,
        ``seconds``, and ``grad_norm`` / ``samples`` where the trainer gives them)."""
        if not self.enabled:
            return
        group, step = str(row["group"]), int(row["step"])
        self._tracker(group, step)
        values = {"train/loss": row.get("loss"), "train/lr": row.get("lr"), "train/epoch": row.get("epoch")}
        if row.get("grad_norm") is not None:
            values["train/grad_norm"] = row["grad_norm"]
        seconds = row.get("seconds")
        previous = self._last_seconds.get(group, 0.0 if step == 1 else None)
        if row.get("samples") and seconds is not None and previous is not None and seconds > previous:
            values["train/samples_per_second"] = row["samples"] / (seconds - previous)
        if seconds is not None:
            self._last_seconds[group] = float(seconds)
        self._log(group, _numbers(values), step)

    def log_eval(self, group: str, scores: dict[str, Any], step: int) -> None:
        """Log evaluation scores ``{task: score}`` (and their mean) to ``group``'s run at ``step``."""
        if not self.enabled:
            return
        values = {f"eval/{t}": s for t, s in scores.items()}
        finite = [float(s) for s in scores.values() if _is_number(s)]
        if finite:
            values["eval/mean"] = sum(finite) / len(finite)
        self._tracker(group, step)
        self._log(group, _numbers(values), step)

    # ------------------------------------------------------------------ session
    def close(self) -> None:
        for group in list(self.trackers):
            self._finish(group)

    def __enter__(self) -> Tracking:
        self._token = _active.set(self if self.enabled else None)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        finally:
            if self._token is not None:
                _active.reset(self._token)
                self._token = None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if _is_number(v)}


def active() -> Tracking | None:
    """The tracking session in effect (``with tracking:``), if any."""
    return _active.get()


def log_step(row: dict[str, Any]) -> None:
    """Forward a training-log record to the active session (nothing without one)."""
    session = _active.get()
    if session is not None:
        session.log_step(row)


def log_eval(group: str, scores: dict[str, Any], step: int) -> None:
    """Forward evaluation scores ``{task: score}`` of ``group`` at ``step`` to the active session."""
    session = _active.get()
    if session is not None:
        session.log_eval(group, scores, step)


def log_run_evaluation(tune: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Log a run's ``eval.json`` scores (and zero-shot scores) to its trackers as recorded in tune.json
    (``tracking``), in the run ``<grouping>/eval/seed<seed>``; nothing when the run was not tracked."""
    spec = tune.get("tracking") or {}
    if spec.get("report_to", "none") == "none":
        return
    session = Tracking(
        spec["report_to"],
        spec["dir"],
        spec.get("grouping") or tune.get("method", "custom"),
        int(tune.get("seed", 0)),
        {"run": evaluation.get("run")},
    )
    with session:
        scores = {t: v.get("score") for t, v in evaluation.get("tasks", {}).items()}
        session.log_eval("eval", scores, 0)
        zero = (evaluation.get("zero_shot") or {}).get("tasks") or {}
        if zero:
            session._log("eval", _numbers({f"zero_shot/{t}": v.get("score") for t, v in zero.items()}), 0)
