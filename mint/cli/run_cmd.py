"""``mint run config.yaml``: the whole pipeline, each stage cached by a hash of its inputs."""

from __future__ import annotations

from pathlib import Path

import click

from mint.cli.types import progress_option
from mint.io import allow_replacing
from mint.models.devices import single_process
from mint.pipeline import load_run_config, run_pipeline, schedule, summary_table
from mint.seeds import seed_type


@click.command("run")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", default=None, help="Output folder (overrides the config's `out`).")
@click.option("--seed", type=seed_type(), default=None, help="Seed (overrides the config's `seed`).")
@click.option("--force", is_flag=True, help="Redo every stage, even those whose inputs did not change.")
@progress_option
@click.option(
    "--allow-code",
    is_flag=True,
    help="Let the config's profile.similarity name a package.module:function, which mint imports and runs "
    "(off by default: a config file cannot make mint run code).",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Tune and evaluate the compared rows and seeds in N processes (one GPU each where there are GPUs; "
    "on a CPU the threads split between them). Outputs equal a sequential run's.",
)
@click.option(
    "--print-stages",
    is_flag=True,
    help="Print the run's stages as `mint run --stage` commands, in order, each with the stages it needs "
    "(for an external scheduler), and run nothing.",
)
@click.option(
    "--stage",
    default=None,
    metavar="ID",
    help="Run one stage of --print-stages (prepare, <row>/seed-<s>, report); the ones it needs must be done.",
)
def command(
    config: Path,
    out: str | None,
    seed: int | None,
    force: bool,
    progress: bool,
    allow_code: bool,
    jobs: int = 1,
    print_stages: bool = False,
    stage: str | None = None,
) -> None:
    """Predict, profile, cluster, plot, tune each grouping, evaluate and report, as CONFIG says."""
    single_process("mint run")
    allow_replacing(True)  # the pipeline's outputs are its cache: a stage whose inputs changed redoes them

    cfg = load_run_config(config, {"out": out, "seed": seed}, allow_code=allow_code)
    if print_stages:
        click.echo(schedule.format_graph(schedule.stage_graph(cfg, config, allow_code=allow_code)))
        return

    def log(message: str) -> None:
        click.echo(message, err=True)

    if stage is not None:
        if jobs > 1:
            raise click.UsageError("--stage runs one stage; --jobs applies to a whole run")
        schedule.check_stage(cfg, stage)
        report = run_pipeline(cfg, force=force, progress=progress, log=log, only=stage)
    elif jobs > 1:
        report = schedule.run_parallel(cfg, jobs, force=force, progress=progress, log=log)
    else:
        report = run_pipeline(cfg, force=force, progress=progress, log=log)
    if report is not None:
        click.echo(summary_table(report, [cfg.out / "report.html", cfg.out / "report.md"]))
