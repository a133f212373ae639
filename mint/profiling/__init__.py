"""Task profiling: modality ablation, similarity functions, MINT score and PID estimators.

Public API::

    from mint.profiling import load_predictions, profile_predictions
    profiles = profile_predictions(load_predictions("preds.jsonl"), samples=10, seed=0)

The PID solver and the discretization: ``broja_pid``, ``discretize``, ``joint_table``, ``encode_labels``.
"""

from __future__ import annotations

from mint.artifacts.predictions import PredictionSet, TaskPredictions, load_predictions, validate_records
from mint.profiling.discretize import discretize, encode_labels, joint_table
from mint.profiling.pid import broja_pid
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
    "broja_pid",
    "discretize",
    "encode_labels",
    "joint_table",
]
