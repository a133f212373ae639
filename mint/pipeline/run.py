"""The whole pipeline: predict, profile, cluster, plot, tune each compared grouping, evaluate, report.

Output folder layout::

    predictions.jsonl (+ .meta.json)   .mint-cache/   profiles.json   groups/<method>.json
    routes/<method>.json (with ``holdout``: where each held-out task is routed)
    figures/   runs/<row>/seed-<s>/ (mint tune run folders, with eval.json)   report.json   report.md
    pipeline.json   .stages/

Each stage is cached by a hash of its inputs (see :mod:`mint.pipeline.stages`), so a re-run only redoes
what changed, and an interrupted tuning stage resumes from its last checkpoint.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from mint.api import report as write_report
from mint.artifacts import Evaluation, Grouping, Profiles, Report, Routes
from mint.clustering import group
from mint.clustering.affinity import affinity_grouping
from mint.clustering.methods import AFFINITY_METHODS
from mint.clustering.route import route_tasks
from mint.errors import MintError
from mint.io import atomic_write_json, read_json, stamp
from mint.models import load_model, resolve_model
from mint.models.load_options import prepare_kbit
from mint.models.predict import run_predict
from mint.models.runner import weights_id
from mint.pipeline.config import RunConfig, load_options
from mint.pipeline.stages import PREPARE, REPORT, StageCache, selects
from mint.plotting import plot_all
from mint.profiling import profile_predictions
from mint.tasks import load_suite
from mint.tuning import TuneConfig, evaluate_run
from mint.tuning.export import MERGED, merged_run
from mint.tuning.modes import make_run_accelerator, train_run
from mint.tuning.precision import training_precision
from mint.tuning.tracking import TRACKING_DIR, Tracking
from mint.tuning.trainer import launch_device_kind


def _model_identity(spec: str) -> Any:
    """What identifies the backbone's weights: its resolved path and weight files (sizes, mtimes)."""
    source = resolve_model(spec)
    return {"spec": spec, "weights": weights_id(source)}


def run_pipeline(
    cfg: RunConfig,
    *,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    only: str | None = None,
) -> Report | None:
    """Run every stage of ``cfg`` into ``cfg.out``; return the report.

    ``only`` runs one stage of :mod:`mint.pipeline.schedule` (``prepare``, ``<row>/seed-<s>`` or
    ``report``), the stages it needs being done already; it returns the report only for ``report``.
    """
    if cfg.data["threads"]:
        torch.set_num_threads(cfg.data["threads"])
    run = _Pipeline(
        cfg, _model_identity(cfg.data["model"]), force=force, progress=progress, log=log, only=only
    )
    run.predict_and_profile()
    run.group()
    run.plot()
    run.route()
    if only == PREPARE:
        return None
    run.tune_and_evaluate()
    if only not in (None, REPORT):
        return None
    return run.report()


