"""In-context demonstrations: which train samples are shown before a prompt (``--in-context K``).

Each prompt may carry ``K`` demonstrations (image, question, answer) drawn from the **train split of the
same task**, never the sample itself (a train sample is excluded from its own demonstrations, by identity
and by ``exclude_id``). Two selections:

* ``random``: ``K`` distinct train samples drawn with a generator seeded by ``(seed, task name, sample id)``,
  so a sample gets the same demonstrations in every run, process and epoch, whatever else is predicted.
* ``similar``: the ``K`` train samples nearest to the sample, nearest first, by cosine similarity of a
  cheap, model-free embedding (:func:`embed_samples`): the image resized to 8x8 RGB (values centred on 0)
  and the text as hashed word counts (256 buckets), each L2-normalised and concatenated, so the cosine
  is the mean of the image cosine and the text cosine. It does not depend on the model, so the tuned
  model's prompts at evaluation are the prompts it was trained with, and costs one small image decode
  per sample instead of two forward passes. Ties go to the earlier train sample. A custom embedding
  (``features``: samples -> ``(n, d)`` array), e.g. the model's pooled features
  ``lambda ss: np.hstack(list(vlm.features(task, ss).values()))``, can be passed from Python.

Demonstrations are rendered as earlier chat turns (:func:`mint.models.prompts.messages`), with the same
modality ablation as the query, so a prompt with ``K`` demonstrations of image samples holds ``K + 1``
images: the model must take several images in one prompt (:func:`check_multi_image`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mint.errors import MintError, first_line
from mint.seeds import derived_rng

DEMO_SELECTION = ("random", "similar")
#: side of the downsampled image and number of text hash buckets of the ``similar`` embedding
PIXEL_SIDE = 8
TEXT_BUCKETS = 256


def check_in_context(k: Any, selection: str = "random", source: str = "--in-context") -> int:
    """``k`` as a non-negative int (and ``selection`` known), else a :class:`MintError`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise MintError(f"{source}: the number of demonstrations must be a non-negative integer, got {k!r}")
    if selection not in DEMO_SELECTION:
        raise MintError(f"demo selection: expected one of {', '.join(DEMO_SELECTION)}, got {selection!r}")
    return int(k)


def in_context_setting(k: int, selection: str = "random", seed: int = 0) -> dict[str, Any] | None:
    """What outputs record about the demonstrations (None without any)."""
    return (
        {"k": int(k), "selection": selection, "seed": int(seed), "source": "train split of the same task"}
        if k
        else None
    )


def has_image(sample: Any) -> bool:
    """Whether ``sample`` has an image, without decoding it."""
    has = getattr(sample, "has_image", None)
    return bool(has) if has is not None else getattr(sample, "image", None) is not None


def _image_vector(sample: Any) -> np.ndarray:
    if not has_image(sample):
        return np.zeros(PIXEL_SIDE * PIXEL_SIDE * 3)
    from PIL import Image

    img = sample.image
    if isinstance(img, (list, tuple)):
        img = img[0]
    small = np.asarray(img.convert("RGB").resize((PIXEL_SIDE, PIXEL_SIDE), Image.BOX), dtype=np.float64)
    return small.reshape(-1) / 255.0 - 0.5


def _text_vector(sample: Any) -> np.ndarray:
    v = np.zeros(TEXT_BUCKETS)
    for word in re.findall(r"\w+", str(getattr(sample, "text", "") or "").lower()):
        v[zlib.crc32(word.encode()) % TEXT_BUCKETS] += 1.0
    return v


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def embed_samples(samples: Sequence[Any]) -> np.ndarray:
    """The ``similar`` embedding (module docstring): ``(n, 8*8*3 + 256)`` float64 rows."""
    rows = [np.concatenate([_unit(_image_vector(s)), _unit(_text_vector(s))]) for s in samples]
    return np.stack(rows) if rows else np.zeros((0, PIXEL_SIDE * PIXEL_SIDE * 3 + TEXT_BUCKETS))


def _rng(seed: int, task: str, sample_id: str) -> np.random.Generator:
    return derived_rng("demos", seed, task, sample_id)


