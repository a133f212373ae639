"""Evaluation of a tuning run: every task's test split answered with its group's adapter.

Every task's test samples (and, for the zero-shot row, the same samples without adapters) are answered
through :class:`~mint.tuning.routing.Router` in batches that mix tasks and adapters, scored
with the task's metric (:mod:`mint.metrics`: ``exact``, ``f1``, ``rouge_l``, ``bleu``, ``cider``,
``embedding:MODEL``; ``choice`` answers are picked among the task's answers by the model and scored by
exact match; several references per sample where the sample has them) and written to ``eval.json`` in the run folder, with the zero-shot
scores of the bare backbone (adapters disabled) when asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mint.artifacts.routes import Routes
from mint.artifacts.runs import EVAL, Evaluation, TuneRun
from mint.errors import MintError
from mint.io import atomic_write_jsonl, stamp
from mint.metrics import score_task
from mint.tasks.demos import check_multi_image, in_context_setting, task_demos
from mint.tuning.continual_methods.mr_lora import route_items
from mint.tuning.routing import Router
from mint.tuning.runs import load_run_model, load_run_tasks, load_tune, run_in_context
from mint.tuning.serving import Item
from mint.tuning.tracking import log_run_evaluation


def score_predictions(task: Any, predictions: list[str]) -> list[float]:
    """Each test sample's score under the task's metric against its references (:mod:`mint.metrics`)."""
    return score_task(task, predictions)


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def eval_request(
    tune: dict[str, Any],
    suite: str | None = None,
    model: str | None = None,
    max_test: int | None = None,
    in_context: int | None = None,
    demo_selection: str | None = None,
    generation: dict[str, int] | None = None,
    routes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What an evaluation of a run is made with (recorded in eval.json to decide whether it is reusable);
    the in-context setting only when the prompts carry demonstrations, the open-answer generation
    settings only when they are not the defaults (:func:`generation_setting`)."""
    request = {
        "suite": suite or tune.get("suite"),
        "model": model or tune.get("model"),
        "max_test": max_test if max_test is not None else tune.get("max_test"),
    }
    k, selection = run_in_context(tune, in_context, demo_selection)
    if k:
        request["in_context"] = in_context_setting(k, selection, int(tune.get("seed", 0)))
    if generation and generation != GENERATION_DEFAULTS:
        request["generation"] = generation
    if routes:
        request["routes"] = dict(sorted(routes.items()))
    return request


#: open-answer generation of an evaluation unless told otherwise: greedy, at most 16 new tokens
GENERATION_DEFAULTS = {"max_new_tokens": 16, "num_beams": 1}


def generation_setting(max_new_tokens: int | None = None, num_beams: int | None = None) -> dict[str, int]:
    """The open-answer generation settings (defaults where not given), checked."""
    out = {
        "max_new_tokens": GENERATION_DEFAULTS["max_new_tokens"] if max_new_tokens is None else max_new_tokens,
        "num_beams": GENERATION_DEFAULTS["num_beams"] if num_beams is None else num_beams,
    }
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MintError(f"--{key.replace('_', '-')}: expected an integer >= 1, got {value!r}")
    return out


def cached_eval(
    run_dir: str | Path, request: dict[str, Any], zero_shot: bool = True, force: bool = False
) -> Evaluation | None:
    """The run's eval.json if it answers ``request`` (None if absent, or with ``force``); an eval.json
    made with other settings is a :class:`MintError` unless ``force``."""
    path = Path(run_dir) / EVAL
    if force or not path.is_file():
        return None
    old = Evaluation.load(path)
    made = old.get("request", {})
    differ = [k for k in {**made, **request} if made.get(k) != request.get(k)]  # keys on either side
    if differ:
        raise MintError(
            f"{path} was made with other settings ({', '.join(differ)}); use --force to evaluate again"
        )
    if zero_shot and not old.get("zero_shot"):
        return None  # the zero-shot part is missing: evaluate again (a superset of the old file)
    if any("sample_scores" not in v for v in (old.get("tasks") or {}).values()):
        return None  # written before per-sample scores were kept: evaluate again
    return old


