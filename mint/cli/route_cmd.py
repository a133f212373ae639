"""``mint route``: send tasks that took no part in training to a group of a grouping (mint/clustering/route.py)."""

from __future__ import annotations

from pathlib import Path

import click

from mint.artifacts import Grouping, Profiles
from mint.clustering.route import route_tasks
from mint.io import allow_replacing, check_output
from mint.models.devices import single_process


@click.command("route")
@click.option(
    "--profiles",
    "profiles_path",
    required=True,
    type=click.Path(path_type=Path),
    help="profiles.json with the new tasks and the grouped ones (mint profile of both).",
)
@click.option(
    "--groups",
    "groups_path",
    required=True,
    type=click.Path(path_type=Path),
    help="groups.json to route into.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="routes.json to write.")
@click.option(
    "--task",
    "tasks",
    multiple=True,
    help="A task to route (repeatable; default: every profiled task in no group).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing --out.")
def command(profiles_path: Path, groups_path: Path, out: Path, tasks: tuple[str, ...], force: bool) -> None:
    """Route each new task of --profiles to a group of --groups by the grouping's rule; write routes.json
    (for mint evaluate --routes)."""
    single_process("mint route")
    allow_replacing(force)
    check_output(out, force)
    routes = route_tasks(Profiles.load(profiles_path), Grouping.load(groups_path), list(tasks) or None)
    routes.save(out, force=force)
    for task, detail in routes.details.items():
        reason = f" ({detail['reason']})" if detail.get("reason") else ""
        click.echo(f"{task} -> {detail['group']}{reason}")
    click.echo(f"wrote {out}")
