"""Read and check ``groups.json`` (docs/design.md, file formats) against the tasks being tuned.

Every task of the suite must be in exactly one group, every grouped task must exist, group names must be
usable as adapter (and folder) names. Errors name the file and the field at fault.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from mint import SCHEMA
from mint.errors import MintError
from mint.io import read_json

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: names peft reserves: "__base__" means "no adapter" in mixed batches, "default" saves outside sub-folders
RESERVED = ("__base__", "default")


def validate_groups(
    data: Any, source: str = "groups.json", tasks: Iterable[str] | None = None
) -> dict[str, Any]:
    """Check a groups.json payload; with ``tasks``, also that groups cover exactly those tasks.

    Returns the payload with ``assignment`` filled in from ``groups`` when absent.
    """
    if not isinstance(data, dict):
        raise MintError(f"{source}: expected a JSON object at the top level")
    if "schema" in data and data["schema"] != SCHEMA:
        raise MintError(f"{source}: schema: unsupported version {data['schema']!r} (expected {SCHEMA})")
    groups = data.get("groups")
    if not isinstance(groups, dict) or not groups:
        raise MintError(f"{source}: groups: expected a non-empty object of group name -> list of tasks")
    seen: dict[str, str] = {}
    for name, members in groups.items():
        where = f"{source}: groups.{name}"
        if not _NAME.match(name) or name in RESERVED:
            raise MintError(
                f"{where}: group name must be letters, digits, '_' or '-' and not {' or '.join(RESERVED)}"
            )
        if name in "lora_":  # peft finds adapter names inside its parameter prefix and reinitialises them
            raise MintError(
                f"{where}: group name {name!r} is part of peft's prefix 'lora_'; use a longer name"
            )
        if not isinstance(members, list) or not members:
            raise MintError(f"{where}: expected a non-empty list of task names")
        for t in members:
            if not isinstance(t, str):
                raise MintError(f"{where}: expected task names (strings), got {t!r}")
            if t in seen:
                raise MintError(f"{where}: task {t!r} is also in group {seen[t]!r}")
            seen[t] = name
    assignment = data.get("assignment")
    if assignment is not None:
        if not isinstance(assignment, dict):
            raise MintError(f"{source}: assignment: expected an object of task -> group")
        for t, g in assignment.items():
            if seen.get(t) != g:
                raise MintError(f"{source}: assignment.{t}: says {g!r} but groups put it in {seen.get(t)!r}")
        missing = sorted(set(seen) - set(assignment))
        if missing:
            raise MintError(f"{source}: assignment: task {missing[0]!r} of groups is not assigned")
    if tasks is not None:
        names = list(tasks)
        unknown = [t for t in seen if t not in set(names)]
        if unknown:
            raise MintError(
                f"{source}: groups.{seen[unknown[0]]}: unknown task {unknown[0]!r} "
                f"(not in the suite; its tasks: {', '.join(names)})"
            )
        absent = [t for t in names if t not in seen]
        if absent:
            raise MintError(f"{source}: groups: task {absent[0]!r} of the suite is in no group")
    out = dict(data)
    out.setdefault("method", "custom")
    out.setdefault("params", {})
    out["groups"] = {g: list(m) for g, m in groups.items()}
    out["assignment"] = dict(seen)
    return out


def load_groups(path: str | os.PathLike, tasks: Iterable[str] | None = None) -> dict[str, Any]:
    """Load and validate a groups.json file (see :func:`validate_groups`)."""
    return validate_groups(read_json(path, "groups file"), str(path), tasks)


def groups_payload(
    groups: dict[str, list[str]], method: str = "custom", params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A groups.json payload from a plain ``{group: [tasks]}`` mapping."""
    return validate_groups(
        {"schema": SCHEMA, "method": method, "params": params or {}, "groups": groups}, "groups"
    )
