"""Task distances for clustering: the condensed form scipy's linkage takes. The distances themselves (the
MINT dataset distance, the standardised profile-vector distance) belong to the profiles artifact
(:class:`mint.artifacts.profiles.ProfileSet`), which the figures read too."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import squareform


def condensed(d: np.ndarray) -> np.ndarray:
    """Condensed form of a square symmetric distance matrix (for scipy's linkage)."""
    return squareform(np.asarray(d, float), checks=False)
