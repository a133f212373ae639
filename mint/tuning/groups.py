"""groups.json as tuning reads it: the format and its checks live in :mod:`mint.artifacts.grouping`; these
functions return the checked payload for code written against plain dicts."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from mint.artifacts.grouping import RESERVED, Grouping, validate_groups

__all__ = ["RESERVED", "Grouping", "groups_payload", "load_groups", "validate_groups"]


def load_groups(path: str | os.PathLike, tasks: Iterable[str] | None = None) -> dict[str, Any]:
    """Load and check a groups.json file (see :func:`validate_groups`)."""
    grouping = Grouping.load(path).adapter_ready()
    return (grouping.check_tasks(tasks) if tasks is not None else grouping).data


def groups_payload(
    groups: dict[str, list[str]], method: str = "custom", params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A groups.json payload from a plain ``{group: [tasks]}`` mapping."""
    return Grouping.of(groups, method, params).to_dict()
