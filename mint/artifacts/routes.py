"""``routes.json`` (docs/design.md, file formats): where ``mint route`` sends tasks that took no part in
training: ``method`` (the grouping's), ``rules`` (rule -> what it does), ``routes`` (task -> group) and
``details`` (task -> the group, the rule and its reason). :class:`Routes` builds and checks it; ``mint
evaluate --routes`` and the pipeline's held-out tasks read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mint.artifacts._base import Artifact, Where, check_schema, mapping
from mint.io import stamp


def _check_details(details: Any, at: Where, routes: dict[str, Any]) -> None:
    """``{task: {"group", "rule", "reason"?}}``, each naming the group its task is routed to."""
    mapping(details, at, "details")
    for task, entry in details.items():
        mapping(entry, at, "details", task)
        for key in ("group", "rule"):
            if not isinstance(entry.get(key), str):
                raise at.error("details", task, key, message=f"expected a string, got {entry.get(key)!r}")
        if task in routes and entry["group"] != routes[task]:
            raise at.error(
                "details", task, "group", message=f"says {entry['group']!r} but routes say {routes[task]!r}"
            )


@dataclass(frozen=True, eq=False)
class Routes(Artifact):
    """A checked ``routes.json``. Only ``routes`` is required (files written by hand, older files):
    ``method`` reads as ``custom``, ``rules`` and ``details`` as empty."""

    WHAT = "routes file"

    @classmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise at.error(message="expected a JSON object with 'routes'")
        check_schema(data, at, required=False)
        routes = data.get("routes")
        if not isinstance(routes, dict) or not all(isinstance(v, str) for v in routes.values()):
            raise at.error("routes", message="expected an object of task -> group (a mint route output)")
        if data.get("method") is not None and not isinstance(data["method"], str):
            raise at.error("method", message=f"expected a string, got {data['method']!r}")
        if data.get("rules") is not None:
            mapping(data["rules"], at, "rules")
        if data.get("details") is not None:
            _check_details(data["details"], at, routes)
        return data

    @classmethod
    def of(cls, method: str, rules: dict[str, str], details: dict[str, dict[str, Any]]) -> Routes:
        """Routes from each task's ``{"group", "rule", "reason"?}`` (``routes`` is their groups)."""
        payload = {
            "method": method,
            "rules": dict(rules),
            "routes": {t: d["group"] for t, d in details.items()},
            "details": details,
        }
        return cls.from_dict(stamp(payload), "routes")

    @property
    def method(self) -> str:
        return str(self.data.get("method") or "custom")

    @property
    def routes(self) -> dict[str, str]:
        """``{task: group}`` (a copy)."""
        return dict(self.data["routes"])

    @property
    def details(self) -> dict[str, dict[str, Any]]:
        """``{task: {"group", "rule", "reason"?}}`` (empty for files without them)."""
        return {t: dict(d) for t, d in (self.data.get("details") or {}).items()}

    @property
    def tasks(self) -> list[str]:
        return list(self.data["routes"])

    def group_of(self, task: str) -> str:
        return self.data["routes"][task]