class _Pipeline:
    """One ``mint run``: the config, the output folder's stage cache and what earlier stages produced
    (stage keys, file paths), each stage a method run in the order of :func:`run_pipeline`."""

    def __init__(
        self, cfg: RunConfig, model_id: Any, *, force: bool, progress: bool, log: Callable, only: str | None
    ) -> None:
        self.cfg, self.c, self.out = cfg, cfg.data, cfg.out
        self.model_id = model_id  # a model that cannot be had has failed before anything is made
        self.load = load_options(self.c)
        self.progress, self.only = progress, only
        self.out.mkdir(parents=True, exist_ok=True)
        self.stages = StageCache(self.out, force=force, log=log, selected=selects(only))
        self.seed = self.c["seed"]
        self.t_start = time.perf_counter()
        self.tune_cfg = TuneConfig.from_dict(dict(self.c["tune"]), f"{cfg.source}: tune")
        self.profiles_path = self.out / "profiles.json"
        self.fig_dir = self.out / "figures"
        self.group_keys: dict[str, str] = {}
        self.group_files: dict[str, Path] = {}
        self.routes: dict[str, dict[str, str]] = {}
        self._tasks: list[Any] = []

    # ------------------------------------------------------------------ shared
    def backbone(self) -> Any:
        """The config's backbone as tuning and evaluation use it (a QLoRA base prepared as for training)."""
        c, load = self.c, self.load
        vlm = load_model(
            c["model"],
            device=c["device"],
            dtype=c["dtype"],
            device_map=load.device_map,
            attn_implementation=load.attn_implementation,
            quantize=load.quantize,
        )
        return prepare_kbit(vlm) if load.quantize else vlm

    def tasks(self) -> list[Any]:
        """The suite as evaluation sees it (loaded once, on first use)."""
        if not self._tasks:
            self._tasks.extend(
                load_suite(
                    self.c["suite"],
                    seed=self.seed,
                    max_train=self.tune_cfg.max_train,
                    max_test=self.c["max_test"],
                )
            )
        return self._tasks

    def train_tasks(self) -> list[Any]:
        """The tasks tuning and the learned-affinity groupings see: the suite without the held-out ones."""
        return [t for t in self.tasks() if t.name not in self.holdout]

    # ------------------------------------------------------------------ predict + profile
    def predict_and_profile(self) -> None:
        c, load, seed = self.c, self.load, self.seed
        pred = dict(c["predict"])
        cap_key = "max_train" if pred["split"] == "train" else "max_test"
        if pred["max_samples"] is None:
            pred["max_samples"] = c[cap_key]
        preds_path = self.out / "predictions.jsonl"
        k_predict = self.stages.run(
            "predict",
            {"suite": c["suite"], "model": self.model_id, **load.record(), "seed": seed, **pred},
            [preds_path],
            lambda resume: run_predict(
                suite=c["suite"],
                model=c["model"],
                out=preds_path,
                modes=pred["modes"],
                split=pred["split"],
                batch_size=pred["batch_size"],
                device=c["device"],
                dtype=c["dtype"],
                device_map=load.device_map,
                attn_implementation=load.attn_implementation,
                features=pred["features"],
                max_samples=pred["max_samples"],
                seed=seed,
                text_only_image=pred["text_only_image"],
                progress=self.progress,
            ),
        )
        prof = dict(c["profile"])

        self.k_profile = self.stages.run(
            "profile",
            {"predict": k_predict, "seed": seed, **prof},
            [self.profiles_path],
            lambda resume: profile_predictions(preds_path, seed=seed, **prof).save(
                self.profiles_path, force=True
            ),
        )
        self.profiles = Profiles.load(self.profiles_path)
        self.holdout = list(c["holdout"])
        for t in self.holdout:
            if t not in self.profiles.tasks:
                raise MintError(f"{self.cfg.source}: holdout: task {t!r} is not in the suite")
        if len(self.profiles.tasks) - len(self.holdout) < 1:
            raise MintError(
                f"{self.cfg.source}: holdout: every task is held out; nothing is left to train on"
            )

    # ------------------------------------------------------------------ groupings
    def group(self) -> None:
        """One groups file per method; the groupings see only the training tasks (the held-out ones are
        routed to a group afterwards). ``random`` is size-matched to MINT's grouping, so MINT comes first."""
        for method in sorted(self.c["cluster"]["methods"], key=lambda m: m == "random"):
            path = self.out / "groups" / f"{method}.json"
            like = self.group_files.get("mint") if method == "random" else None
            self.group_keys[method] = self.stages.run(
                f"cluster/{method}",
                self._group_inputs(method, like),
                [path],
                lambda resume, method=method, path=path, like=like: self._do_group(method, path, like),
            )
            self.group_files[method] = path

    def _group_inputs(self, method: str, like: Path | None) -> dict[str, Any]:
        cl, seed = self.c["cluster"], self.seed
        if method in AFFINITY_METHODS:  # learned from the model, not from the profiles
            return {
                "suite": self.c["suite"],
                "model": self.model_id,
                **self.load.record(),
                "method": method,
                "seed": seed,
                "k": cl["k"],
                "max_train": self.c["max_train"],
                "holdout": self.holdout,
                **cl["affinity"],
            }
        return {
            "profile": self.k_profile,
            "method": method,
            "seed": seed,
            "k": cl["k"],
            "split_uniqueness": cl["split_uniqueness"],
            "bootstrap": cl["bootstrap"],
            "like": self.group_keys.get("mint") if like else None,
            "holdout": self.holdout,
        }

    def _do_group(self, method: str, path: Path, like: Path | None) -> None:
        cl = self.c["cluster"]
        if method in AFFINITY_METHODS:
            grouping = affinity_grouping(
                self.backbone(),
                self.train_tasks(),
                method,
                cl["k"],
                seed=self.seed,
                progress=self.progress,
                **cl["affinity"],
            )
        else:
            train_profiles = self.profiles.only([t for t in self.profiles.tasks if t not in self.holdout])
            grouping = group(
                train_profiles,
                method=method,
                k=cl["k"],
                seed=self.seed,
                split_uniqueness=cl["split_uniqueness"],
                like=str(like) if like else None,
                bootstrap=cl["bootstrap"],
            )
        grouping.save(path, force=True)

    # ------------------------------------------------------------------ profile figures
    def plot(self) -> None:
        methods = list(self.c["cluster"]["methods"])
        lead = "mint" if "mint" in methods else methods[0]
        fmt = self.c["plot"]["format"]
        self.k_plot = self.stages.run(
            "plot",
            {"profile": self.k_profile, "groups": self.group_keys[lead], "format": fmt},
            [self.fig_dir / "index.json"],
            lambda resume: plot_all(
                self.profiles,
                Grouping.load(self.group_files[lead]),
                out_dir=self.fig_dir,
                fmt=fmt,
                force=True,
            ),
        )

    # ------------------------------------------------------------------ route the held-out tasks
    def route(self) -> None:
        for method in self.c["cluster"]["methods"] if self.holdout else ():
            path = self.out / "routes" / f"{method}.json"

            def do_route(resume: bool, method: str = method, path: Path = path) -> None:
                grouping = Grouping.load(self.group_files[method])
                route_tasks(self.profiles, grouping, self.holdout).save(path, force=True)

            inputs = {"profile": self.k_profile, "groups": self.group_keys[method]}
            self.stages.run(f"route/{method}", inputs, [path], do_route)
            self.routes[method] = Routes.load(path).routes

    # ------------------------------------------------------------------ tune + evaluate each grouping
    def runs(self) -> list[tuple[str, str, TuneConfig, int]]:
        """(row, grouping method, tuning options, seed) of every run: one row per grouping method with the
        common tuning options, then one per variant of a grouping, each once per seed."""
        c, tune_cfg = self.c, self.tune_cfg
        settings = [(method, method, tune_cfg) for method in c["cluster"]["methods"]]
        settings += [
            (
                name,
                v["groups"],
                TuneConfig.from_dict(
                    {**tune_cfg.to_dict(), **v["tune"]}, f"{self.cfg.source}: variants.{name}.tune"
                ),
            )
            for name, v in c["variants"].items()
        ]
        return [
            (row, method, TuneConfig.from_dict({**tcfg.to_dict(), "seed": s}, self.cfg.source), s)
            for row, method, tcfg in settings
            for s in c["seeds"]
        ]

    def tune_and_evaluate(self) -> None:
        self.evals: dict[str, list[Evaluation]] = {}
        self.eval_keys: dict[str, str] = {}
        for i, (row, method, tcfg, tune_seed) in enumerate(self.runs()):
            run_dir = self.out / "runs" / row / f"seed-{tune_seed}"
            stage = f"{row}/seed-{tune_seed}"
            if self.only not in (None, REPORT, stage):
                continue
            k_tune = self.stages.run(
                f"tune/{stage}",
                {
                    "suite": self.c["suite"],
                    "model": self.model_id,
                    **self.load.record(),
                    "data_seed": self.seed,
                    "holdout": self.holdout,
                    "groups": self.group_keys[method],
                    "tune": tcfg.to_dict(),
                    "max_test": self.c["max_test"],
                    "profile": self.k_profile if tcfg.tower == "auto" else None,
                },
                [run_dir / "tune.json"],
                lambda resume, run_dir=run_dir, tcfg=tcfg, row=row, method=method: self._do_tune(
                    resume, run_dir, tcfg, row, method
                ),
            )
            zero_shot = bool(self.c["evaluate"]["zero_shot"]) and i == 0
            self.eval_keys[stage] = self.stages.run(
                f"evaluate/{stage}",
                {
                    "tune": k_tune,
                    "zero_shot": zero_shot,
                    "batch_size": self.c["evaluate"]["batch_size"],
                    "per_sample": True,
                    "routes": self.routes.get(method),
                },
                [run_dir / "eval.json"],
                lambda resume, run_dir=run_dir, zero_shot=zero_shot, method=method: evaluate_run(
                    run_dir,
                    self.tasks(),
                    vlm=self.backbone(),
                    zero_shot=zero_shot,
                    batch_size=self.c["evaluate"]["batch_size"],
                    progress=self.progress,
                    force=True,
                    routes=self.routes.get(method),
                ),
            )
            self.evals.setdefault(row, []).append(Evaluation.load(run_dir))
            if row == "mint" and self.c["evaluate"]["merged"]:
                self._merged(run_dir, k_tune, tune_seed)

    def _merged(self, run_dir: Path, k_tune: str, tune_seed: int) -> None:
        """The ``merged`` row: the MINT run's group adapters merged into one (:func:`merged_run`), evaluated
        like any run (a held-out task goes to the one merged adapter); part of the MINT run's stage."""
        merged_dir = self.out / "runs" / MERGED / f"seed-{tune_seed}"
        routes = dict.fromkeys(self.holdout, MERGED) or None
        k_merge = self.stages.run(
            f"merge/mint/seed-{tune_seed}",
            {"tune": k_tune},
            [merged_dir / "tune.json"],
            lambda resume: merged_run(run_dir, self._fresh(merged_dir), device=self.c["device"]),
        )
        self.eval_keys[f"{MERGED}/seed-{tune_seed}"] = self.stages.run(
            f"evaluate/{MERGED}/seed-{tune_seed}",
            {
                "merge": k_merge,
                "batch_size": self.c["evaluate"]["batch_size"],
                "per_sample": True,
                "routes": routes,
            },
            [merged_dir / "eval.json"],
            lambda resume: evaluate_run(
                merged_dir,
                self.tasks(),
                vlm=self.backbone(),
                zero_shot=False,
                batch_size=self.c["evaluate"]["batch_size"],
                progress=self.progress,
                force=True,
                routes=routes,
            ),
        )
        self.evals.setdefault(MERGED, []).append(Evaluation.load(merged_dir))

    @staticmethod
    def _fresh(folder: Path) -> Path:
        """``folder`` emptied (a stage redoing its outputs starts from nothing)."""
        if folder.exists():
            shutil.rmtree(folder)
        return folder

    def _do_tune(self, resume: bool, run_dir: Path, tcfg: TuneConfig, row: str, method: str) -> None:
        c = self.c
        vlm = self.backbone()
        resumable = resume and (run_dir / "checkpoints" / "state.json").is_file()
        # one tracker run per group, named <setting>/<group>/seed<seed>, all in <out>/tracking
        tracking = Tracking(
            c["report_to"],
            self.out / TRACKING_DIR,
            row,
            tcfg.seed,
            {**tcfg.to_dict(), "suite": c["suite"], "model": c["model"], "groups": method},
        )
        meta = {
            "suite": c["suite"],
            "model": c["model"],
            **self.load.record(),
            "max_train": self.tune_cfg.max_train,
            "max_test": c["max_test"],
            "data_seed": self.seed,  # the suite is sampled once; the tuning seeds vary only the training
            "groups_file": str(self.group_files[method]),
            "profiles_file": str(self.profiles_path),
        }
        with tracking:
            train_run(
                vlm,
                self.train_tasks(),
                Grouping.load(self.group_files[method]).data,
                run_dir,
                tcfg,
                profiles=self.profiles.data,
                profiles_source=str(self.profiles_path),
                accelerator=make_run_accelerator(tcfg, training_precision(c["dtype"], launch_device_kind())),
                resume=resumable,
                force=not resumable,
                meta={**meta, "tracking": tracking.describe()} if tracking.enabled else meta,
                progress=self.progress,
            )

    # ------------------------------------------------------------------ report
    def report(self) -> Report:
        report_path = self.out / "report.json"
        fmt = self.c["plot"]["format"]
        index = read_json(self.fig_dir / "index.json", "figures/index.json")
        profile_figures = [self.fig_dir / f["file"] for f in index["figures"]]
        self.stages.run(
            "report",
            {"evaluations": self.eval_keys, "format": fmt, "plot": self.k_plot},
            [report_path, self.out / "report.md", self.out / "report.html"],
            lambda resume: write_report(
                self.evals,
                self.out,
                force=True,
                fmt=fmt,
                profile_figures=profile_figures,
                config={"source": self.cfg.source, **self.c},
            ),
        )
        stages = [
            {"stage": r.name, "key": r.key, "cached": r.cached, "seconds": round(r.seconds, 3)}
            for r in self.stages.results
        ]
        seconds = round(time.perf_counter() - self.t_start, 3)
        record = {"config": self.c, "source": self.cfg.source, "stages": stages, "seconds": seconds}
        atomic_write_json(self.out / "pipeline.json", stamp(record))
        return Report.load(report_path)