class DemoSelector:
    """Picks ``k`` demonstrations for samples of ``task`` from ``pool`` (default: ``task.train``).

    Callable: ``selector(sample)`` is ``selector.for_sample(sample)``, so it can be passed as the ``demos``
    of :meth:`mint.models.base.VisionLanguageModel.predict`."""

    def __init__(
        self,
        task: Any,
        k: int,
        method: str = "random",
        seed: int = 0,
        features: Callable[[Sequence[Any]], np.ndarray] | None = None,
        pool: Sequence[Any] | None = None,
    ) -> None:
        self.k = check_in_context(k, method)
        self.task, self.method, self.seed = task, method, int(seed)
        self.pool = list(task.train if pool is None else pool)
        self._embed = features or embed_samples
        self._pool_vectors: np.ndarray | None = None
        if self.k and len(self.pool) <= self.k:
            raise MintError(
                f"task {task.name!r}: {self.k} in-context demonstrations need at least {self.k + 1} "
                f"train samples (a sample is never its own demonstration); it has {len(self.pool)}"
            )

    def __call__(self, sample: Any) -> list[Any]:
        return self.for_sample(sample)

    def _vectors(self, samples: Sequence[Any]) -> np.ndarray:
        v = np.asarray(self._embed(samples), dtype=np.float64)
        if v.ndim != 2 or v.shape[0] != len(samples) or not np.isfinite(v).all():
            raise MintError(
                f"task {self.task.name!r}: demo features must be a finite (n, d) array, got shape {v.shape}"
            )
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        return v / np.where(norms > 0, norms, 1.0)

    def similarities(self, sample: Any) -> np.ndarray:
        """Cosine similarity of ``sample`` to every pool sample (the ``similar`` measure)."""
        if self._pool_vectors is None:
            self._pool_vectors = self._vectors(self.pool)
        own = next((i for i, s in enumerate(self.pool) if s is sample), None)
        q = self._pool_vectors[own] if own is not None else self._vectors([sample])[0]
        return self._pool_vectors @ q

    def for_sample(self, sample: Any, exclude_id: str | None = None) -> list[Any]:
        """The demonstrations of ``sample``: ``k`` pool samples other than ``sample`` itself and than any
        sample whose id is ``exclude_id``; random order for ``random``, nearest first for ``similar``."""
        if not self.k:
            return []
        eligible = [
            i
            for i, s in enumerate(self.pool)
            if s is not sample and (exclude_id is None or str(s.id) != str(exclude_id))
        ]
        if len(eligible) < self.k:
            raise MintError(
                f"task {self.task.name!r}: sample {sample.id!r} has only {len(eligible)} other train "
                f"samples to draw {self.k} demonstrations from"
            )
        if self.method == "random":
            picks = _rng(self.seed, self.task.name, str(sample.id)).choice(
                len(eligible), self.k, replace=False
            )
            return [self.pool[eligible[int(j)]] for j in picks]
        sims = self.similarities(sample)[eligible]
        order = sorted(range(len(eligible)), key=lambda j: (-round(float(sims[j]), 12), j))
        return [self.pool[eligible[j]] for j in order[: self.k]]


def task_demos(task: Any, k: int, method: str = "random", seed: int = 0) -> DemoSelector | tuple:
    """The ``demos`` argument of ``vlm.predict`` for ``task``: ``()`` without demonstrations, else a
    :class:`DemoSelector` over the task's train split."""
    return DemoSelector(task, k, method, seed) if k else ()


def check_multi_image(vlm: Any, tasks: Sequence[Any], k: int) -> None:
    """With ``k`` > 0, check that ``vlm`` takes several images in one prompt (a sample shown as its own
    demonstration must give twice the image tokens of the sample alone); a :class:`MintError` otherwise."""
    if not k:
        return
    task, sample = next(((t, s) for t in tasks for s in [*t.train, *t.test] if has_image(s)), (None, None))
    if task is None:
        return  # no images anywhere: demonstrations add text only
    name = getattr(vlm, "name", "") or getattr(vlm, "model_type", "the model")
    try:
        one = vlm.collate(*[[x] for x in vlm.build_prompt(task, sample, "both")])
        two = vlm.collate(*[[x] for x in vlm.build_prompt(task, sample, "both", [sample])])
    except Exception as e:  # the processor refuses several images
        raise MintError(
            f"--in-context {k}: {name} cannot take several images in one prompt "
            f"({type(e).__name__}: {first_line(e, '')})"
        ) from None
    tid = getattr(vlm, "image_token_id", None)
    if tid is not None:
        n1, n2 = int((one["input_ids"] == tid).sum()), int((two["input_ids"] == tid).sum())
        if n1 == 0 or n2 != 2 * n1:
            raise MintError(
                f"--in-context {k}: {name} cannot take several images in one prompt (a prompt with "
                f"2 images got {n2} image tokens, one image {n1})"
            )
