"""The terms every stage shares, defined once: interaction kinds, cut-points, modality modes and names,
the task metrics' names.

Imports nothing of mint's, so that every layer (tasks, models, profiling, clustering, tuning) can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: the interaction kinds, from most to least shared information
INTERACTIONS: tuple[str, str, str] = ("redundancy", "uniqueness", "synergy")
#: default cut-points (high, low) on the deciding score: >= 1.5 redundancy, >= 0.5 uniqueness, below synergy
DEFAULT_THRESHOLDS: tuple[float, float] = (1.5, 0.5)
#: the PID atoms in file order (``unique_1`` / ``unique_2``: the two modalities in the profiles' order)
PID_ATOMS: tuple[str, ...] = ("redundancy", "unique_1", "unique_2", "synergy")
#: the multimodal prediction's key in a predictions file and the mode that sees every modality
BOTH = "both"
#: modality modes a model is asked in: every modality, the image alone, the text alone
MODES: tuple[str, str, str] = (BOTH, "image", "text")
#: the modalities a task sample can carry
MODALITIES: tuple[str, ...] = ("image", "text", "video", "audio")
#: the two modality names a predictions file uses unless it names others
DEFAULT_MODALITIES: tuple[str, str] = ("image", "text")
#: task metric name -> (what its score is called, its range), for reports and docs (:mod:`mint.metrics`)
METRICS: dict[str, tuple[str, str]] = {
    "exact": ("accuracy", "0..1"),
    "f1": ("token F1", "0..1"),
    "choice": ("accuracy", "0..1"),
    "rouge_l": ("ROUGE-L F", "0..1"),
    "bleu": ("BLEU", "0..1"),
    "cider": ("CIDEr", "0..10"),
}
#: the prefix of the embedding metric, ``embedding:MODEL`` (cosine of sentence embeddings)
EMBEDDING = "embedding:"


def known_metric(name: Any) -> bool:
    """Whether ``name`` is a task metric (a name of :data:`METRICS` or ``embedding:MODEL``)."""
    return isinstance(name, str) and (
        name in METRICS or (name.startswith(EMBEDDING) and len(name) > len(EMBEDDING))
    )


def metric_names() -> str:
    """The accepted metric names, for error messages."""
    return ", ".join([*METRICS, EMBEDDING + "MODEL"])


def interaction_of(score: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> str:
    """The interaction kind of a deciding score: redundancy if ``score >= high``, uniqueness if
    ``score >= low``, else synergy.

    >>> interaction_of(1.8), interaction_of(1.0), interaction_of(0.2)
    ('redundancy', 'uniqueness', 'synergy')
    """
    high, low = thresholds
    return "redundancy" if score >= high else "uniqueness" if score >= low else "synergy"
