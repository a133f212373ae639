"""δ as the cosine of sentence embeddings (docs/design.md, the measures): ``--similarity embedding:MODEL``.

``MODEL`` is a local folder or a Hugging Face id already in the local cache of a text encoder that
``AutoModel`` / ``AutoTokenizer`` load (e.g. ``sentence-transformers/all-MiniLM-L6-v2``); nothing is
downloaded. An answer's embedding is the mean of the encoder's last hidden states over its tokens
(the sentence-transformers convention), L2-normalised; δ(a, b) is their cosine, clipped to [0, 1] (an
opposite meaning agrees no less than none). Embeddings are cached per answer string, and
:meth:`EmbeddingSimilarity.prepare` embeds a whole list of answers in batches before the pairs are
scored.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from mint.errors import MintError, first_line
from mint.io import check_safetensors
from mint.models.devices import resolve_device
from mint.models.loading import resolve_model

PREFIX = "embedding"


class EmbeddingSimilarity:
    """A δ function backed by a text encoder; answers are embedded once each."""

    def __init__(self, spec: str, *, batch_size: int = 64, device: str = "auto") -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        source = resolve_model(spec)
        check_safetensors(source, "encoder weights")
        dev = resolve_device(device)  # the one device rule (mint/models/devices.py)
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
            self.model = AutoModel.from_pretrained(source, local_files_only=True).to(dev).eval()
        except (OSError, ValueError) as e:
            raise MintError(
                f"similarity {PREFIX}:{spec}: the encoder cannot be loaded offline: {first_line(e)}"
            ) from None
        self.__name__ = f"{PREFIX}:{spec}"
        self.batch_size = batch_size
        self.device = dev
        self._cache: dict[str, Any] = {}

    def prepare(self, answers: Iterable[str]) -> None:
        """Embed every answer not embedded yet, in batches."""
        import torch

        todo = sorted({str(a) for a in answers} - set(self._cache))
        with torch.inference_mode():
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                enc = self.tokenizer(chunk, padding=True, truncation=True, return_tensors="pt").to(
                    self.device
                )
                hidden = self.model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                pooled = torch.nn.functional.normalize(pooled, dim=-1).cpu()
                self._cache.update(zip(chunk, pooled))

    def __call__(self, a: str, b: str) -> float:
        a, b = str(a), str(b)
        if a == b:
            return 1.0
        self.prepare((a, b))
        return float(min(1.0, max(0.0, float(self._cache[a] @ self._cache[b]))))


@lru_cache(maxsize=4)
def embedding_similarity(spec: str) -> EmbeddingSimilarity:
    """The :class:`EmbeddingSimilarity` of ``spec``, loaded once per process."""
    if not spec:
        raise MintError(
            f"similarity {PREFIX}: expected {PREFIX}:MODEL (a local folder or a cached Hugging Face id)"
        )
    return EmbeddingSimilarity(spec)
