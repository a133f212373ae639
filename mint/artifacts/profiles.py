"""``profiles.json`` (docs/design.md, file formats): what ``mint profile`` writes and grouping, routing and
the figures read. :class:`Profiles` is the checked file; :class:`ProfileSet` its numbers as arrays, one
row per task in the file's task order."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist, squareform

from mint.artifacts._base import Artifact, Where, check_schema, interval, is_number, mapping, number
from mint.errors import MintError
from mint.vocabulary import DEFAULT_THRESHOLDS, interaction_of


def _score_in_range(score: dict[str, Any], at: Where, path: tuple, low: float, high: float) -> None:
    """``score["mean"]`` a number in [low, high], inside its own ``ci95`` (when there is one)."""
    mean = number(score["mean"], at, *path, "mean")
    if not low <= mean <= high:
        raise at.error(*path, "mean", message=f"{mean} is outside the score's range [{low:g}, {high:g}]")
    ci = interval(score.get("ci95"), at, *path, "ci95")
    if ci is not None and not ci[0] - 1e-9 <= mean <= ci[1] + 1e-9:
        raise at.error(*path, "mean", message=f"{mean} lies outside its own interval ci95 [{ci[0]}, {ci[1]}]")


def _config(profiles: Any) -> dict[str, Any]:
    cfg = profiles.get("config")
    return cfg if isinstance(cfg, dict) else {}


def _pid_keys(modalities: list[str]) -> list[str]:
    return ["redundancy", f"unique_{modalities[0]}", f"unique_{modalities[1]}", "synergy"]


def _thresholds(profiles: Any, at: Where) -> tuple[float, float]:
    raw = _config(profiles).get("thresholds")
    if raw is None:
        return DEFAULT_THRESHOLDS
    vals = [v for v in raw.values() if is_number(v)] if isinstance(raw, dict) else raw
    if not isinstance(vals, (list, tuple)) or len(vals) != 2 or not all(is_number(x) for x in vals):
        raise at.error("config", "thresholds", message=f"expected two numbers, got {raw!r}")
    hi, lo = sorted((float(x) for x in vals), reverse=True)
    return hi, lo


def thresholds_of(profiles: Any, source: str = "profiles") -> tuple[float, float]:
    """The (high, low) cut-points from ``config.thresholds``, else the defaults (1.5, 0.5).

    Accepts a list of two numbers or a mapping whose two numeric values are the cut-points.
    """
    return _thresholds(profiles, Where(source))


def _check_task(t: Any, at: Where, name: str, modalities: list[str] | None) -> list[str]:
    """One task's entry; returns the modality names (of the first task, then checked against them)."""
    w = ("tasks", name)
    mapping(t, at, *w)
    for key in ("n", "mint_score", "agreement"):
        if key not in t:
            raise at.error(*w, message=f"missing key '{key}'")
    if not isinstance(t["n"], int) or isinstance(t["n"], bool) or t["n"] < 1:
        raise at.error(*w, "n", message=f"expected a positive integer, got {t['n']!r}")
    ms = mapping(t["mint_score"], at, *w, "mint_score")
    if "mean" not in ms:
        raise at.error(*w, "mint_score", message="missing key 'mean'")
    _score_in_range(ms, at, (*w, "mint_score"), 0.0, 2.0)
    ag = mapping(t["agreement"], at, *w, "agreement")
    if len(ag) != 2:
        raise at.error(*w, "agreement", message=f"expected two modalities, got {sorted(ag)}")
    if modalities is None:
        modalities = list(ag)
    elif set(ag) != set(modalities):
        raise at.error(*w, "agreement", message=f"modalities {sorted(ag)} differ from {modalities}")
    for m, v in ag.items():
        if number(v, at, *w, "agreement", m) < 0 or v > 1:
            raise at.error(*w, "agreement", m, message=f"{v} is outside [0, 1]")
    cc = t.get("chance_corrected")
    if cc is not None:
        cc = mapping(cc, at, *w, "chance_corrected")
        if cc.get("mean") is not None:
            number(cc["mean"], at, *w, "chance_corrected", "mean")
        interval(cc.get("ci95"), at, *w, "chance_corrected", "ci95")
    pid = t.get("pid")
    if pid is not None:
        pid = mapping(pid, at, *w, "pid")
        alt = {f"unique_{modalities[0]}": "unique_1", f"unique_{modalities[1]}": "unique_2"}
        for atom in _pid_keys(modalities):
            key = atom if atom in pid else alt.get(atom, atom)  # unique_1/2 accepted too
            if key not in pid:
                raise at.error(*w, "pid", message=f"missing key '{atom}'")
            number(pid[key], at, *w, "pid", key)
    return modalities


