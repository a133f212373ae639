"""Real benchmarks shipped as data: HEMM's dataset table and suite files for its public datasets.

``hemm.csv`` lists HEMM's 28 datasets (Liang et al., 2024) with HEMM's own interaction label and category
facts, transcribed from ``hemm/evaluation/categories.py`` of https://github.com/pliang279/HEMM (commit
c0fe6b0d4cd778816912d42ca9b5645fbbcaa84f, 2024-06-13); docs/benchmarks.md says how. ``suites/<task>.yaml``
are suite files for the HEMM datasets with a public Hugging Face copy (``load_suite("hemm:<task>")``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from mint.errors import MintError

HERE = Path(__file__).resolve().parent
SUITE_PREFIX = "hemm:"
HEMM_COLUMNS = (
    "task",
    "name",
    "use_case",
    "interaction",
    "information_flow",
    "reasoning",
    "external_knowledge",
    "fine_grained",
)


def hemm_table_path() -> Path:
    """The shipped HEMM table (CSV)."""
    return HERE / "hemm.csv"


def hemm_table() -> list[dict[str, str]]:
    """HEMM's 28 datasets, one dict per row with the keys of :data:`HEMM_COLUMNS`."""
    with hemm_table_path().open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def suite_names() -> list[str]:
    """The shipped suite files (``hemm:<name>``)."""
    return sorted(p.stem for p in (HERE / "suites").glob("*.yaml"))


def suite_path(spec: str) -> Path:
    """The file of a shipped suite ``hemm:<name>``."""
    name = spec[len(SUITE_PREFIX) :] if spec.startswith(SUITE_PREFIX) else spec
    path = HERE / "suites" / f"{name}.yaml"
    if not path.is_file():
        raise MintError(f"unknown shipped suite {spec!r} (available: {', '.join(suite_names()) or 'none'})")
    return path
