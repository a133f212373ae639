"""``mint plot``: figures for a profiles.json, optionally with its groups and a results report."""

from __future__ import annotations

from pathlib import Path

import click

from mint.artifacts import Profiles, Report
from mint.io import allow_replacing, read_json
from mint.models.devices import single_process
from mint.plotting import plot_all
from mint.plotting.style import FORMATS, check_format, task_groups


@click.command("plot")
@click.argument("profiles", type=click.Path(path_type=Path))
@click.option("--groups", type=click.Path(path_type=Path), help="groups.json: colour tasks by group.")
@click.option("--results", type=click.Path(path_type=Path), help="report.json: add result charts.")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the figures."
)
@click.option("--format", "fmt", default="png", show_default=True, help=f"One of: {', '.join(FORMATS)}.")
@click.option(
    "--dpi", default=150, show_default=True, type=click.IntRange(20, 600), help="Resolution of PNGs."
)
@click.option("--force", is_flag=True, help="Overwrite existing figures.")
def command(
    profiles: Path, groups: Path | None, results: Path | None, out: Path, fmt: str, dpi: int, force: bool
) -> None:
    """Draw the figures for PROFILES (a profiles.json) into --out, with an index.json."""
    single_process("mint plot")
    allow_replacing(force)
    check_format(fmt)
    prof = Profiles.load(profiles)
    grp = read_json(groups, "groups file") if groups is not None else None  # any grouping of these tasks
    res = Report.load(results) if results is not None else None
    if grp is not None:
        task_groups(prof.tasks, grp, str(groups))
    paths = plot_all(prof, grp, res, out_dir=out, fmt=fmt, dpi=dpi, force=force)
    click.echo(f"wrote {len(paths) - 1} figures and index.json to {out}")
