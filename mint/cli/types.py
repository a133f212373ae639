"""Click types shared by the commands: integers bounded so that no value overflows a field downstream."""

from __future__ import annotations

import click

from mint.seeds import MAX_SEED

#: The largest integer any count, size or seed option accepts: the seeds' bound (torch, NumPy and the RNGs
#: take it as is), one number for every option.
MAX_INT = MAX_SEED


def bounded_int(min: int | None = None) -> click.IntRange:
    """An integer option from ``min`` (or any) to :data:`MAX_INT`; out of range is click's exit 2."""
    return click.IntRange(min=min, max=MAX_INT)


#: The one progress switch of every command that shows progress bars (on stderr).
progress_option = click.option(
    "--progress/--no-progress", default=True, show_default=True, help="Progress bars on stderr."
)

#: The backbone every command defaults to: the shipped ``tiny`` model.
DEFAULT_MODEL = "tiny"
