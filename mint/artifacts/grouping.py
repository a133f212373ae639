"""``groups.json`` (docs/design.md, file formats): ``method``, ``params``, ``groups`` (group -> tasks),
``assignment`` (task -> group) and, from ``mint cluster``, ``stability``. :class:`Grouping` is the one place
that builds and checks it: every task in exactly one group, group names usable as adapter and folder names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mint.artifacts._base import Artifact, Where, check_schema
from mint.errors import MintError
from mint.io import stamp

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: names peft reserves: "__base__" means "no adapter" in mixed batches, "default" saves outside sub-folders
RESERVED = ("__base__", "default")


def _check_groups(data: Any, at: Where) -> dict[str, str]:
    """The groups' members; returns ``{task: group}``."""
    groups = data.get("groups")
    if not isinstance(groups, dict) or not groups:
        raise at.error("groups", message="expected a non-empty object of group name -> list of tasks")
    seen: dict[str, str] = {}
    for name, members in groups.items():
        if not isinstance(members, list) or not members:
            raise at.error("groups", name, message="expected a non-empty list of task names")
        for t in members:
            if not isinstance(t, str):
                raise at.error("groups", name, message=f"expected task names (strings), got {t!r}")
            if t in seen:
                raise at.error("groups", name, message=f"task {t!r} is also in group {seen[t]!r}")
            seen[t] = name
    return seen


def _check_names(groups: dict[str, Any], at: Where) -> None:
    """Group names usable as adapter (and folder) names."""
    for name in groups:
        if not _NAME.match(name) or name in RESERVED:
            raise at.error(
                "groups",
                name,
                message=f"group name must be letters, digits, '_' or '-' and not {' or '.join(RESERVED)}",
            )
        if name in "lora_":  # peft finds adapter names inside its parameter prefix and reinitialises them
            raise at.error(
                "groups",
                name,
                message=f"group name {name!r} is part of peft's prefix 'lora_'; use a longer name",
            )


def _check_assignment(data: Any, at: Where, seen: dict[str, str]) -> None:
    assignment = data.get("assignment")
    if assignment is None:
        return
    if not isinstance(assignment, dict):
        raise at.error("assignment", message="expected an object of task -> group")
    for t, g in assignment.items():
        if seen.get(t) != g:
            raise at.error("assignment", t, message=f"says {g!r} but groups put it in {seen.get(t)!r}")
    missing = sorted(set(seen) - set(assignment))
    if missing:
        raise at.error("assignment", message=f"task {missing[0]!r} of groups is not assigned")


@dataclass(frozen=True, eq=False)
class Grouping(Artifact):
    """A checked ``groups.json`` (every task in one group; :meth:`adapter_ready` adds the rules on group
    names that tuning needs). Files without ``schema``, ``method``, ``params`` or ``assignment`` (written
    by hand) load with ``custom``, ``{}`` and the assignment the groups imply."""

    WHAT = "groups file"

    @classmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise at.error(message="expected a JSON object at the top level")
        check_schema(data, at, required=False)
        seen = _check_groups(data, at)
        _check_assignment(data, at, seen)
        out = dict(data)
        out.setdefault("method", "custom")
        out.setdefault("params", {})
        out["groups"] = {g: list(m) for g, m in data["groups"].items()}
        given = data.get("assignment")
        out["assignment"] = dict(given) if given is not None else dict(seen)  # checked equal to the groups
        return out

    @classmethod
    def of(
        cls,
        groups: dict[str, list[str]],
        method: str = "custom",
        params: dict[str, Any] | None = None,
        **extra: Any,
    ) -> Grouping:
        """A grouping from ``{group: [tasks]}`` (``extra``: further keys such as ``stability``)."""
        payload = {"method": method, "params": dict(params or {}), "groups": groups, **extra}
        return cls.from_dict(stamp(payload), "groups")

    def with_params(self, **extra: Any) -> Grouping:
        """The same grouping with ``extra`` added to its ``params`` (where it came from: files, model...)."""
        return Grouping.from_dict({**self.data, "params": {**self.data["params"], **extra}}, self.source)

    def adapter_ready(self) -> Grouping:
        """``self`` if every group name can name an adapter and its folder (letters, digits, ``_``, ``-``; not
        a name peft reserves), as tuning and routing need; else a :class:`MintError` naming the group."""
        _check_names(self.data["groups"], self.where())
        return self

    def check_tasks(self, tasks: Iterable[str]) -> Grouping:
        """``self`` if its groups hold exactly ``tasks`` (every one in a group, no other); else a
        :class:`MintError` naming the field."""
        at = self.where()
        names = list(tasks)
        known = set(names)
        seen = self.data["assignment"]
        unknown = [t for t in seen if t not in known]
        if unknown:
            raise at.error(
                "groups",
                seen[unknown[0]],
                message=f"unknown task {unknown[0]!r} (not in the suite; its tasks: {', '.join(names)})",
            )
        absent = [t for t in names if t not in seen]
        if absent:
            raise at.error("groups", message=f"task {absent[0]!r} of the suite is in no group")
        return self

    @property
    def method(self) -> str:
        return str(self.data["method"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.data["params"])

    @property
    def groups(self) -> dict[str, list[str]]:
        """``{group: [tasks]}`` in file order (a copy)."""
        return {g: list(m) for g, m in self.data["groups"].items()}

    @property
    def assignment(self) -> dict[str, str]:
        """``{task: group}`` (a copy)."""
        return dict(self.data["assignment"])

    @property
    def stability(self) -> dict[str, Any] | None:
        """The bootstrap stability of ``mint cluster`` (None when not measured)."""
        found = self.data.get("stability")
        return dict(found) if found else None

    @property
    def names(self) -> list[str]:
        """The group names, in file order."""
        return list(self.data["groups"])

    @property
    def tasks(self) -> list[str]:
        """Every grouped task, group by group."""
        return [t for members in self.data["groups"].values() for t in members]

    def group_of(self, task: str) -> str:
        try:
            return self.data["assignment"][task]
        except KeyError:
            raise MintError(f"{self.source}: task {task!r} is in no group") from None


def validate_groups(
    data: Any, source: str = "groups.json", tasks: Iterable[str] | None = None
) -> dict[str, Any]:
    """Check a groups.json payload (with ``tasks``, also that groups cover exactly those tasks); return the
    payload with ``method``, ``params`` and ``assignment`` filled in where absent."""
    grouping = (data if isinstance(data, Grouping) else Grouping.from_dict(data, source)).adapter_ready()
    if tasks is not None:
        grouping.check_tasks(tasks)
    return grouping.data