def summary_table(report: Report | Mapping[str, Any], files: list[Path] = (), width: int = 100) -> str:
    """The terminal summary: one line per compared setting (mean, its 95% interval when the report has
    one, groups, trainable parameters, training seconds; ``*`` marks the best mean), the comparisons'
    verdict sentences when present, and the report ``files``; no line but the files' is wider than
    ``width``."""
    rows = report["rows"]
    with_ci = any(isinstance(r.get("ci95"), list) and len(r["ci95"]) == 2 for r in rows.values())
    fixed = 8 + (17 if with_ci else 0) + 7 + 12 + 9  # the numeric columns and their separators
    name_w = max(7, min(max(len(n) for n in rows), width - fixed - 2))
    head = f"{'setting':<{name_w}} {'mean':>6} " + (f" {'95% interval':>16}" if with_ci else "")
    head += f" {'groups':>6} {'trainable':>11} {'train s':>8}"
    lines = [head, "-" * len(head)]
    best = max((r["mean"] for r in rows.values() if r.get("mean") is not None), default=None)
    for name, row in rows.items():
        label = name if len(name) <= name_w else name[: name_w - 1] + "~"
        mean = "n/a" if row.get("mean") is None else f"{row['mean']:.3f}"
        mark = "*" if best is not None and row.get("mean") == best else " "
        line = f"{label:<{name_w}} {mean:>6}{mark}"
        if with_ci:
            ci = row.get("ci95")
            line += f" {f'[{ci[0]:.3f}, {ci[1]:.3f}]' if isinstance(ci, list) and len(ci) == 2 else '':>16}"
        params = row.get("trainable_params") or 0
        secs = row.get("train_seconds") or 0.0
        line += f" {len(row.get('groups') or {}):>6} {params:>11,} {secs:>8.1f}"
        lines.append(line)
    lines.append("* best mean" + (f" ({report['metric']})" if report.get("metric") else ""))
    for c in report.get("comparisons") or []:
        if c.get("sentence"):
            lines += textwrap.wrap(str(c["sentence"]), width, initial_indent="- ", subsequent_indent="  ")
    lines += [f"report: {f}" for f in files]  # whole, so that the path can be copied
    return "\n".join(lines)
