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

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mint.api import report as write_report
from mint.artifacts import Evaluation, Grouping, Profiles, Report
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
from mint.pipeline.schedule import PREPARE, REPORT, selects
from mint.pipeline.stages import StageCache
from mint.plotting import plot_all
from mint.profiling import profile_predictions
from mint.tasks import load_suite
from mint.tuning import TuneConfig, evaluate_run
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
) -> dict[str, Any] | None:
    """Run every stage of ``cfg`` into ``cfg.out``; return the report (report.json content).

    ``only`` runs one stage of :mod:`mint.pipeline.schedule` (``prepare``, ``<row>/seed-<s>`` or
    ``report``), the stages it needs being done already; it returns the report only for ``report``.
    """
    c = cfg.data
    if c["threads"]:
        import torch

        torch.set_num_threads(c["threads"])
    out = cfg.out
    model_id = _model_identity(c["model"])  # a model that cannot be had fails before anything is made
    load = load_options(c)

    def backbone() -> Any:
        """The config's backbone as tuning and evaluation use it (a QLoRA base prepared as for training)."""
        vlm = load_model(
            c["model"],
            device=c["device"],
            dtype=c["dtype"],
            device_map=load.device_map,
            attn_implementation=load.attn_implementation,
            quantize=load.quantize,
        )
        return prepare_kbit(vlm) if load.quantize else vlm

    out.mkdir(parents=True, exist_ok=True)
    stages = StageCache(out, force=force, log=log, selected=selects(only))
    seed = c["seed"]
    t_start = time.perf_counter()

    # ------------------------------------------------------------------ predict + profile
    pred = dict(c["predict"])
    cap_key = "max_train" if pred["split"] == "train" else "max_test"
    if pred["max_samples"] is None:
        pred["max_samples"] = c[cap_key]
    preds_path = out / "predictions.jsonl"
    k_predict = stages.run(
        "predict",
        {"suite": c["suite"], "model": model_id, **load.record(), "seed": seed, **pred},
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
            progress=progress,
        ),
    )

    profiles_path = out / "profiles.json"
    prof = dict(c["profile"])

    def do_profile(resume: bool) -> None:
        Profiles.from_dict(profile_predictions(preds_path, seed=seed, **prof)).save(profiles_path, force=True)

    k_profile = stages.run(
        "profile", {"predict": k_predict, "seed": seed, **prof}, [profiles_path], do_profile
    )
    profiles = Profiles.load(profiles_path)
    holdout = list(c["holdout"])
    for t in holdout:
        if t not in profiles.tasks:
            raise MintError(f"{cfg.source}: holdout: task {t!r} is not in the suite")
    if len(profiles.tasks) - len(holdout) < 1:
        raise MintError(f"{cfg.source}: holdout: every task is held out; nothing is left to train on")
    # the groupings see only the training tasks; the held-out ones are routed to a group afterwards
    train_profiles = profiles.only([t for t in profiles.tasks if t not in holdout])

    tune_cfg = TuneConfig.from_dict(dict(c["tune"]), f"{cfg.source}: tune")
    tasks_cache: list[Any] = []

    def tasks() -> list[Any]:
        """The suite as evaluation sees it (loaded once, on first use)."""
        if not tasks_cache:
            tasks_cache.extend(
                load_suite(c["suite"], seed=seed, max_train=tune_cfg.max_train, max_test=c["max_test"])
            )
        return tasks_cache

    def train_tasks() -> list[Any]:
        """The tasks tuning and the learned-affinity groupings see: the suite without the held-out ones."""
        return [t for t in tasks() if t.name not in holdout]

    # ------------------------------------------------------------------ groupings
    cl = c["cluster"]
    methods = list(cl["methods"])
    group_keys: dict[str, str] = {}
    group_files: dict[str, Path] = {}
    # `random` is size-matched to the MINT grouping, so the reference comes first
    for method in sorted(methods, key=lambda m: m == "random"):
        path = out / "groups" / f"{method}.json"
        like = group_files.get("mint") if method == "random" else None
        inputs = {
            "profile": k_profile,
            "method": method,
            "seed": seed,
            "k": cl["k"],
            "split_uniqueness": cl["split_uniqueness"],
            "bootstrap": cl["bootstrap"],
            "like": group_keys.get("mint") if like else None,
            "holdout": holdout,
        }

        if method in AFFINITY_METHODS:  # learned from the model, not from the profiles
            inputs = {
                "suite": c["suite"],
                "model": model_id,
                **load.record(),
                "method": method,
                "seed": seed,
                "k": cl["k"],
                "max_train": c["max_train"],
                "holdout": holdout,
                **cl["affinity"],
            }

        def do_cluster(
            resume: bool, method: str = method, path: Path = path, like: Path | None = like
        ) -> None:
            if method in AFFINITY_METHODS:
                vlm = backbone()
                payload = affinity_grouping(
                    vlm, train_tasks(), method, cl["k"], seed=seed, progress=progress, **cl["affinity"]
                )
            else:
                payload = group(
                    train_profiles,
                    method=method,
                    k=cl["k"],
                    seed=seed,
                    split_uniqueness=cl["split_uniqueness"],
                    like=str(like) if like else None,
                    bootstrap=cl["bootstrap"],
                    source=str(profiles_path),
                )
            Grouping.from_dict(payload, str(path)).save(path, force=True)

        group_keys[method] = stages.run(f"cluster/{method}", inputs, [path], do_cluster)
        group_files[method] = path

    # ------------------------------------------------------------------ profile figures
    fig_dir = out / "figures"
    lead = "mint" if "mint" in methods else methods[0]
    fmt = c["plot"]["format"]
    k_plot = stages.run(
        "plot",
        {"profile": k_profile, "groups": group_keys[lead], "format": fmt},
        [fig_dir / "index.json"],
        lambda resume: plot_all(
            profiles, Grouping.load(group_files[lead]), out_dir=fig_dir, fmt=fmt, force=True
        ),
    )

    # ------------------------------------------------------------------ route the held-out tasks
    routes: dict[str, dict[str, str]] = {}
    for method in methods if holdout else ():
        path = out / "routes" / f"{method}.json"

        def do_route(resume: bool, method: str = method, path: Path = path) -> None:
            atomic_write_json(
                path,
                route_tasks(
                    profiles, Grouping.load(group_files[method]), holdout, str(profiles_path), str(path)
                ),
            )

        stages.run(f"route/{method}", {"profile": k_profile, "groups": group_keys[method]}, [path], do_route)
        routes[method] = read_json(path, "routes.json")["routes"]
    if only == PREPARE:
        return None

    # ------------------------------------------------------------------ tune + evaluate each grouping
    meta = {
        "suite": c["suite"],
        "model": c["model"],
        **load.record(),
        "max_train": tune_cfg.max_train,
        "max_test": c["max_test"],
        "data_seed": seed,  # the suite is sampled once; the tuning seeds vary only the training
    }
    evals: dict[str, list[dict[str, Any]]] = {}
    eval_keys: dict[str, str] = {}
    ev = c["evaluate"]
    # one row per grouping method with the common tuning options, then one per variant of a grouping
    settings = [(method, method, tune_cfg) for method in methods]
    settings += [
        (
            name,
            v["groups"],
            TuneConfig.from_dict({**tune_cfg.to_dict(), **v["tune"]}, f"{cfg.source}: variants.{name}.tune"),
        )
        for name, v in c["variants"].items()
    ]
    runs = [
        (row, method, TuneConfig.from_dict({**tcfg.to_dict(), "seed": s}, cfg.source), s)
        for row, method, tcfg in settings
        for s in c["seeds"]
    ]
    for i, (row, method, tcfg, tune_seed) in enumerate(runs):
        run_dir = out / "runs" / row / f"seed-{tune_seed}"
        stage = f"{row}/seed-{tune_seed}"
        if only not in (None, REPORT, stage):
            continue

        def do_tune(
            resume: bool,
            method: str = method,
            run_dir: Path = run_dir,
            tcfg: TuneConfig = tcfg,
            row: str = row,
        ) -> None:
            vlm = backbone()
            resumable = resume and (run_dir / "checkpoints" / "state.json").is_file()
            # one tracker run per group, named <setting>/<group>/seed<seed>, all in <out>/tracking
            tracking = Tracking(
                c["report_to"],
                out / TRACKING_DIR,
                row,
                tcfg.seed,
                {**tcfg.to_dict(), "suite": c["suite"], "model": c["model"], "groups": method},
            )
            run_meta = {**meta, "groups_file": str(group_files[method]), "profiles_file": str(profiles_path)}
            with tracking:
                train_run(
                    vlm,
                    train_tasks(),
                    Grouping.load(group_files[method]).data,
                    run_dir,
                    tcfg,
                    profiles=profiles.data,
                    profiles_source=str(profiles_path),
                    accelerator=make_run_accelerator(
                        tcfg, training_precision(c["dtype"], launch_device_kind())
                    ),
                    resume=resumable,
                    force=not resumable,
                    meta={**run_meta, "tracking": tracking.describe()} if tracking.enabled else run_meta,
                    progress=progress,
                )

        k_tune = stages.run(
            f"tune/{stage}",
            {
                "suite": c["suite"],
                "model": model_id,
                **load.record(),
                "data_seed": seed,
                "holdout": holdout,
                "groups": group_keys[method],
                "tune": tcfg.to_dict(),
                "max_test": c["max_test"],
                "profile": k_profile if tcfg.tower == "auto" else None,
            },
            [run_dir / "tune.json"],
            do_tune,
        )
        zero_shot = bool(ev["zero_shot"]) and i == 0

        def do_eval(
            resume: bool, run_dir: Path = run_dir, zero_shot: bool = zero_shot, method: str = method
        ) -> None:
            vlm = backbone()
            evaluate_run(
                run_dir,
                tasks(),
                vlm=vlm,
                zero_shot=zero_shot,
                batch_size=ev["batch_size"],
                progress=progress,
                force=True,
                routes=routes.get(method),
            )

        eval_keys[stage] = stages.run(
            f"evaluate/{stage}",
            {
                "tune": k_tune,
                "zero_shot": zero_shot,
                "batch_size": ev["batch_size"],
                "per_sample": True,
                "routes": routes.get(method),
            },
            [run_dir / "eval.json"],
            do_eval,
        )
        evals.setdefault(row, []).append(Evaluation.load(run_dir).data)
    if only not in (None, REPORT):
        return None

    # ------------------------------------------------------------------ report
    report_path = out / "report.json"
    profile_figures = [
        fig_dir / f["file"] for f in read_json(fig_dir / "index.json", "figures/index.json")["figures"]
    ]
    stages.run(
        "report",
        {"evaluations": eval_keys, "format": fmt, "plot": k_plot},
        [report_path, out / "report.md", out / "report.html"],
        lambda resume: write_report(
            evals,
            out,
            force=True,
            fmt=fmt,
            profile_figures=profile_figures,
            config={"source": cfg.source, **c},
        ),
    )
    atomic_write_json(
        out / "pipeline.json",
        stamp(
            {
                "config": c,
                "source": cfg.source,
                "stages": [
                    {"stage": r.name, "key": r.key, "cached": r.cached, "seconds": round(r.seconds, 3)}
                    for r in stages.results
                ],
                "seconds": round(time.perf_counter() - t_start, 3),
            }
        ),
    )
    return Report.load(report_path).data


def summary_table(report: dict[str, Any], files: list[Path] = (), width: int = 100) -> str:
    """The terminal summary: one line per compared setting (mean, its 95% interval when the report has
    one, groups, trainable parameters, training seconds; ``*`` marks the best mean), the comparisons'
    verdict sentences when present, and the report ``files``; no line but the files' is wider than
    ``width``."""
    import textwrap

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
