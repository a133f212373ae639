"""The stage graph of ``mint run``: its stages in order, as shell commands, or run in parallel processes.

A run has three kinds of stage, each a ``mint run CONFIG --stage ID`` command:

- ``prepare``: predict, profile, every grouping, the profile figures and the routes of held-out tasks;
- ``<row>/seed-<s>``: the tuning and evaluation of one compared row (grouping or variant) and seed (for
  ``mint`` also its ``merged`` row, with ``evaluate.merged``), which needs ``prepare`` and nothing else, so
  that all of them can run at the same time;
- ``report``: the report, once every ``<row>/seed-<s>`` stage is done.

``mint run CONFIG --jobs N`` runs ``prepare`` in its own process, then the ``<row>/seed-<s>`` stages in
N worker processes (one GPU each where there are GPUs; on a CPU the threads split between them), then
``report``. Each stage is the same code, with the same inputs and seeds, as in a sequential run, and is
cached and resumed the same way (:mod:`mint.pipeline.stages`).
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mint.artifacts import Report
from mint.errors import MintError
from mint.io import allow_replacing
from mint.pipeline.config import RunConfig
from mint.pipeline.run import run_pipeline
from mint.pipeline.stages import PREPARE, REPORT, selects


@dataclass(frozen=True)
class Stage:
    """One node of the stage graph: its id, the ids it needs, and the command that runs it."""

    id: str
    after: tuple[str, ...]
    command: str


def run_ids(data: dict[str, Any]) -> list[str]:
    """The ``<row>/seed-<s>`` stages of a run config, in the order a sequential run does them: each
    grouping method, then each variant, each with every tuning seed."""
    rows = [*data["cluster"]["methods"], *data["variants"]]
    return [f"{row}/seed-{s}" for row in rows for s in data["seeds"]]


def stage_ids(data: dict[str, Any]) -> list[str]:
    """Every stage id of a run config, in a valid order."""
    return [PREPARE, *run_ids(data), REPORT]


def check_stage(cfg: RunConfig, stage: str) -> None:
    """Refuse a stage id that is not one of ``cfg``'s, naming the valid ones."""
    ids = stage_ids(cfg.data)
    if stage not in ids:
        shown = ", ".join(ids if len(ids) <= 8 else [*ids[:6], "...", ids[-1]])
        raise MintError(f"--stage: {stage!r} is not a stage of {cfg.source} (stages: {shown})")


def stage_graph(cfg: RunConfig, config_path: Path, *, allow_code: bool = False) -> list[Stage]:
    """The stages of ``cfg`` as ``mint run`` commands, in an order that respects their dependencies."""
    base = ["mint", "run", str(Path(config_path).resolve()), "--out", str(cfg.out.resolve())]
    base += ["--seed", str(cfg["seed"]), "--no-progress"] + (["--allow-code"] if allow_code else [])
    runs = run_ids(cfg.data)

    def command(stage: str) -> str:
        return shlex.join([*base, "--stage", stage])

    return [
        Stage(PREPARE, (), command(PREPARE)),
        *(Stage(r, (PREPARE,), command(r)) for r in runs),
        Stage(REPORT, tuple(runs), command(REPORT)),
    ]


def format_graph(stages: list[Stage]) -> str:
    """The graph as a shell script: a comment naming each stage and what it needs, then its command."""
    lines = ["# mint run stages, in order; each needs the stages after 'needs:' to have finished"]
    for s in stages:
        needs = ", ".join(s.after) if len(s.after) <= 4 else f"{len(s.after)} stages: {', '.join(s.after)}"
        lines += [f"# stage {s.id}; needs: {needs or 'nothing'}", s.command]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- --jobs N
def _visible_gpus(device: str) -> list[str]:
    """The GPUs to hand out one per worker: those CUDA_VISIBLE_DEVICES shows, where the run's device is
    CUDA (``auto`` on a machine with GPUs, or ``cuda``); none otherwise."""
    if device not in ("auto", "cuda"):
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    shown = os.environ.get("CUDA_VISIBLE_DEVICES")
    if shown is not None and shown.strip():
        return [g.strip() for g in shown.split(",") if g.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


#: imported once in the fork server, so that each worker forked from it starts without importing them
_PRELOAD = ["torch", "transformers", "peft", "mint.models", "mint.tuning", "mint.tuning.modes"]


def _worker_context() -> Any:
    """Workers forked from a fresh server process that has imported torch and the model code once (no
    CUDA or thread state of this process inherited); a plain spawn where fork servers do not exist."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _init_worker(slots: Any, gpus: list[str]) -> None:
    """Runs first in each worker process: take a slot, and the slot's GPU before CUDA starts."""
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]


def _run_stage(cfg: RunConfig, stage: str, force: bool) -> tuple[list[str], float]:
    """One ``<row>/seed-<s>`` stage in a worker: the log lines it wrote, and its seconds."""
    allow_replacing(True)  # as in `mint run`: the pipeline's outputs are its cache
    lines: list[str] = []
    ours = selects(stage)
    t0 = time.perf_counter()
    # the log keeps this stage's own lines, not the [cached] lines of the prepare stages it reads
    run_pipeline(cfg, force=force, progress=False, log=lines.append, only=stage)
    return [line for line in lines if ours(line.split("] ", 1)[-1])], time.perf_counter() - t0


def worker_threads(threads: int | None, jobs: int) -> int:
    """Each worker's CPU threads: the run's threads (else the machine's cores) split between the jobs."""
    return max(1, (threads or os.cpu_count() or 1) // jobs)


def run_parallel(
    cfg: RunConfig,
    jobs: int,
    *,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Report | None:
    """``mint run --jobs N``: ``prepare`` here, the ``<row>/seed-<s>`` stages in ``jobs`` worker
    processes, then ``report`` here; return the report. Outputs equal a sequential run's."""
    from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

    from tqdm.auto import tqdm

    run_pipeline(cfg, force=force, progress=progress, log=log, only=PREPARE)
    runs = run_ids(cfg.data)
    gpus = _visible_gpus(cfg["device"])
    jobs = max(1, min(jobs, len(runs)))
    threads = cfg["threads"] if gpus else worker_threads(cfg["threads"], jobs)
    worker_cfg = replace(cfg, data={**cfg.data, "threads": threads})
    where = f"{len(gpus)} GPU(s)" if gpus else f"{threads} thread(s) each"
    log(f"[jobs] {len(runs)} tune + evaluate stages in {jobs} processes ({where})")
    ctx = _worker_context()
    slots = ctx.Queue()
    for i in range(jobs):
        slots.put(i)
    with (
        ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(slots, gpus)) as pool,
        tqdm(total=len(runs), desc="tune + evaluate", unit="stage", disable=not progress) as bar,
    ):
        futures = {pool.submit(_run_stage, worker_cfg, r, force): r for r in runs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                error = fut.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    log(f"[failed] {futures[fut]}")
                    raise error
                lines, seconds = fut.result()
                for line in lines:
                    log(line)
                log(f"[done] {futures[fut]} ({seconds:.1f} s)")
                bar.update(1)
    return run_pipeline(cfg, force=force, progress=progress, log=log, only=REPORT)
