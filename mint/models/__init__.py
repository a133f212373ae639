"""Backbone wrappers: any Hugging Face image-text-to-text model, and the embedded ``tiny`` default.

``load_model(spec)`` loads ``"tiny"``, ``"tiny-video"`` or ``"tiny-audio"`` (package data, built by
``tools/build_tiny.py``, ``tools/build_tiny_video.py`` and ``tools/build_tiny_audio.py``), a local folder, or a Hugging Face model id (cached, else downloaded once unless
offline), and returns a :class:`VisionLanguageModel`.
"""

from __future__ import annotations

from mint.models.base import VisionLanguageModel
from mint.models.loading import DTYPES, TINY_DIR, load_model, resolve_model
from mint.models.prompts import MODES, Ablation

__all__ = ["MODES", "Ablation", "DTYPES", "TINY_DIR", "VisionLanguageModel", "load_model", "resolve_model"]
