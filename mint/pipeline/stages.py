"""Stage caching for ``mint run``: a stage is redone only when the hash of its inputs changed.

Each stage writes ``<out>/.stages/<name>.json`` holding the hash of its inputs once its outputs are
complete. A stage whose hash matches and whose outputs all exist is skipped; a stage that was started
with the same hash but not finished (a killed run) is resumed where the stage supports it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mint import __version__
from mint.errors import MintError
from mint.io import atomic_write_json, stamp
from mint.tuning.export import MERGED

#: the first and the last stage id of ``mint run --stage`` (:mod:`mint.pipeline.schedule`)
PREPARE = "prepare"
REPORT = "report"
#: the stage-cache names (before the first ``/``) that belong to ``prepare``
PREPARE_PARTS = ("predict", "profile", "cluster", "plot", "route")


def selects(stage: str | None) -> Callable[[str], bool] | None:
    """Which stage-cache names (``predict``, ``tune/mint/seed-0``, ...) the stage id ``stage`` of
    :mod:`mint.pipeline.schedule` runs; ``None`` (a whole run) runs all of them."""
    if stage is None:
        return None
    if stage == PREPARE:
        return lambda name: name.split("/", 1)[0] in PREPARE_PARTS
    if stage == REPORT:
        return lambda name: name == REPORT
    row, seed = stage.rsplit("/", 1)
    names = {f"tune/{stage}", f"evaluate/{stage}"}
    if row == "mint":  # evaluate.merged: the MINT run's adapters merged into one, part of its stage
        names |= {f"merge/{stage}", f"evaluate/{MERGED}/{seed}"}
    return lambda name: name in names


def input_hash(payload: Any) -> str:
    """A short, stable hash of JSON-able stage inputs (and the mint version)."""
    text = json.dumps({"mint": __version__, "inputs": payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class StageResult:
    name: str
    key: str
    cached: bool
    seconds: float


@dataclass
class StageCache:
    """The stage markers of one pipeline output folder.

    ``selected`` (``mint run --stage``): only the stages it accepts run; every other stage must already
    be up to date, and is read, never redone (nor forced).
    """

    out: Path
    force: bool = False
    log: Callable[[str], None] = print
    results: list[StageResult] = field(default_factory=list)
    selected: Callable[[str], bool] | None = None

    @property
    def folder(self) -> Path:
        return self.out / ".stages"

    def _marker(self, name: str, state: str) -> Path:
        return self.folder / f"{name.replace('/', '__')}.{state}.json"

    def started_with(self, name: str, key: str) -> bool:
        """Whether the last unfinished attempt at ``name`` had the same inputs (so it may resume)."""
        path = self._marker(name, "started")
        try:
            return json.loads(path.read_text())["key"] == key
        except (OSError, ValueError, KeyError):
            return False

    def run(self, name: str, inputs: Any, outputs: list[Path], fn: Callable[[bool], None]) -> str:
        """Run ``fn(resume)`` unless the stage is up to date; return the stage's key.

        ``resume`` is true when an earlier attempt with the same inputs was interrupted.
        """
        key = input_hash({"stage": name, "inputs": inputs})
        done = self._marker(name, "done")
        try:
            up_to_date = json.loads(done.read_text())["key"] == key
        except (OSError, ValueError, KeyError):
            up_to_date = False
        chosen = self.selected is None or self.selected(name)
        if up_to_date and (not self.force or not chosen) and all(p.exists() for p in outputs):
            self.log(f"[cached] {name}")
            self.results.append(StageResult(name, key, True, 0.0))
            return key
        if not chosen:
            raise MintError(
                f"{self.out}: stage {name} has not run with these inputs; run the stages it needs first "
                "(mint run CONFIG --print-stages lists them in order)"
            )
        resume = not self.force and self.started_with(name, key)
        self.log(f"[{'resume' if resume else 'run'}] {name}")
        if done.exists():
            done.unlink()
        atomic_write_json(self._marker(name, "started"), {"key": key}, replace=True)
        t0 = time.perf_counter()
        fn(resume)
        seconds = time.perf_counter() - t0
        atomic_write_json(
            done, stamp({"stage": name, "key": key, "seconds": round(seconds, 3)}), replace=True
        )
        self._marker(name, "started").unlink(missing_ok=True)
        self.results.append(StageResult(name, key, False, seconds))
        return key
