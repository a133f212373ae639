"""``mint demo``: ``mint run`` on a config shipped with the package (default suite, ``tiny`` backbone):
``demo.yaml`` (MINT and the usual baselines, five seeds) or, with ``--full``, ``demo_full.yaml`` (three
seeds, plus the learned-affinity baselines and the MINT grouping tuned in other ways)."""

from __future__ import annotations

from importlib import resources

import click

from mint.cli.types import progress_option
from mint.io import allow_replacing
from mint.models.devices import single_process
from mint.pipeline import load_run_config, run_pipeline, summary_table
from mint.pipeline.schedule import run_parallel
from mint.seeds import seed_type


@click.command("demo")
@click.option("--out", default="mint-demo", show_default=True, help="Output folder.")
@click.option("--seed", type=seed_type(), default=0, show_default=True)
@click.option("--force", is_flag=True, help="Redo every stage, even cached ones.")
@click.option(
    "--full", is_flag=True, help="Also the learned-affinity baselines and MINT tuned in other ways (slower)."
)
@progress_option
@click.option(
    "--jobs",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Tune and evaluate the rows and seeds in N processes (as `mint run --jobs`).",
)
def command(out: str, seed: int, force: bool, progress: bool, full: bool = False, jobs: int = 1) -> None:
    """Run the whole pipeline on the embedded default suite and the tiny backbone (CPU, a few minutes)."""
    single_process("mint demo")
    allow_replacing(True)  # the pipeline's outputs are its cache: a stage whose inputs changed redoes them

    name = "demo_full.yaml" if full else "demo.yaml"
    with resources.as_file(resources.files("mint") / "configs" / name) as path:
        cfg = load_run_config(path, {"out": out, "seed": seed})
    click.echo(f"mint demo: default suite + tiny backbone -> {cfg.out}", err=True)
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if jobs > 1:
        report = run_parallel(cfg, jobs, force=force, progress=progress, log=log)
    else:
        report = run_pipeline(cfg, force=force, progress=progress, log=log)
    click.echo(summary_table(report, [cfg.out / "report.html", cfg.out / "report.md"]))
