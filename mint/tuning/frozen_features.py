"""Vision-tower outputs computed once per example while nothing trained reaches the vision path.

With language-only adapters the vision tower and the projector are frozen, so the image features a training
step computes are the same every epoch and for every group of a run. :class:`FrozenFeatures` wraps a batch
collation (:class:`~mint.tuning.data.CollateCache`): the first time an example is seen its images' projected
features are computed (the model's own ``get_image_features``) and kept; every batch it is in then gets
``inputs_embeds`` instead of ``input_ids`` + ``pixel_values``: the token embeddings with the image
placeholders replaced by the kept features, the same operations (``get_input_embeddings``,
``get_placeholder_mask``, ``masked_scatter``) the model runs on ``pixel_values``. The loss and the gradients are
those of the recomputed path (``tests/tuning/test_frozen_features.py``); features computed in an earlier batch of
other examples may differ from a recomputation in the last bits, as any change of batch composition does.

The normal path is taken (each batch as collated) wherever that equality is not established or does not hold:

* architectures where replacing ``pixel_values`` by ``inputs_embeds`` is not verified (:data:`VISION_PATHS`:
  the LLaVA family's ``llava``, which includes the shipped ``tiny``; Qwen2-VL's rope positions need the image
  grid, LLaVA-NeXT packs features by image size, ...), and batches with other image inputs (``image_sizes``);
* a vision tower or projector with a weight that requires a gradient, or a LoRA layer there that acts (an
  active, merged or per-row-routed adapter: ``--tower vision|both``, or ``auto`` while such a group trains);
* dropout in the vision path in training mode (the features are then random); token embeddings that are trained;
* mixed precision (autocast would compute the features in another dtype than this collation does).

The kept features are held on the model's device, at most :data:`FEATURE_CACHE_BYTES` a run (for a 7B LLaVA in
bf16, 576 x 4096 x 2 bytes = 4.7 MB an image, about 220 images); examples beyond it are computed every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: the most bytes of image features a :class:`FrozenFeatures` keeps (beyond, features are recomputed)
FEATURE_CACHE_BYTES = 1 << 30

#: ``model_type`` -> the modules (dotted names in the transformers model) between ``pixel_values`` and the image
#: features, for the architectures where feeding ``inputs_embeds`` is verified to give the recomputed results
VISION_PATHS: dict[str, tuple[str, ...]] = {"llava": ("model.vision_tower", "model.multi_modal_projector")}

#: the batch keys this path takes over; a batch with any other key is left as collated
_KEYS = frozenset({"input_ids", "attention_mask", "labels", "pixel_values"})


class FrozenFeatures:
    """A batch collation (``collate``: examples -> batch) whose image inputs are replaced by kept image features
    while the vision path is frozen (module docstring). ``mixed_precision``: the run's (``"no"`` unless set)."""

    def __init__(
        self, vlm: Any, collate: Callable[[list[Any]], dict[str, Any]], limit: int | None = None
    ) -> None:
        self.vlm, self.collate = vlm, collate
        self.limit = FEATURE_CACHE_BYTES if limit is None else limit
        self.mixed_precision = "no"
        self.bytes = 0
        self.used = 0  # batches fed from kept features (with the features of new examples computed first)
        self._features: dict[int, tuple[Any, tuple[torch.Tensor, ...]]] = {}  # id -> (example, its images')

    # ------------------------------------------------------------------ when
    def _model(self) -> Any:
        """The transformers model under any peft wrapper."""
        model = self.vlm.model
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def why_not(self) -> str | None:
        """Why batches are left as collated now (None: the vision path is frozen and its features are kept)."""
        if self.vlm.model_type not in VISION_PATHS:
            return f"{self.vlm.model_type}: feeding image features is not verified for this architecture"
        if self.mixed_precision not in ("no", None):
            return f"mixed precision {self.mixed_precision}"
        model = self._model()
        if model.get_input_embeddings().weight.requires_grad:
            return "the token embeddings are trained"
        for root in VISION_PATHS[self.vlm.model_type]:
            path = model.get_submodule(root)
            if any(p.requires_grad for p in path.parameters()):
                self._features.clear()  # what was kept may not stay what the path computes
                self.bytes = 0
                return f"{root} is trained"
            for name, module in path.named_modules():
                if _adapter_acts(module):
                    return f"an adapter acts in {root}.{name}"
                if module.training and _dropout(module):
                    return f"dropout in {root}.{name}"
        return None

    # ------------------------------------------------------------------ what
    def _held(self, example: Any) -> tuple[torch.Tensor, ...] | None:
        held = self._features.get(id(example))
        return held[1] if held is not None and held[0] is example else None

    @torch.no_grad()
    def _compute(self, examples: list[Any], pixel_values: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """Each example's image features from the batch's ``pixel_values``, kept up to the limit."""
        out = self._model().model.get_image_features(pixel_values=pixel_values, return_dict=True)
        images = list(out.pooler_output)
        per_example, at = [], 0
        for ex in examples:
            mine = tuple(images[at : at + ex.n_images])
            at += ex.n_images
            per_example.append(mine)
            size = sum(f.numel() * f.element_size() for f in mine)
            if self._held(ex) is None and self.bytes + size <= self.limit:
                self._features[id(ex)] = (ex, tuple(f.clone() for f in mine))
                self.bytes += size
        return per_example

    def __call__(self, examples: list[Any]) -> dict[str, Any]:
        batch = self.collate(examples)
        if "pixel_values" not in batch or batch.keys() - _KEYS or self.why_not() is not None:
            return batch
        held = [self._held(ex) for ex in examples]
        if any(h is None for h in held):
            held = self._compute(examples, batch["pixel_values"])
        self.used += 1
        out = {k: v for k, v in batch.items() if k not in ("input_ids", "pixel_values")}
        out["inputs_embeds"] = self._embed(batch["input_ids"], [f for h in held for f in h])
        return out

    @torch.no_grad()
    def _embed(self, input_ids: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """The language model's input: token embeddings with the image placeholders replaced by ``features``,
        as the model's forward builds it from ``pixel_values``."""
        core = self._model().model
        embeds = core.get_input_embeddings()(input_ids)
        image_features = torch.cat(features, dim=0).to(embeds.device, embeds.dtype)
        mask = core.get_placeholder_mask(input_ids, inputs_embeds=embeds, image_features=image_features)
        return embeds.masked_scatter(mask, image_features)


def _adapter_acts(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a peft tuner layer whose adapters change its output now: merged, routed per row
    (:class:`~mint.tuning.mixed_lora.MixedLoRA` puts its own forward on the layer) or active and enabled."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if not isinstance(module, BaseTunerLayer):
        return False
    present = module._get_available_adapters()
    if not present:
        return False
    if module.merged or "forward" in vars(module):
        return True
    return not module.disable_adapters and any(a in present for a in module.active_adapters)


def _dropout(module: torch.nn.Module) -> bool:
    """Whether ``module`` drops out in training mode: a dropout layer, or a rate attribute (attention dropout,
    drop path) above 0."""
    if isinstance(module, torch.nn.modules.dropout._DropoutNd):
        return module.p > 0
    return any(
        "drop" in name and isinstance(value, float) and value > 0 for name, value in vars(module).items()
    )
