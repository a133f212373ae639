"""Baseline groupings: everything together, every task alone, and seeded random groups."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mint.artifacts.grouping import Grouping
from mint.errors import MintError
from mint.io import read_json


def all_labels(tasks: Sequence[str]) -> list[str]:
    """One group called ``all``."""
    return ["all"] * len(tasks)


def single_labels(tasks: Sequence[str]) -> list[str]:
    """One group per task, named after the task."""
    return list(tasks)


def equal_sizes(n: int, k: int) -> list[int]:
    """k sizes as equal as possible that sum to n (larger ones first)."""
    return [len(a) for a in np.array_split(np.arange(n), k)]


def random_labels(n: int, sizes: Sequence[int], seed: int) -> list[str]:
    """A seeded random partition of n tasks into groups ``group_<i>`` of the given sizes."""
    perm = np.random.default_rng(seed).permutation(n)
    labels = [""] * n
    start = 0
    for g, size in enumerate(sizes):
        for i in perm[start : start + size]:
            labels[int(i)] = f"group_{g}"
        start += size
    return labels


def sizes_like(like: Grouping | dict[str, Any] | str | os.PathLike, n_tasks: int) -> tuple[list[int], str]:
    """Group sizes of a reference groups.json (a :class:`Grouping`, a path or its loaded content), checked
    against n_tasks.

    Returns the sizes and a description of the source for ``params``.
    """
    source = "like"
    if isinstance(like, Grouping):
        like, source = like.data, like.source
    elif not isinstance(like, dict):
        source = str(like)
        like = read_json(like, "groups file")
    groups = like.get("groups") if isinstance(like, dict) else None
    if not isinstance(groups, dict) or not groups:
        raise MintError(f"{source}: missing or empty 'groups' (expected a groups.json)")
    sizes = []
    for name, members in groups.items():
        if not isinstance(members, list) or not members:
            raise MintError(f"{source}: groups.{name}: expected a non-empty list of tasks")
        sizes.append(len(members))
    if sum(sizes) != n_tasks:
        raise MintError(
            f"{source}: groups hold {sum(sizes)} tasks but the profiles have {n_tasks}; "
            "--like needs a grouping of the same tasks"
        )
    return sizes, source
