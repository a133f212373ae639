"""Load and validate ``profiles.json`` (docs/design.md, file formats) and turn it into arrays.

:func:`load_profiles` / :func:`validate_profiles` check the documented format and raise
:class:`~mint.errors.MintError` naming the file and field at fault. :class:`ProfileSet` holds the
numbers the grouping methods and plots need, one row per task in the file's task order.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mint import SCHEMA
from mint.errors import MintError
from mint.io import read_json

#: Default cut-points on the MINT score: >= 1.5 redundancy, >= 0.5 uniqueness, below synergy.
DEFAULT_THRESHOLDS: tuple[float, float] = (1.5, 0.5)
INTERACTIONS: tuple[str, str, str] = ("redundancy", "uniqueness", "synergy")
PID_ATOMS: tuple[str, ...] = ("redundancy", "unique_1", "unique_2", "synergy")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _num(v: Any, where: str) -> float:
    if not _is_num(v):
        raise MintError(f"{where}: expected a finite number, got {v!r}")
    return float(v)


def _in_interval(score: dict[str, Any], where: str, low: float, high: float) -> None:
    """``score["mean"]`` a number in [low, high], inside its own ``ci95`` (when there is one)."""
    mean = _num(score["mean"], f"{where}.mean")
    if not low <= mean <= high:
        raise MintError(f"{where}.mean: {mean} is outside the score's range [{low:g}, {high:g}]")
    ci = _interval(score.get("ci95"), f"{where}.ci95")
    if ci is not None and not ci[0] - 1e-9 <= mean <= ci[1] + 1e-9:
        raise MintError(f"{where}.mean: {mean} lies outside its own interval ci95 [{ci[0]}, {ci[1]}]")


def _interval(v: Any, where: str) -> tuple[float, float] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(_is_num(x) for x in v):
        raise MintError(f"{where}: expected [low, high], got {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if lo > hi:
        raise MintError(f"{where}: low {lo} is above high {hi}")
    return lo, hi


def _dict(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise MintError(f"{where}: expected an object, got {type(v).__name__}")
    return v


def _config(profiles: dict[str, Any]) -> dict[str, Any]:
    cfg = profiles.get("config")
    return cfg if isinstance(cfg, dict) else {}


def thresholds_of(profiles: dict[str, Any], source: str = "profiles") -> tuple[float, float]:
    """The (high, low) MINT-score cut-points from ``config.thresholds``, else (1.5, 0.5).

    Accepts a list of two numbers or a mapping whose two numeric values are the cut-points.
    """
    raw = _config(profiles).get("thresholds")
    if raw is None:
        return DEFAULT_THRESHOLDS
    vals = [v for v in raw.values() if _is_num(v)] if isinstance(raw, dict) else raw
    if not isinstance(vals, (list, tuple)) or len(vals) != 2 or not all(_is_num(x) for x in vals):
        raise MintError(f"{source}: config.thresholds: expected two numbers, got {raw!r}")
    hi, lo = sorted((float(x) for x in vals), reverse=True)
    return hi, lo


def interaction_of(score: float, thresholds: tuple[float, float] = DEFAULT_THRESHOLDS) -> str:
    """Interaction type of a MINT score: nearest of 2 / 1 / 0 by the cut-points."""
    hi, lo = thresholds
    return "redundancy" if score >= hi else "uniqueness" if score >= lo else "synergy"


def validate_profiles(data: Any, source: str = "profiles") -> dict[str, Any]:
    """Check ``data`` against the profiles.json format; return it unchanged or raise MintError."""
    if not isinstance(data, dict):
        raise MintError(f"{source}: expected a JSON object with 'schema' and 'tasks'")
    if "schema" not in data:
        raise MintError(f"{source}: missing key 'schema' (not a mint profiles.json?)")
    if data["schema"] != SCHEMA:
        raise MintError(f"{source}: schema {data['schema']!r} is not supported (expected {SCHEMA})")
    if "tasks" not in data:
        raise MintError(f"{source}: missing key 'tasks'")
    tasks = _dict(data["tasks"], f"{source}: tasks")
    if not tasks:
        raise MintError(f"{source}: tasks: no tasks")
    modalities: list[str] | None = None
    for name, t in tasks.items():
        w = f"{source}: tasks.{name}"
        _dict(t, w)
        for key in ("n", "mint_score", "agreement"):
            if key not in t:
                raise MintError(f"{w}: missing key '{key}'")
        if not isinstance(t["n"], int) or isinstance(t["n"], bool) or t["n"] < 1:
            raise MintError(f"{w}.n: expected a positive integer, got {t['n']!r}")
        ms = _dict(t["mint_score"], f"{w}.mint_score")
        if "mean" not in ms:
            raise MintError(f"{w}.mint_score: missing key 'mean'")
        _in_interval(ms, f"{w}.mint_score", 0.0, 2.0)
        ag = _dict(t["agreement"], f"{w}.agreement")
        if len(ag) != 2:
            raise MintError(f"{w}.agreement: expected two modalities, got {sorted(ag)}")
        if modalities is None:
            modalities = list(ag)
        elif set(ag) != set(modalities):
            raise MintError(f"{w}.agreement: modalities {sorted(ag)} differ from {modalities}")
        for m, v in ag.items():
            if _num(v, f"{w}.agreement.{m}") < 0 or v > 1:
                raise MintError(f"{w}.agreement.{m}: {v} is outside [0, 1]")
        cc = t.get("chance_corrected")
        if cc is not None:
            cc = _dict(cc, f"{w}.chance_corrected")
            if cc.get("mean") is not None:
                _num(cc["mean"], f"{w}.chance_corrected.mean")
            _interval(cc.get("ci95"), f"{w}.chance_corrected.ci95")
        pid = t.get("pid")
        if pid is not None:
            pid = _dict(pid, f"{w}.pid")
            alt = {f"unique_{modalities[0]}": "unique_1", f"unique_{modalities[1]}": "unique_2"}
            for atom in _pid_keys(modalities):
                key = atom if atom in pid else alt.get(atom, atom)  # unique_1/2 accepted too
                if key not in pid:
                    raise MintError(f"{w}.pid: missing key '{atom}'")
                _num(pid[key], f"{w}.pid.{key}")
    return data


def _pid_keys(modalities: list[str]) -> list[str]:
    return ["redundancy", f"unique_{modalities[0]}", f"unique_{modalities[1]}", "synergy"]


def load_profiles(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a profiles.json file."""
    return validate_profiles(read_json(path, "profiles file"), str(path))


