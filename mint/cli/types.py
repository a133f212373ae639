"""Click types shared by the commands: integers bounded so that no value overflows a field downstream."""

from __future__ import annotations

import click

#: The largest integer any count, size or seed option accepts (torch, NumPy and the RNGs take it as is).
MAX_INT = 2**31 - 1


def bounded_int(min: int | None = None) -> click.IntRange:
    """An integer option from ``min`` (or any) to :data:`MAX_INT`; out of range is click's exit 2."""
    return click.IntRange(min=min, max=MAX_INT)
