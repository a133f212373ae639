"""``mint export``: a tuning run as a serving bundle (adapters, routing table, vLLM command, merged models)."""

from __future__ import annotations

from pathlib import Path

import click

from mint.errors import MintError
from mint.io import allow_replacing
from mint.models.devices import DEVICE_HELP, single_process
from mint.tuning.export import export_run


@click.command("export")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Bundle folder to write.")
@click.option(
    "--merge",
    is_flag=True,
    help="Also write one merged model per group (the backbone with the group's adapter folded in).",
)
@click.option("--device", default="auto", show_default=True, help=DEVICE_HELP)
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
def command(run: Path, out: Path, merge: bool, device: str, force: bool) -> None:
    """Export the tuning run RUN as a bundle a serving stack takes as it is."""
    single_process("mint export")
    allow_replacing(force)
    if out.exists() and not out.is_dir():
        raise MintError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise MintError(f"{out} already exists and is not empty (use --force to overwrite)")
    routing = export_run(run, out, merge=merge, device=device)
    click.echo(
        f"wrote {out}: {len(routing['adapters'])} adapter(s) for {len(routing['routing'])} task(s), "
        f"routing.json, SERVING.md, merged-run/" + (", merged/" if merge else "")
    )
    click.echo("  " + " ".join(routing["vllm_command"]))
