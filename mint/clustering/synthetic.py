"""Planted profiles with a known interaction structure, for tests, docs and demos."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mint import SCHEMA, __version__
from mint.vocabulary import DEFAULT_MODALITIES, DEFAULT_THRESHOLDS, INTERACTIONS

#: centre of each planted kind: MINT score, agreement (mod1, mod2), PID atoms (R, U1, U2, S) in bits
_CENTRES: dict[str, tuple[float, tuple[float, float], tuple[float, float, float, float]]] = {
    "redundancy": (1.85, (0.93, 0.92), (0.9, 0.05, 0.05, 0.1)),
    "uniqueness": (1.0, (0.95, 0.05), (0.1, 0.8, 0.02, 0.1)),
    "uniqueness_text": (1.0, (0.05, 0.95), (0.1, 0.02, 0.8, 0.1)),
    "synergy": (0.15, (0.08, 0.07), (0.05, 0.05, 0.05, 0.9)),
}


def planted_profiles(
    sizes: Sequence[int] = (3, 3, 3),
    kinds: Sequence[str] = INTERACTIONS,
    *,
    seed: int = 0,
    jitter: float = 0.03,
    ci_halfwidth: float = 0.03,
    pid: bool = True,
    modalities: tuple[str, str] = DEFAULT_MODALITIES,
    scores: Sequence[float] | None = None,
) -> dict[str, Any]:
    """A profiles.json dict with ``sizes[i]`` tasks of kind ``kinds[i]`` named ``<kind>_<j>``.

    ``jitter`` spreads tasks around their kind's centre; ``ci_halfwidth`` sets the score intervals;
    ``scores`` overrides the centre score of each kind; ``pid=False`` writes ``"pid": null``.
    """
    rng = np.random.default_rng(seed)
    m1, m2 = modalities
    tasks: dict[str, Any] = {}
    for g, (size, kind) in enumerate(zip(sizes, kinds)):
        score0, agree0, pid0 = _CENTRES[kind]
        if scores is not None:
            score0 = scores[g]
        for j in range(size):
            s = float(np.clip(score0 + rng.normal(0, jitter), 0, 2))
            a = np.clip(np.array(agree0) + rng.normal(0, jitter, 2), 0, 1)
            atoms = np.clip(np.array(pid0) + rng.normal(0, jitter, 4), 0, None)
            dom = m1 if a[0] >= a[1] else m2
            tasks[f"{kind}_{j}"] = {
                "n": 200,
                "mint_score": {
                    "mean": s,
                    "ci95": [s - ci_halfwidth, s + ci_halfwidth],
                    "samples": 10,
                    "size": 50,
                },
                "agreement": {m1: float(a[0]), m2: float(a[1])},
                "chance_corrected": {
                    "mean": s - 0.05,
                    "ci95": [s - 0.05 - ci_halfwidth, s - 0.05 + ci_halfwidth],
                },
                "pid": (
                    {
                        "redundancy": float(atoms[0]),
                        f"unique_{m1}": float(atoms[1]),
                        f"unique_{m2}": float(atoms[2]),
                        "synergy": float(atoms[3]),
                        "units": "bits",
                        "estimator": "exact",
                        "bins": 20,
                    }
                    if pid
                    else None
                ),
                "interaction": kind.split("_")[0],
                "dominant_modality": dom,
            }
    return {
        "mint_version": __version__,
        "schema": SCHEMA,
        "config": {"thresholds": list(DEFAULT_THRESHOLDS)},
        "tasks": tasks,
    }
