"""scikit-learn's bundled handwritten digits (1,797 8x8 images, grey levels 0..16) as 64x64 RGB images.

The dataset has no train/test split of its own: a fixed stratified split (seed 0, a third of each class
to test) is used, independent of the suite seed, so test sets stay comparable across seeds.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mint.tasks.schema import ArrayImage

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SCALE = 8  # 8x8 -> 64x64, nearest neighbour
TEST_FRACTION = 1 / 3


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (n, 8, 8) uint8, 0..255, ink dark on white
    labels: np.ndarray  # (n,) int
    index: np.ndarray  # (n,) row in load_digits(), a stable id

    def image(self, i: int) -> ArrayImage:
        """Image ``i`` as a lazily upscaled 64x64 RGB source."""
        return ArrayImage(self.images[i], scale=SCALE)


def _raw() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 images (0..16) and labels, read from the CSV that scikit-learn bundles without importing
    scikit-learn (about a second); ``load_digits`` where the file is not where it is expected."""
    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if csv is not None and csv.is_file():
        data = np.loadtxt(csv, delimiter=",")
        return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int)
    from sklearn.datasets import load_digits  # pragma: no cover - a different scikit-learn layout

    d = load_digits()
    return d.images, d.target.astype(int)


@lru_cache(maxsize=1)
def _all() -> tuple[np.ndarray, np.ndarray]:
    images, labels = _raw()
    # 0..16 ink intensity -> 0..255 grey, dark ink on a white page like easy-VQA's light background
    grey = 255 - np.rint(images * (255 / 16)).astype(np.uint8)
    return grey, labels


@lru_cache(maxsize=2)
def load_split(split: str) -> Split:
    """The fixed ``train`` (2/3) or ``test`` (1/3) split, stratified by digit."""
    if split not in ("train", "test"):
        raise ValueError(f"unknown digits split {split!r}")
    images, labels = _all()
    rng = np.random.default_rng(0)
    test_idx = []
    for d in range(10):
        rows = np.flatnonzero(labels == d)
        test_idx.extend(rng.choice(rows, size=int(round(len(rows) * TEST_FRACTION)), replace=False).tolist())
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_idx] = True
    rows = np.flatnonzero(is_test if split == "test" else ~is_test)
    return Split(images[rows], labels[rows], rows)