def evaluate_run(
    run_dir: str | Path | TuneRun,
    tasks: list[Any] | None = None,
    *,
    vlm: Any = None,
    zero_shot: bool = True,
    batch_size: int = 8,
    progress: bool = True,
    force: bool = False,
    suite: str | None = None,
    model: str | None = None,
    max_test: int | None = None,
    device: str = "auto",
    in_context: int | None = None,
    demo_selection: str | None = None,
    max_new_tokens: int | None = None,
    num_beams: int | None = None,
    routes: Routes | dict[str, str] | None = None,
) -> Evaluation:
    """Answer every task's test split with its group's adapter and write ``<run>/eval.json``; return it.

    ``routes`` (task -> group: :func:`mint.clustering.route.route_tasks`'s) sends tasks that are in no group
    of the run (unseen in training) to a group's adapter; they are scored under ``unseen`` (and under
    ``zero_shot.unseen``), apart from the run's own tasks, whose mean they do not enter.

    ``tasks`` default to the run's suite (``suite`` overrides it), ``vlm`` to a fresh load of the run's
    model (``model`` overrides it); the run's adapters are loaded onto ``vlm`` (replacing other adapters).
    Without ``tasks``, an up-to-date eval.json is returned as it is unless ``force``; one made with
    another suite, model or test cap is a :class:`MintError` unless ``force``. Passing ``tasks`` always
    evaluates. The prompts carry the run's in-context demonstrations (tune.json), or ``in_context``
    (with ``demo_selection``) when given, drawn from each task's train split with the run's seed.
    """
    run = run_dir.folder if isinstance(run_dir, TuneRun) else Path(run_dir)
    tune = load_tune(run)
    routes = routes.routes if isinstance(routes, Routes) else routes
    generation = generation_setting(max_new_tokens, num_beams)
    request = eval_request(
        tune, suite, model, max_test, in_context, demo_selection, generation, routes=routes
    )
    k, selection = run_in_context(tune, in_context, demo_selection)
    existing = run / EVAL
    if tasks is None:
        cached = cached_eval(run, request, zero_shot, force)
        if cached is not None:
            return cached
    tasks = tasks if tasks is not None else load_run_tasks(tune, suite, max_test)
    vlm = vlm if vlm is not None else load_run_model(tune, model, device)
    vlm.max_new_tokens, vlm.num_beams = generation["max_new_tokens"], generation["num_beams"]
    check_multi_image(vlm, tasks, k)
    router = Router(run, vlm, batch_size=batch_size)
    routes = _checked_routes(run, router, routes or {}, tasks)
    demos = {t.name: task_demos(t, k, selection, int(tune.get("seed", 0))) for t in tasks}
    unseen = [t.name for t in tasks if t.name in routes]
    names = [t.name for t in tasks if t.name not in routes]

    def shown(name: str, sample: Any) -> Any:
        pick = demos[name]
        return pick(sample) if callable(pick) else pick

    # every setting's tasks in one routed pass: each sample through its group's adapter (or none, zero-shot)
    plan = [("tuned", adapter, name) for adapter, group in router.plan(names).items() for name in group]
    plan += [("unseen", routes[name], name) for name in unseen]  # tasks in no group: their routed adapter
    if zero_shot:
        plan += [("zero_shot", None, name) for name in names]
        plan += [("zero_shot_unseen", None, name) for name in unseen]
    by_name = {t.name: t for t in tasks}
    items = [
        Item(by_name[name], s, adapter, shown(name, s))
        for _, adapter, name in plan
        for s in by_name[name].test
    ]
    items = route_items(router.vlm, items, batch_size)  # per-sample routing (continual mr-lora)
    answers = iter(router.answer_items(items, progress=progress))
    results: dict[str, dict[str, Any]] = {}
    pred_rows: list[dict[str, Any]] = []
    for key, adapter, name in plan:
        task = by_name[name]
        preds = [next(answers) for _ in task.test]
        results.setdefault(key, {})[name], rows = _scored(task, preds, adapter, key)
        pred_rows += [
            {**r, **({"demos": [str(d.id) for d in shown(name, s)]} if k else {})}
            for r, s in zip(rows, task.test)
        ]
    evaluation = Evaluation.from_dict(
        _eval_record(run, tune, request, generation, k, results, names, unseen, zero_shot), str(existing)
    )
    evaluation.save(existing, force=True)  # reused (cached_eval), not a user's file
    atomic_write_jsonl(run / "eval_predictions.jsonl", pred_rows, replace=True)
    log_run_evaluation(tune, evaluation.data)  # to the run's trackers (tune.json "tracking"), when tracked
    return evaluation


