"""The seeds mint accepts: integers 0..2**31-1.

Every generator a stage seeds (Python's ``random``, NumPy, torch, accelerate's ``set_seed``) takes them as
they are, including the per-group offsets (``seed + index``) the trainers add; a larger or negative seed
would be reduced or refused somewhere down the line, so it is refused up front instead.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from mint.errors import MintError

MAX_SEED = 2**31 - 1
#: how far apart the RNG seeds of the processes of one launch are
RANK_SEED_STRIDE = 1_000_003


def check_seed(value: Any, where: str = "--seed") -> int:
    """``value`` if it is an integer seed mint can honour, else a :class:`MintError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise MintError(f"{where}: expected an integer from 0 to {MAX_SEED}, got {value!r}")
    return value


def seed_type() -> Any:
    """The click type of every ``--seed`` option."""
    import click

    return click.IntRange(0, MAX_SEED)


def derived_rng(*parts: Any) -> np.random.Generator:
    """A NumPy generator seeded by ``parts`` (a seed and the names of what it draws for, e.g. ``(seed, group,
    epoch)``): the first 8 bytes of the SHA-256 of ``"/".join(parts)``. Every stream mint derives from a seed
    and names (batch order, demonstrations, replay buffers) comes from here, so streams with different names
    are independent and none depends on what else was drawn before."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def process_seed(seed: int, rank: int) -> int:
    """The RNG seed of process ``rank``: ``seed`` itself on rank 0 (a one-process run is unchanged), the
    others apart from it, so that each rank draws its own LoRA dropout masks (identical seeds would give
    every rank's shard the same masks, correlating the noise the processes average)."""
    return seed + RANK_SEED_STRIDE * rank
