"""Turning cluster ids into group names and groups.json mappings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np


def by_score(ids: Sequence[int], scores: np.ndarray) -> list[str]:
    """Name clusters ``group_0``.. in decreasing order of their mean MINT score."""
    ids = np.asarray(ids)
    uniq = list(dict.fromkeys(ids.tolist()))
    means = {c: float(scores[ids == c].mean()) for c in uniq}
    order = sorted(uniq, key=lambda c: (-means[c], uniq.index(c)))
    name = {c: f"group_{i}" for i, c in enumerate(order)}
    return [name[c] for c in ids.tolist()]


def by_majority(ids: Sequence[int], kinds: Sequence[str], scores: np.ndarray) -> list[str]:
    """Name each cluster after its majority interaction if those names are all different,
    else fall back to :func:`by_score`."""
    ids = np.asarray(ids)
    uniq = list(dict.fromkeys(ids.tolist()))
    major = {}
    for c in uniq:
        counts = Counter(k for k, i in zip(kinds, ids.tolist()) if i == c).most_common()
        if len(counts) > 1 and counts[0][1] == counts[1][1]:
            return by_score(ids, scores)  # no clear majority
        major[c] = counts[0][0]
    if len(set(major.values())) < len(uniq):
        return by_score(ids, scores)
    return [major[c] for c in ids.tolist()]


def to_groups(tasks: Sequence[str], labels: Sequence[str], order: Sequence[str] = ()) -> dict[str, list[str]]:
    """``{group: [tasks]}`` with groups in ``order`` first, then ``group_<i>`` numerically, then by name."""
    groups: dict[str, list[str]] = {}
    for t, g in zip(tasks, labels):
        groups.setdefault(g, []).append(t)

    def key(g: str) -> tuple:
        if g in order:
            return (0, list(order).index(g), "")
        if g.startswith("group_") and g[6:].isdigit():
            return (1, int(g[6:]), "")
        return (2, 0, g)

    return {g: groups[g] for g in sorted(groups, key=key)}
