"""The batching rule every pass keeps: samples with different numbers of images never share a batch.

Processors stack the images of a batch per sample, so a batch mixing image counts cannot be encoded.
Prediction, feature extraction, training and the affinity baselines all cut their batches by
:func:`by_image_count` (or :func:`prompt_batches` for built prompts); :func:`image_count` counts a sample's
images with its in-context demonstrations, without decoding them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from mint.tasks.demos import has_image

T = TypeVar("T")

#: the label of every token that carries no loss (prompt, padding): PyTorch's and transformers' ignore index
IGNORE_INDEX = -100

#: samples per chunk of prediction (:meth:`mint.models.base.VisionLanguageModel.predict_modes`), in batches
#: (bounds the decoded images held)
CHUNK_BATCHES = 4


def image_count(sample: Any, demos: Iterable[Any] = ()) -> int:
    """The images a prompt for ``sample`` shows: its own (0 or 1) and one per demonstration that has one."""
    return int(has_image(sample)) + sum(int(has_image(d)) for d in demos)


def by_image_count(items: Iterable[T], count: Callable[[T], int]) -> dict[int, list[T]]:
    """``items`` bucketed by ``count(item)``, in increasing count, each bucket in the order given."""
    buckets: dict[int, list[T]] = {}
    for item in items:
        buckets.setdefault(count(item), []).append(item)
    return {k: buckets[k] for k in sorted(buckets)}


def prompt_batches(prompts: Sequence[tuple[str, list]], batch_size: int) -> list[list[int]]:
    """Index batches of at most ``batch_size`` built prompts ``(text, images)`` with the same number of
    images, fewest images first."""
    buckets = by_image_count(range(len(prompts)), lambda i: len(prompts[i][1]))
    return [idx[s : s + batch_size] for idx in buckets.values() for s in range(0, len(idx), batch_size)]
