"""``group``: the library entry point behind ``mint cluster``."""

from __future__ import annotations

from typing import Any

from mint.artifacts.grouping import Grouping
from mint.artifacts.profiles import Profiles
from mint.clustering import naming
from mint.clustering.choose_k import parse_k
from mint.clustering.methods import METHODS, interaction_order, partition, resolve
from mint.clustering.stability import stability
from mint.errors import MintError


def group(
    profiles: Profiles | dict[str, Any],
    method: str = "mint",
    k: int | str | None = "auto",
    seed: int = 0,
    *,
    split_uniqueness: bool = False,
    like: Grouping | dict[str, Any] | str | None = None,
    bootstrap: int = 200,
    source: str = "profiles",
) -> Grouping:
    """Group the tasks of a profiles.json (a :class:`Profiles`, or its payload, named ``source`` in error
    messages); return the groups.json as a :class:`Grouping`.

    method: ``mint`` (interaction type; with an integer ``k``, hierarchical clustering on the score
    distance), ``agglomerative`` / ``kmeans`` / ``spectral`` (standardised profile vectors, ``k="auto"``
    by silhouette), or a baseline ``random`` (sizes of ``like``, a groups.json path or dict, else
    ``k`` equal sizes, else the mint grouping's sizes), ``all``, ``single``.
    ``bootstrap`` resamples measure stability (0 to skip: ``stability`` is then null).
    """
    if method not in METHODS:
        raise MintError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise MintError(f"--bootstrap: expected a non-negative integer, got {bootstrap!r}")
    ps = Profiles.from_dict(profiles, source).arrays()
    kk = parse_k(k, len(ps.tasks))
    plan, params = resolve(ps, method, kk, int(seed), split_uniqueness, like)
    labels = partition(ps, plan)
    order = interaction_order(ps) if method == "mint" else ps.tasks if method == "single" else ()
    groups = naming.to_groups(ps.tasks, labels, order)
    params["bootstrap"] = bootstrap
    return Grouping.of(
        groups,
        method,
        params,
        assignment=dict(zip(ps.tasks, labels)),
        stability=stability(ps, plan, labels, bootstrap, int(seed)) if bootstrap else None,
    )
