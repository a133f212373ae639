"""Routing unseen tasks to a group of a grouping (``mint route``; ``holdout`` in ``mint run``).

A task that took no part in training is profiled like the others and sent to one group's adapter:

- ``all`` (one group): the one adapter;
- ``mint``: the group of its interaction type (``redundancy``, ``uniqueness`` or
  ``uniqueness_<dominant modality>``, ``synergy``), from its deciding score and the profiles' thresholds;
  when the grouping has no such group (or was cut at ``k`` into ``group_<i>``), the group whose mean
  deciding score is nearest;
- ``single``: the adapter of the nearest grouped task (Euclidean distance of standardised profile vectors);
- every other grouping (``agglomerative``, ``kmeans``, ``spectral``, ``random``, the learned-affinity
  ones): the nearest group centroid of the standardised profile vectors.

Profile vectors are standardised over the grouped and the new tasks together (:meth:`mint.artifacts.profiles.ProfileSet.vectors`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mint.artifacts.grouping import Grouping
from mint.artifacts.profiles import Profiles, ProfileSet
from mint.clustering.methods import interaction_labels
from mint.errors import MintError
from mint.io import stamp

RULES = {
    "all": "the one adapter",
    "mint": "the group of the task's interaction type (else the group of nearest mean deciding score)",
    "single": "the adapter of the nearest task (standardised profile vectors)",
    "other": "the nearest group centroid (standardised profile vectors)",
}


def route_tasks(
    profiles: Profiles | dict[str, Any],
    groups: Grouping | dict[str, Any],
    tasks: list[str] | None = None,
    source: str = "profiles",
    groups_source: str = "groups",
) -> dict[str, Any]:
    """The routes.json content: each of ``tasks`` (default: every profiled task in no group) -> a group.

    ``profiles`` must hold the profiles of the grouped tasks and of the tasks to route.
    """
    groups = Grouping.from_dict(groups, groups_source).adapter_ready().data
    ps = ProfileSet.from_dict(profiles, source)
    assignment: dict[str, str] = groups["assignment"]
    index = {t: i for i, t in enumerate(ps.tasks)}
    missing = [t for t in assignment if t not in index]
    if missing:
        raise MintError(f"{source}: no profile of grouped task {missing[0]!r} (profile them together)")
    new = [t for t in ps.tasks if t not in assignment] if tasks is None else list(tasks)
    for t in new:
        if t not in index:
            raise MintError(f"{source}: no profile of task {t!r} to route")
        if t in assignment:
            raise MintError(f"{groups_source}: task {t!r} is already in group {assignment[t]!r}")
    method = str(groups.get("method") or "custom")
    names = list(groups["groups"])
    x, _ = ps.vectors()
    grouped = [index[t] for t in assignment]
    routes: dict[str, dict[str, Any]] = {}
    for t in new:
        i = index[t]
        if len(names) == 1:
            rule, target, how = "all", names[0], None
        elif method == "mint":
            rule = "mint"
            split = any(n.startswith("uniqueness_") for n in names)
            kind = interaction_labels(ps, split)[i]
            if kind in names:
                target, how = kind, f"interaction {kind}"
            else:
                score = ps.decider()
                means = {g: float(np.mean([score[index[m]] for m in groups["groups"][g]])) for g in names}
                target = min(names, key=lambda g: abs(means[g] - score[i]))
                how = f"interaction {kind} has no group; nearest mean deciding score"
        elif method == "single":
            rule = "single"
            near = min(grouped, key=lambda j: float(np.linalg.norm(x[j] - x[i])))
            target, how = assignment[ps.tasks[near]], f"nearest task {ps.tasks[near]}"
        else:
            rule = "other"
            dist = {
                g: float(np.linalg.norm(x[[index[m] for m in groups["groups"][g]]].mean(axis=0) - x[i]))
                for g in names
            }
            target, how = min(names, key=lambda g: dist[g]), "nearest group centroid"
        routes[t] = {"group": target, "rule": rule, **({"reason": how} if how else {})}
    return stamp(
        {
            "method": method,
            "rules": RULES,
            "routes": {t: r["group"] for t, r in routes.items()},
            "details": routes,
        }
    )


def validate_routes(data: Any, source: str = "routes") -> dict[str, str]:
    """``{task: group}`` of a routes.json, or a :class:`MintError` naming the problem."""
    routes = data.get("routes") if isinstance(data, dict) else None
    if not isinstance(routes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in routes.items()
    ):
        raise MintError(f"{source}: routes: expected an object of task -> group (a mint route output)")
    return dict(routes)
