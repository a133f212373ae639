"""Pooled per-modality features, the inputs of the PID estimate (X_image, X_text).

* ``image``: the projected image (or video frame) tokens, i.e. the language model's input embeddings at the image-token
  positions of the image-only prompt (``hidden_states[0]`` there), mean-pooled. This is what the vision
  tower and projector make of the image, before any text can mix in.
* ``text``: the last-layer hidden states of the text-only pass (no image, or a blank one), mean-pooled
  over its text tokens (image tokens excluded). It reads the instruction and the sample text.

Both are float32 arrays of shape ``(n, hidden_size)``. A sample without an image gets a zero image vector.

Each pass keeps the one hidden state it uses (not every layer's, as ``output_hidden_states`` would): the
input of the language model's first decoder layer, where the image-only pass then stops, or the language
model's output (its last hidden state, after the final norm).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from mint.models.batching import prompt_batches


def _pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class _Captured(Exception):
    """Ends a forward pass once the hidden state it was run for is captured."""


def _language_model(vlm: Any) -> torch.nn.Module:
    model = vlm.model.get_base_model() if hasattr(vlm.model, "get_base_model") else vlm.model
    return model.get_submodule(vlm.arch.language_root)


@contextlib.contextmanager
def capture_hidden(vlm: Any, layer: int) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, a forward pass of ``vlm.model`` stores ``hidden_states[layer]`` (0: the first
    decoder layer's input, then the pass stops with :class:`_Captured`; -1: the language model's output) in
    the yielded dict under ``"hidden"``."""
    lm = _language_model(vlm)
    got: dict[str, torch.Tensor] = {}
    if layer == 0:

        def first_input(_module: Any, args: tuple, kwargs: dict) -> None:
            got["hidden"] = args[0] if args else kwargs["hidden_states"]
            raise _Captured

        handle = lm.layers[0].register_forward_pre_hook(first_input, with_kwargs=True)
    elif layer == -1:

        def output(_module: Any, _args: tuple, out: Any) -> None:
            got["hidden"] = out[0] if isinstance(out, tuple) else out.last_hidden_state

        handle = lm.register_forward_hook(output)
    else:
        raise ValueError(f"capture_hidden: layer 0 or -1, got {layer}")
    try:
        yield got
    finally:
        handle.remove()


def _hidden(vlm: Any, batch: dict[str, torch.Tensor], layer: int) -> torch.Tensor:
    with capture_hidden(vlm, layer) as got, contextlib.suppress(_Captured):
        vlm.model(**batch, logits_to_keep=1)
    return got["hidden"]


def pooled_features(
    vlm: Any, task: Any, samples: Sequence[Any], *, batch_size: int = 8, progress: bool = False
) -> dict[str, np.ndarray]:
    """``{"image": (n, d), "text": (n, d)}`` for ``samples`` (see the module docstring)."""
    from tqdm.auto import tqdm

    feats: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        for modality, layer in (("image", 0), ("text", -1)):
            prompts = [vlm.build_prompt(task, s, modality) for s in samples]
            rows: list[np.ndarray | None] = [None] * len(samples)
            with tqdm(
                total=len(prompts),
                desc=f"{task.name} [features:{modality}]",
                unit="sample",
                disable=not progress,
                leave=False,
            ) as bar:
                for idx in prompt_batches(prompts, batch_size):
                    batch = vlm.collate([prompts[i][0] for i in idx], [prompts[i][1] for i in idx])
                    hidden = _hidden(vlm, batch, layer).float()
                    visual = [
                        t for t in (vlm.image_token_id, getattr(vlm, "video_token_id", None)) if t is not None
                    ]
                    is_image = torch.isin(
                        batch["input_ids"], torch.tensor(visual, device=batch["input_ids"].device)
                    )
                    mask = is_image if modality == "image" else batch["attention_mask"].bool() & ~is_image
                    pooled = _pool(hidden, mask).cpu().numpy()
                    for j, i in enumerate(idx):
                        rows[i] = pooled[j]
                    bar.update(len(idx))
            feats[modality] = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
    return feats
