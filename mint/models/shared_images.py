"""Process each image once when several prompts show it (the both and image-only modes of a sample).

While :func:`sharing_images` is active on a :class:`~mint.models.base.VisionLanguageModel`, the processor's
image processor is wrapped so that an image object it has already processed (by identity: the memo keeps
the image alive, so an id is never reused while it is in the memo) gets its stored tensors back instead of
being resized and normalised again. Only architectures whose processed tensors have one entry per image
along their first axis take part (``pixel_layout == "per_image"`` and no custom encoder: LLaVA, PaliGemma);
for any other output the wrapper steps aside and calls the image processor as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


class ProcessedImageMemo:
    """Per-image processed tensors, keyed by image identity and the processor call's options."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor
        self._store: dict[tuple[int, str], tuple[Any, dict[str, torch.Tensor]]] = {}
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:  # everything else is the wrapped image processor's
        return getattr(self.image_processor, name)

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> Any:
        flat = _flat_images(images)
        if flat is None or args:
            return self.image_processor(images, *args, **kwargs)
        options = repr(sorted(kwargs.items()))
        missing, seen = [], set()
        for im in flat:
            key = (id(im), options)
            if key not in self._store and key not in seen:
                missing.append(im)
                seen.add(key)
        if missing:
            out = self.image_processor(missing, **kwargs)
            if not _per_image(out, len(missing)):
                return self.image_processor(images, **kwargs)
            for i, im in enumerate(missing):
                self._store[(id(im), options)] = (im, {k: v[i : i + 1] for k, v in out.items()})
        self.hits += len(flat) - len(missing)
        self.misses += len(missing)
        parts = [self._store[(id(im), options)][1] for im in flat]
        from transformers.feature_extraction_utils import BatchFeature

        return BatchFeature({k: torch.cat([p[k] for p in parts]) for k in parts[0]})


def _flat_images(images: Any) -> list | None:
    """A flat list of PIL images (one level of nesting undone), or None for anything else."""
    from PIL import Image

    if isinstance(images, Image.Image):
        return [images]
    if not isinstance(images, (list, tuple)) or not images:
        return None
    flat = [im for x in images for im in (x if isinstance(x, (list, tuple)) else [x])]
    return flat if flat and all(isinstance(im, Image.Image) for im in flat) else None


def _per_image(out: Any, n: int) -> bool:
    """Whether every value of a processor output is a tensor with one entry per image."""
    try:
        items = list(out.items())
    except AttributeError:
        return False
    return bool(items) and all(
        isinstance(v, torch.Tensor) and v.ndim > 0 and v.shape[0] == n for _, v in items
    )


@contextmanager
def sharing_images(vlm: Any) -> Iterator[ProcessedImageMemo | None]:
    """Within the block, ``vlm``'s processor processes every image object once; yields the memo (None
    where the architecture does not take part). The memo, and the images it holds, go at the end."""
    processor = getattr(vlm, "processor", None)
    arch = vlm.arch
    if (
        processor is None
        or arch.encoder is not None
        or arch.pixel_layout != "per_image"
        or getattr(processor, "image_processor", None) is None
        or isinstance(processor.image_processor, ProcessedImageMemo)
    ):
        yield None
        return
    original = processor.image_processor
    memo = ProcessedImageMemo(original)
    processor.image_processor = memo
    try:
        yield memo
    finally:
        processor.image_processor = original