def _checked_routes(run: Path, router: Any, routes: dict[str, str], tasks: list[Any]) -> dict[str, str]:
    """``routes`` (task -> group) after checking each task is unseen, evaluated, and routed to a group of
    the run; every task evaluated has test samples."""
    for task, group in routes.items():
        if task in router.assignment:
            raise MintError(
                f"routes: task {task!r} is in group {router.assignment[task]!r} of the run already"
            )
        if group not in set(router.assignment.values()):
            raise MintError(f"routes: task {task!r} is routed to {group!r}, which is no group of {run}")
    absent = sorted(set(routes) - {t.name for t in tasks})
    if absent:
        raise MintError(f"routes: task {absent[0]!r} is not in the suite evaluated (pass --suite with it)")
    for t in tasks:
        if not t.test:
            raise MintError(f"task {t.name!r}: no test samples to evaluate")
    return dict(routes)


def _scored(task: Any, preds: list, adapter: str | None, setting: str) -> tuple[dict[str, Any], list[dict]]:
    """A task's entry of eval.json (mean score, count, metric, group, per-sample scores) and its rows of
    eval_predictions.jsonl."""
    scores = score_predictions(task, preds)
    entry = {
        "score": _mean(scores),
        "n": len(scores),
        "metric": task.metric,
        **({"group": adapter} if adapter else {}),
        # per-sample scores, so that intervals and paired tests can be redone (mint.tuning.stats)
        "ids": [str(s.id) for s in task.test],
        "sample_scores": scores,
    }
    rows = [
        {
            "setting": setting,
            "task": task.name,
            "id": s.id,
            "group": adapter,
            "answer": str(s.answer),
            "prediction": p,
            "score": sc,
        }
        for s, p, sc in zip(task.test, preds, scores)
    ]
    return entry, rows


def _eval_record(
    run: Path,
    tune: dict[str, Any],
    request: dict[str, Any],
    generation: dict[str, Any],
    k: int,
    results: dict[str, dict[str, Any]],
    names: list[str],
    unseen: list[str],
    zero_shot: bool,
) -> dict[str, Any]:
    """eval.json: the run, the request it answers, each setting's task scores and means."""
    tuned = {n: results["tuned"][n] for n in names}
    out = stamp(
        {
            "run": str(run),
            "request": request,
            "generation": {**generation, "do_sample": False},
            "suite": request["suite"],
            "model": request["model"],
            "seed": tune.get("seed"),
            "method": tune.get("method", "custom"),
            **({"continual": tune["continual"]["mode"]} if tune.get("continual") else {}),
            **({"in_context": request["in_context"]} if k else {}),
            "groups": tune.get("groups"),
            "trainable_params": tune.get("trainable_params"),
            "train_seconds": tune.get("train_seconds"),
            "tasks": tuned,
            "mean": _mean([v["score"] for v in tuned.values()]),
        }
    )
    if unseen:
        out["unseen"] = {n: results["unseen"][n] for n in unseen}
    if zero_shot:
        zs = {n: results["zero_shot"][n] for n in names}
        out["zero_shot"] = {"tasks": zs, "mean": _mean([v["score"] for v in zs.values()])}
        if unseen:
            out["zero_shot"]["unseen"] = {n: results["zero_shot_unseen"][n] for n in unseen}
    return out
