"""The LoRA rules that tuning and the affinity baselines (:mod:`mint.clustering.affinity`) share.

* where LoRA goes: :func:`lora_targets` (the tower patterns of :mod:`mint.tuning.targets`);
* how an adapter is made and attached: :func:`lora_config` and :func:`add_lora` (initial weights seeded by
  the adapter's own seed alone);
* what is trained: :func:`trainable`, the parameters that require a gradient;
* LoRA dropout: :class:`MaskDropout`, put in place of peft's ``torch.nn.Dropout`` by :func:`use_mask_dropout`
  (the same distribution of masks, drawn four elements per 64-bit random number);
* the loss: the summed cross-entropy on the answer tokens (labels other than :data:`~mint.models.batching.IGNORE_INDEX`), for a
  whole batch (:func:`answer_loss`) or per segment of rows (:func:`segment_losses`, the concurrent trainer's
  mixed batches). Only the logits from the first answer position on are computed (``logits_to_keep``),
  which keeps memory small for large vocabularies.

The batching rule (samples with different numbers of images never share a batch) is the model layer's,
:mod:`mint.models.batching`; seeded streams come from :mod:`mint.seeds`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from mint.models.batching import IGNORE_INDEX
from mint.tuning.targets import lora_targets

#: rows ``start:stop`` of a batch that go through one adapter: (adapter, start, stop)
Segment = tuple[str, int, int]

__all__ = [
    "IGNORE_INDEX",
    "Segment",
    "MaskDropout",
    "add_lora",
    "answer_loss",
    "answer_tokens",
    "lora_config",
    "lora_targets",
    "segment_losses",
    "trainable",
    "use_mask_dropout",
]


def lora_config(rank: int, alpha: float, dropout: float, targets: Any) -> Any:
    """A plain peft ``LoraConfig`` (no bias) on the ``target_modules`` ``targets``."""
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")


def add_lora(model: Any, name: str, config: Any, seed: int) -> Any:
    """Add adapter ``name`` with ``config`` to ``model`` (a bare model becomes a ``PeftModel``; a
    ``PeftModel`` gets one more adapter) and return the ``PeftModel``. The adapter's initial weights are
    drawn after ``torch.manual_seed(seed)``, so they depend on ``seed`` alone, not on other adapters."""
    from peft import PeftModel, get_peft_model

    with warnings.catch_warnings():  # transformers' deprecation of is_gradient_checkpointing, hit by peft
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        torch.manual_seed(seed)
        if isinstance(model, PeftModel):
            model.add_adapter(name, config)
            return model
        return get_peft_model(model, config, adapter_name=name)


class MaskDropout(torch.nn.Module):
    """Dropout whose masks cost a quarter of the random numbers: each 64-bit draw of the torch generator
    (uniform on its low 63 bits) gives four 15-bit uniform integers, and an element is kept when its integer
    is at least ``round(p * 2**15)``. Elements are kept independently with probability ``1 - q`` (``q``:
    ``p`` rounded to a multiple of ``2**-15``, so within ``2**-16`` of it) and scaled by ``1 / (1 - q)``, the
    distribution of ``torch.nn.Dropout(p)``'s masks; peft's LoRA dropout draws one random number per element
    of every LoRA layer's input, which made it a large share of a training step. Identity in eval mode."""

    BITS = 15

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.threshold = round(self.p * 2**self.BITS)
        self.scale = 1.0 / (1.0 - self.threshold / 2**self.BITS)

    def mask(self, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """A keep mask of ``shape`` (int16, 1 = kept) from the default generator of ``device``."""
        n = math.prod(shape)
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()
        return bits.view(torch.int16)[:n].view(shape).bitwise_and_(2**self.BITS - 1).ge_(self.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        return x * self.mask(x.shape, x.device) * self.scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_mask_dropout(model: torch.nn.Module) -> int:
    """Replace the ``torch.nn.Dropout`` of every peft LoRA layer of ``model`` by a :class:`MaskDropout` of the
    same ``p`` (dropout 0 stays peft's identity); returns how many were replaced."""
    from peft.tuners.lora.layer import LoraLayer

    replaced = 0
    for module in model.modules():
        if isinstance(module, LoraLayer):
            for name, drop in module.lora_dropout.items():
                if type(drop) is torch.nn.Dropout and drop.p > 0:
                    module.lora_dropout[name] = MaskDropout(drop.p).train(drop.training)
                    replaced += 1
    return replaced


def trainable(model: Any) -> list[torch.nn.Parameter]:
    """The parameters of ``model`` that require a gradient (the active adapters' LoRA weights)."""
    return [p for p in model.parameters() if p.requires_grad]


def answer_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Each row's number of answer tokens (the labels a loss is taken on)."""
    return (labels[:, 1:] != IGNORE_INDEX).sum(-1)


def _answer_logits(model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(float logits, targets) from the first answer position of the batch on, and the answer-token mask."""
    batch = dict(batch)
    target = batch.pop("labels")[:, 1:]
    valid = target != IGNORE_INDEX
    first = (
        int(valid.float().argmax(-1)[valid.any(-1)].min().item())
        if bool(valid.any())
        else target.shape[1] - 1
    )
    keep = target.shape[1] - first + 1  # positions first .. T-1 of the input predict targets first .. T-2
    logits = model(**batch, logits_to_keep=keep).logits[:, -keep:-1].float()  # Qwen2-Audio returns them all
    return logits, target[:, first:], valid


def answer_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the answer tokens of ``batch`` and their number."""
    logits, tgt, valid = _answer_logits(model, batch)
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    return loss, int(valid.sum().item())


def segment_losses(
    model: Any, batch: dict[str, torch.Tensor], segments: Sequence[Segment]
) -> tuple[list[torch.Tensor], list[int]]:
    """Summed answer-token cross-entropy of each segment's rows of ``batch``, and each segment's answer-token
    count (as :func:`answer_loss` computes them for a whole batch)."""
    logits, tgt, valid = _answer_logits(model, batch)
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none"
    ).view(tgt.shape)
    per_row = per_token.sum(-1)
    counts = valid.sum(-1)
    return (
        [per_row[s:e].sum() for _, s, e in segments],
        [int(counts[s:e].sum().item()) for _, s, e in segments],
    )
