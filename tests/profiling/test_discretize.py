"""Feature discretisation (L2 + PCA + k-means), joint tables and label encoding."""

from __future__ import annotations

import numpy as np
import pytest

from mint.errors import MintError
from mint.profiling.discretize import discretize, encode_labels, joint_table
from mint.profiling.pid import broja_pid


def blobs(rng: np.random.Generator, centers: int, per: int, dim: int = 16, noise: float = 0.02):
    """Well-separated clusters of directions (L2 normalisation keeps them apart)."""
    c = rng.normal(size=(centers, dim))
    labels = np.repeat(np.arange(centers), per)
    scale = rng.uniform(0.5, 3.0, size=(len(labels), 1))  # norms differ; directions do not
    x = (c[labels] + noise * rng.normal(size=(len(labels), dim))) * scale
    return x, labels


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_recovers_separated_clusters_and_ignores_norms():
    rng = np.random.default_rng(0)
    x, labels = blobs(rng, centers=4, per=30)
    codes = discretize(x, bins=4, components=3, seed=0)
    assert codes.dtype.kind == "i" and codes.shape == (120,)
    assert set(codes.tolist()) == {0, 1, 2, 3}
    assert same_partition(codes, labels)
    assert codes[0] == 0  # numbered by first appearance


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 12))
    a = discretize(x, bins=20, seed=3)
    b = discretize(x.copy(), bins=20, seed=3)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == 20


def test_fewer_distinct_rows_than_bins():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 5.0], [1.0, 1.0]])
    codes = discretize(x, bins=20)
    # rows 0/1 and 2/3 point the same way after L2 normalisation
    assert codes.tolist() == [0, 0, 1, 1, 2]


def test_small_and_degenerate_inputs():
    assert discretize(np.array([[3.0, 4.0]]), bins=5).tolist() == [0]
    assert discretize(np.ones((6, 3)), bins=5).tolist() == [0] * 6
    one_dim = discretize(np.array([1.0, -2.0, 3.0, -0.5]), bins=2)  # 1-D: sign after normalising
    assert one_dim.tolist() == [0, 1, 0, 1]
    zeros = discretize(np.zeros((3, 4)), bins=2)  # zero vectors stay zero, one code
    assert zeros.tolist() == [0, 0, 0]
    # more components than the data has
    rng = np.random.default_rng(2)
    codes = discretize(rng.normal(size=(10, 2)), bins=3, components=5)
    assert len(set(codes.tolist())) == 3


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 4)), "empty"),
        (np.zeros((4, 0)), "empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
        (np.array([[1.0, 0.0], [np.inf, 1.0]]), "sample 1"),
        (np.zeros((2, 2, 2)), "2-D"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_bad_features(bad, match):
    with pytest.raises(MintError, match=match):
        discretize(bad)


def test_bad_options():
    with pytest.raises(MintError, match="bins"):
        discretize(np.ones((3, 2)), bins=0)
    with pytest.raises(MintError, match="components"):
        discretize(np.ones((3, 2)), components=0)


def test_joint_table_counts():
    p = joint_table([0, 0, 1, 2], [1, 1, 0, 0], [0, 0, 1, 1])
    assert p.shape == (3, 2, 2)
    assert p.sum() == pytest.approx(1.0)
    assert p[0, 1, 0] == pytest.approx(0.5)
    assert p[1, 0, 1] == pytest.approx(0.25) and p[2, 0, 1] == pytest.approx(0.25)
    assert np.count_nonzero(p) == 3


def test_joint_table_errors():
    with pytest.raises(MintError, match="length"):
        joint_table([0, 1], [0], [0, 1])
    with pytest.raises(MintError, match="zero samples"):
        joint_table([], [], [])
    with pytest.raises(MintError, match="non-negative"):
        joint_table([0, -1], [0, 0], [0, 1])
    with pytest.raises(MintError, match="integers"):
        joint_table([0, 0.5], [0, 0], [0, 1])


def test_encode_labels():
    codes, classes = encode_labels(["red", "blue", "red", "green", "blue"])
    assert classes == ["blue", "green", "red"]
    assert codes.tolist() == [2, 0, 2, 1, 0]
    assert [classes[c] for c in codes] == ["red", "blue", "red", "green", "blue"]
    codes, classes = encode_labels([3, 1, 3])
    assert classes == ["1", "3"] and codes.tolist() == [1, 0, 1]
    with pytest.raises(MintError, match="missing"):
        encode_labels(["a", None])
    with pytest.raises(MintError, match="no labels"):
        encode_labels([])


def test_pipeline_recovers_planted_interactions():
    """features -> codes -> joint table -> PID: a synergistic (XOR) and a redundant task."""
    rng = np.random.default_rng(5)
    n = 400
    b1, b2 = rng.integers(0, 2, n), rng.integers(0, 2, n)
    centers = rng.normal(size=(2, 8))

    def feats(bits):
        return centers[bits] + 0.05 * rng.normal(size=(n, 8))

    c1 = discretize(feats(b1), bins=20, seed=0)
    c2 = discretize(feats(b2), bins=20, seed=0)
    y, _ = encode_labels(["yes" if v else "no" for v in (b1 ^ b2)])
    xor = broja_pid(joint_table(c1, c2, y))
    assert xor["synergy"] > 0.9 and max(xor["redundancy"], xor["unique_1"], xor["unique_2"]) < 0.05

    c2_same = discretize(feats(b1), bins=20, seed=0)
    red = broja_pid(joint_table(c1, c2_same, b1))
    assert red["redundancy"] > 0.9 and max(red["synergy"], red["unique_1"], red["unique_2"]) < 0.05