@dataclass(frozen=True, eq=False)
class Profiles(Artifact):
    """A checked ``profiles.json``: per task ``n``, ``mint_score``, ``agreement``, ``chance_corrected``,
    ``pid``, ``interaction``; the options in ``config``."""

    WHAT = "profiles file"

    @classmethod
    def validate(cls, data: Any, at: Where) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise at.error(message="expected a JSON object with 'schema' and 'tasks'")
        check_schema(data, at)
        if "tasks" not in data:
            raise at.error(message="missing key 'tasks'")
        tasks = mapping(data["tasks"], at, "tasks")
        if not tasks:
            raise at.error("tasks", message="no tasks")
        modalities: list[str] | None = None
        for name, t in tasks.items():
            modalities = _check_task(t, at, name, modalities)
        _thresholds(data, at)
        return data

    @property
    def tasks(self) -> list[str]:
        """The task names, in file order."""
        return list(self.data["tasks"])

    def task(self, name: str) -> dict[str, Any]:
        """One task's entry (a copy)."""
        return dict(self.data["tasks"][name])

    @property
    def config(self) -> dict[str, Any]:
        """The options the profiles were made with (empty for files without them)."""
        return dict(_config(self.data))

    @property
    def thresholds(self) -> tuple[float, float]:
        return thresholds_of(self.data, self.source)

    @property
    def modalities(self) -> tuple[str, str]:
        first = next(iter(self.data["tasks"].values()))["agreement"]
        m1, m2 = first
        return str(m1), str(m2)

    def interactions(self) -> dict[str, str]:
        """Each task's interaction kind: as recorded in the file, else from its deciding score."""
        computed = dict(zip(self.tasks, self.arrays().interactions()))
        return {t: str(self.data["tasks"][t].get("interaction") or computed[t]) for t in self.tasks}

    def arrays(self) -> ProfileSet:
        """The numbers as arrays (:class:`ProfileSet`), one row per task."""
        return ProfileSet.from_dict(self.data, self.source)

    def only(self, tasks: list[str]) -> Profiles:
        """The same profiles restricted to ``tasks`` (in file order)."""
        keep = set(tasks)
        unknown = sorted(keep - set(self.data["tasks"]))
        if unknown:
            raise MintError(f"{self.source}: no profile of task {unknown[0]!r}")
        tasks_ = {t: v for t, v in self.data["tasks"].items() if t in keep}
        return Profiles.from_dict({**self.data, "tasks": tasks_}, self.source)


def validate_profiles(data: Any, source: str = "profiles") -> dict[str, Any]:
    """Check ``data`` against the profiles.json format; return it unchanged or raise MintError."""
    if isinstance(data, Profiles):
        return data.data
    return Profiles.validate(data, Where(source))


def load_profiles(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a profiles.json file; return its payload (:meth:`Profiles.load` for the object)."""
    return Profiles.load(path).data


def score_distance(scores: np.ndarray) -> np.ndarray:
    """Square matrix of d(A, B) = |score(A) - score(B)| (the MINT dataset distance)."""
    s = np.asarray(scores, float)
    return np.abs(s[:, None] - s[None, :])


#: smallest scale a feature is divided by: all profile features live on 0..1 or 0..2, so a feature
#: that barely varies across tasks is not blown up until its noise dominates the distances
SCALE_FLOOR = 0.05


def standardise(x: np.ndarray, floor: float = SCALE_FLOOR) -> np.ndarray:
    """Columns to zero mean, divided by max(standard deviation, ``floor``)."""
    x = np.asarray(x, float)
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), floor)


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
    def from_dict(cls, profiles: Any, source: str = "profiles") -> ProfileSet:
        """The arrays of a profiles.json payload (or :class:`Profiles`), checked first."""
        if isinstance(profiles, Profiles):
            profiles, source = profiles.data, profiles.source
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

    def vectors(self) -> tuple[np.ndarray, list[str]]:
        """Standardised profile vectors (:meth:`features`, :func:`standardise`) and their feature names."""
        x, names = self.features()
        return standardise(x), names

    def profile_distance(self) -> np.ndarray:
        """Square Euclidean distance matrix between the standardised profile vectors."""
        x, _ = self.vectors()
        return squareform(pdist(x)) if len(x) > 1 else np.zeros((1, 1))

    def score_distance(self) -> np.ndarray:
        """Square matrix of |score(A) - score(B)| of the deciding score (:meth:`decider`)."""
        return score_distance(self.decider())

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
