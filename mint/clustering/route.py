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
from mint.artifacts.profiles import Profiles
from mint.artifacts.routes import Routes
from mint.clustering.methods import interaction_labels
from mint.errors import MintError

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
) -> Routes:
    """Each of ``tasks`` (default: every profiled task in no group) routed to a group, as routes.json.

    ``profiles`` must hold the profiles of the grouped tasks and of the tasks to route; ``source`` and
    ``groups_source`` name payloads given as dicts in error messages (artifacts name their own files).
    """
    grouping = Grouping.from_dict(groups, groups_source).adapter_ready()
    profiles = Profiles.from_dict(profiles, source)
    ps, source = profiles.arrays(), profiles.source
    assignment, members = grouping.assignment, grouping.groups
    index = {t: i for i, t in enumerate(ps.tasks)}
    missing = [t for t in assignment if t not in index]
    if missing:
        raise MintError(f"{source}: no profile of grouped task {missing[0]!r} (profile them together)")
    new = [t for t in ps.tasks if t not in assignment] if tasks is None else list(tasks)
    for t in new:
        if t not in index:
            raise MintError(f"{source}: no profile of task {t!r} to route")
        if t in assignment:
            raise MintError(f"{grouping.source}: task {t!r} is already in group {assignment[t]!r}")
    method, names = grouping.method, grouping.names
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
                means = {g: float(np.mean([score[index[m]] for m in members[g]])) for g in names}
                target = min(names, key=lambda g: abs(means[g] - score[i]))
                how = f"interaction {kind} has no group; nearest mean deciding score"
        elif method == "single":
            rule = "single"
            near = min(grouped, key=lambda j: float(np.linalg.norm(x[j] - x[i])))
            target, how = assignment[ps.tasks[near]], f"nearest task {ps.tasks[near]}"
        else:
            rule = "other"
            dist = {
                g: float(np.linalg.norm(x[[index[m] for m in members[g]]].mean(axis=0) - x[i])) for g in names
            }
            target, how = min(names, key=lambda g: dist[g]), "nearest group centroid"
        routes[t] = {"group": target, "rule": rule, **({"reason": how} if how else {})}
    return Routes.of(method, RULES, routes)
