"""``report.json`` (docs/design.md, file formats): one row per compared setting (mean, per-task scores,
groups, trainable parameters, training time, seeds, ``ci95``), with the comparisons, transfer and unseen
tasks where the evaluations allow them. Built by :func:`mint.tuning.report.make_report`; the figures and
pages are drawn from it by their callers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mint.artifacts._base import Artifact, Where, check_schema, is_number
from mint.errors import MintError

#: settings in display order; others follow in file order
KNOWN_ROWS = ("zero_shot", "all", "random", "single", "mint")


def score_or_nan(v: Any, where: str) -> float:
    """A row's score as a float (NaN for null); anything else is a :class:`MintError` naming ``where``."""
    if v is None:
        return math.nan
    if not is_number(v):
        raise MintError(f"{where}: expected a number or null, got {v!r}")
    return float(v)


def row_interval(row: Any) -> tuple[float, float] | None:
    """The row's 95% interval of its mean (``ci95``), when the report has one."""
    ci = row.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(is_number(v) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


@dataclass(frozen=True, eq=False)
class Report(Artifact):
    """A checked ``report.json``."""

    WHAT = "report file"

    @classmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise at.error(message="expected a JSON object with 'rows'")
        check_schema(data, at)
        rows = data.get("rows")
        if not isinstance(rows, dict) or not rows:
            raise at.error(message="missing or empty 'rows'")
        for name, row in rows.items():
            if not isinstance(row, dict):
                raise at.error("rows", name, message="expected an object")
            for key in ("mean", "tasks"):
                if key not in row:
                    raise at.error("rows", name, message=f"missing key '{key}'")
            score_or_nan(row["mean"], at("rows", name, "mean"))
            if not isinstance(row["tasks"], dict):
                raise at.error("rows", name, "tasks", message="expected an object task -> score")
            for t, v in row["tasks"].items():
                score_or_nan(v, at("rows", name, "tasks", t))
            if row.get("ci95") is not None and row_interval(row) is None:
                raise at.error(
                    "rows", name, "ci95", message=f"expected [low, high] (two numbers), got {row['ci95']!r}"
                )
        return data

    @property
    def rows(self) -> dict[str, dict[str, Any]]:
        """``{setting: row}`` in file order."""
        return dict(self.data["rows"])

    @property
    def settings(self) -> list[str]:
        """The compared settings in display order: the usual ones first, then the others in file order."""
        rows = list(self.data["rows"])
        return [r for r in KNOWN_ROWS if r in rows] + [r for r in rows if r not in KNOWN_ROWS]

    @property
    def tasks(self) -> list[str]:
        given = self.data.get("tasks")
        if given:
            return list(given)
        return list(dict.fromkeys(t for r in self.data["rows"].values() for t in r["tasks"]))

    @property
    def metric(self) -> str:
        return str(self.data.get("metric", "score"))

    def mean(self, setting: str) -> float | None:
        return self.data["rows"][setting]["mean"]

    @property
    def comparisons(self) -> list[dict[str, Any]]:
        return list(self.data.get("comparisons") or [])

    @property
    def transfer(self) -> dict[str, dict[str, float]]:
        return dict(self.data.get("transfer") or {})

    @property
    def unseen(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("unseen") or {})


def validate_report(report: Any, source: str = "report") -> dict[str, Any]:
    """Check a report.json payload (rows -> {mean, tasks{task: score}, ...}); return it or raise MintError."""
    if isinstance(report, Report):
        return report.data
    return Report.validate(report, Where(source))