@dataclass(frozen=True)
class ProfileSet:
    """The numbers of a profiles.json, one entry per task in file order."""

    tasks: list[str]
    modalities: tuple[str, str]
    n: np.ndarray  #: samples per task
    score: np.ndarray  #: MINT score means, 0..2
    score_ci: np.ndarray  #: (T, 2) 95% intervals (the mean twice where none was given)
    agreement: np.ndarray  #: (T, 2) agreement rates of modality 1 and 2 with the joint prediction
    cc: np.ndarray | None  #: chance-corrected score means, or None if any task lacks one
    cc_ci: np.ndarray | None
    pid: np.ndarray | None  #: (T, 4) R, U1, U2, S in bits, or None if any task lacks PID
    pid_mask: np.ndarray  #: which tasks have PID
    dominant: list[str]  #: dominant modality per task (from the file, else the higher agreement)
    thresholds: tuple[float, float]
    decide_by: str = "raw"  #: ``corrected``: interactions from the chance-corrected score (config.decide_by)

    @classmethod
    def from_dict(cls, profiles: dict[str, Any], source: str = "profiles") -> ProfileSet:
        validate_profiles(profiles, source)
        tasks = list(profiles["tasks"])
        recs = [profiles["tasks"][t] for t in tasks]
        mods = tuple(recs[0]["agreement"])
        score = np.array([r["mint_score"]["mean"] for r in recs], float)
        ci = np.array([r["mint_score"].get("ci95") or [s, s] for r, s in zip(recs, score)], float)
        agree = np.array([[r["agreement"][m] for m in mods] for r in recs], float)
        ccs = [r.get("chance_corrected") or {} for r in recs]
        has_cc = all(c.get("mean") is not None for c in ccs)
        cc = np.array([c["mean"] for c in ccs], float) if has_cc else None
        cc_ci = np.array([c.get("ci95") or [c["mean"], c["mean"]] for c in ccs], float) if has_cc else None
        mask = np.array([r.get("pid") is not None for r in recs])
        pid_all = np.zeros((len(tasks), 4))
        for i, r in enumerate(recs):
            if mask[i]:
                p = r["pid"]
                u1 = p.get(f"unique_{mods[0]}", p.get("unique_1"))
                u2 = p.get(f"unique_{mods[1]}", p.get("unique_2"))
                pid_all[i] = [p["redundancy"], u1, u2, p["synergy"]]
        dominant = []
        for r, a in zip(recs, agree):
            d = r.get("dominant_modality")
            dominant.append(d if d in mods else mods[int(a[1] > a[0])])
        return cls(
            tasks=tasks,
            modalities=(str(mods[0]), str(mods[1])),
            n=np.array([r["n"] for r in recs], int),
            score=score,
            score_ci=ci,
            agreement=agree,
            cc=cc,
            cc_ci=cc_ci,
            pid=pid_all if mask.all() else None,
            pid_mask=mask,
            dominant=dominant,
            thresholds=thresholds_of(profiles, source),
            decide_by="corrected"
            if cc is not None and _config(profiles).get("decide_by") == "corrected"
            else "raw",
        )

    def decider(self) -> np.ndarray:
        """The score that decides interaction types: the MINT score, or the chance-corrected score
        when the profiles were made with ``decide_by: corrected``."""
        return self.cc if self.decide_by == "corrected" and self.cc is not None else self.score

    def decider_ci(self) -> np.ndarray:
        """(T, 2) 95% intervals of :meth:`decider`'s score."""
        return self.cc_ci if self.decide_by == "corrected" and self.cc_ci is not None else self.score_ci

    @property
    def decider_name(self) -> str:
        """``chance-corrected score`` or ``MINT score``: the name of :meth:`decider`'s score."""
        return (
            "chance-corrected score"
            if self.decide_by == "corrected" and self.cc is not None
            else "MINT score"
        )

    def interactions(self) -> list[str]:
        """Interaction type of each task from its deciding score and the cut-points."""
        return [interaction_of(s, self.thresholds) for s in self.decider()]

    def features(self) -> tuple[np.ndarray, list[str]]:
        """The profile vector per task (unstandardised) and the feature names.

        Score, chance-corrected score (if every task has one), the two agreement rates, and the PID
        atoms divided by their total (if every task has PID).
        """
        cols = [self.score]
        names = ["mint_score"]
        if self.cc is not None:
            cols.append(self.cc)
            names.append("chance_corrected")
        cols += [self.agreement[:, 0], self.agreement[:, 1]]
        names += [f"agreement_{m}" for m in self.modalities]
        if self.pid is not None:
            p = np.clip(self.pid, 0.0, None)
            tot = p.sum(axis=1, keepdims=True)
            shares = np.divide(p, tot, out=np.full_like(p, 0.25), where=tot > 0)
            cols += list(shares.T)
            m1, m2 = self.modalities
            names += ["pid_redundancy", f"pid_unique_{m1}", f"pid_unique_{m2}", "pid_synergy"]
        return np.column_stack(cols), names

    def resample(self, rng: np.random.Generator) -> ProfileSet:
        """A bootstrap draw: each score normal within its 95% interval (sd = width / 3.92),
        clipped to the score range; agreement rates binomial with the task's n."""
        sd = (self.score_ci[:, 1] - self.score_ci[:, 0]) / 3.92
        score = np.clip(rng.normal(self.score, sd), 0.0, 2.0)
        cc = None
        if self.cc is not None and self.cc_ci is not None:
            cc = rng.normal(self.cc, (self.cc_ci[:, 1] - self.cc_ci[:, 0]) / 3.92)
        agree = rng.binomial(self.n[:, None], self.agreement) / self.n[:, None]
        return replace(self, score=score, cc=cc, agreement=agree)
