"""The seeds mint accepts: integers 0..2**31-1.

Every generator a stage seeds (Python's ``random``, NumPy, torch, accelerate's ``set_seed``) takes them as
they are, including the per-group offsets (``seed + index``) the trainers add; a larger or negative seed
would be reduced or refused somewhere down the line, so it is refused up front instead.
"""

from __future__ import annotations

from typing import Any

from mint.errors import MintError

MAX_SEED = 2**31 - 1


def check_seed(value: Any, where: str = "--seed") -> int:
    """``value`` if it is an integer seed mint can honour, else a :class:`MintError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise MintError(f"{where}: expected an integer from 0 to {MAX_SEED}, got {value!r}")
    return value


def seed_type() -> Any:
    """The click type of every ``--seed`` option."""
    import click

    return click.IntRange(0, MAX_SEED)
