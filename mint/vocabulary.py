"""The terms every stage shares, defined once: interaction kinds, cut-points, modality modes and names.

Imports nothing of mint's, so that every layer (tasks, models, profiling, clustering, tuning) can use it.
"""

from __future__ import annotations

from collections.abc import Sequence

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
MODALITIES: tuple[str, str, str] = ("image", "text", "video")
#: the two modality names a predictions file uses unless it names others
DEFAULT_MODALITIES: tuple[str, str] = ("image", "text")


def interaction_of(score: float, thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> str:
    """The interaction kind of a deciding score: redundancy if ``score >= high``, uniqueness if
    ``score >= low``, else synergy.

    >>> interaction_of(1.8), interaction_of(1.0), interaction_of(0.2)
    ('redundancy', 'uniqueness', 'synergy')
    """
    high, low = thresholds
    return "redundancy" if score >= high else "uniqueness" if score >= low else "synergy"
