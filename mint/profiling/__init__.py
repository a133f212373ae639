"""Task profiling: modality ablation, similarity functions, MINT score and PID estimators.

Public API::

    from mint.profiling import load_predictions, profile_predictions
    profiles = profile_predictions(load_predictions("preds.jsonl"), samples=10, seed=0)

The PID solver and the discretization (``broja_pid``, ``discretize``, ``joint_table``,
``encode_labels``) are imported on first use, so loading this package needs only numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

from mint.artifacts.predictions import PredictionSet, TaskPredictions, load_predictions, validate_records
from mint.profiling.profiler import (
    dominant_modality,
    parse_thresholds,
    profile_predictions,
    profile_task,
)
from mint.profiling.score import kappa, mint_score, score_task
from mint.profiling.similarity import (
    available_similarities,
    get_similarity,
    normalize_answer,
    register_similarity,
)
from mint.vocabulary import INTERACTIONS, interaction_of

_LAZY = {
    "broja_pid": "mint.profiling.pid",
    "discretize": "mint.profiling.discretize",
    "joint_table": "mint.profiling.discretize",
    "encode_labels": "mint.profiling.discretize",
}

__all__ = [
    "INTERACTIONS",
    "PredictionSet",
    "TaskPredictions",
    "available_similarities",
    "interaction_of",
    "dominant_modality",
    "get_similarity",
    "kappa",
    "load_predictions",
    "mint_score",
    "normalize_answer",
    "parse_thresholds",
    "profile_predictions",
    "profile_task",
    "register_similarity",
    "score_task",
    "validate_records",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mint.profiling' has no attribute {name!r}")
