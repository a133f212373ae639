"""``mint compare-labels``: a profiles.json's computed interaction labels against reference labels kept
outside a suite (a CSV, or ``hemm``: the shipped HEMM table)."""

from __future__ import annotations

from pathlib import Path

import click

from mint.artifacts import Profiles
from mint.cli.types import bounded_int
from mint.errors import MintError
from mint.io import allow_replacing, check_output
from mint.models.devices import single_process
from mint.plotting.style import FORMATS, save
from mint.plotting.ternary import interaction_map
from mint.profiling.reference import attach_reference, read_reference_csv, summary_lines
from mint.seeds import seed_type


@click.command("compare-labels")
@click.argument("profiles", type=click.Path(path_type=Path))
@click.option(
    "--reference",
    required=True,
    metavar="CSV",
    help="Labels CSV (task,interaction[,dominant]; 'key'/'kind' also accepted), or 'hemm'.",
)
@click.option(
    "--out",
    default=None,
    type=click.Path(path_type=Path),
    help="Write the profiles with the comparison added (profiles.json format, 'reference' section).",
)
@click.option(
    "--figure",
    default=None,
    type=click.Path(path_type=Path),
    help="Draw the interaction map with disagreeing tasks marked (.png or .svg).",
)
@click.option("--seed", default=0, show_default=True, type=seed_type(), help="Seed of the kappa bootstrap.")
@click.option(
    "--bootstrap",
    default=1000,
    show_default=True,
    type=bounded_int(),
    help="Bootstrap replicates for kappa's interval.",
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def command(
    profiles: Path,
    reference: str,
    out: Path | None,
    figure: Path | None,
    seed: int,
    bootstrap: int,
    force: bool,
) -> None:
    """Compare the interaction labels in PROFILES with --reference: confusion matrix, agreement, kappa."""
    single_process("mint compare-labels")
    allow_replacing(force)
    for path in (out, figure):
        if path is not None:
            check_output(path, force)
    if figure is not None and figure.suffix.lstrip(".").lower() not in FORMATS:
        raise MintError(f"--figure: {figure} must end in one of: {', '.join('.' + f for f in FORMATS)}")
    labels = read_reference_csv(reference)
    prof = attach_reference(Profiles.load(profiles), labels, seed=seed, n_boot=bootstrap, source=reference)
    for line in summary_lines(prof["reference"]):
        click.echo(line)
    if out is not None:
        prof.save(out, force=force)
        click.echo(f"Profiles with the comparison -> {out}", err=True)
    if figure is not None:
        save(interaction_map(prof), figure, figure.suffix.lstrip(".").lower(), 150)
        click.echo(f"Interaction map -> {figure}", err=True)
