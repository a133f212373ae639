"""``mint run config.yaml``: the whole pipeline, each stage cached by a hash of its inputs."""

from __future__ import annotations

from pathlib import Path

import click

from mint.seeds import seed_type


@click.command("run")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--out", default=None, help="Output folder (overrides the config's `out`).")
@click.option("--seed", type=seed_type(), default=None, help="Seed (overrides the config's `seed`).")
@click.option("--force", is_flag=True, help="Redo every stage, even those whose inputs did not change.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr.")
@click.option(
    "--allow-code",
    is_flag=True,
    help="Let the config's profile.similarity name a package.module:function, which mint imports and runs "
    "(off by default: a config file cannot make mint run code).",
)
def command(
    config: Path, out: str | None, seed: int | None, force: bool, progress: bool, allow_code: bool
) -> None:
    """Predict, profile, cluster, plot, tune each grouping, evaluate and report, as CONFIG says."""
    from mint.models.devices import single_process

    single_process("mint run")
    from mint.io import allow_replacing
    from mint.pipeline import load_run_config, run_pipeline, summary_table

    allow_replacing(True)  # the pipeline's outputs are its cache: a stage whose inputs changed redoes them

    cfg = load_run_config(config, {"out": out, "seed": seed}, allow_code=allow_code)
    report = run_pipeline(cfg, force=force, progress=progress, log=lambda m: click.echo(m, err=True))
    click.echo(summary_table(report, [cfg.out / "report.html", cfg.out / "report.md"]))
