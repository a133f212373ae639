"""``--continual reglora``: RegLoRA, the regularisation half of SEFE (Chen et al. 2025, "SEFE: Superficial and
Essential Forgetting Eliminator for Multimodal Continual Instruction Tuning", ICML 2025; MCITlib v3 lists it as
RegLoRA).

After a stage, the *key elements* of its LoRA update ``delta W = B A`` are the ``top`` fraction (default 2%) of the
elements of largest magnitude, per layer; they accumulate over stages (a union). Each later stage trains a new
LoRA on top of the frozen earlier ones (:mod:`.stacked`, SEFE merges them into the backbone) with the loss

    answer cross-entropy + weight * mean_l mean_(key elements of l) |(B_new A_new)_ij|

(``weight`` 2500 as in SEFE's code), which keeps the new update off the positions the earlier stages rely on.
All stages' LoRAs are summed at inference. The key elements are recomputed from the saved adapters on resume.
"""

from __future__ import annotations

from typing import Any

import torch

from mint.tuning.continual_methods.stacked import Stacked, lora_layers


def key_elements(delta: torch.Tensor, top: float) -> torch.Tensor:
    """Flat indices of the ``top`` fraction (at least one) of ``delta``'s elements of largest magnitude."""
    k = max(1, int(top * delta.numel()))
    return torch.topk(delta.detach().abs().flatten(), k).indices


def key_penalty(terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Mean over layers of the mean ``|(B A)_ij|`` on each layer's key elements (``(A, B, flat indices)``)."""
    if not terms:
        return torch.zeros(())
    return torch.stack([(b @ a).flatten()[idx].abs().mean() for a, b, idx in terms]).mean()


class RegLoRA(Stacked):
    name = "reglora"

    def penalty(self, peft_model: Any, earlier: list[str], adapter: str) -> Any:
        weight, top = float(self.params["weight"]), float(self.params["top"])
        if not earlier or not weight:
            return None
        terms = []
        for _, m in lora_layers(peft_model):
            if adapter not in m.lora_A:
                continue
            found = [
                key_elements(m.lora_B[e].weight @ m.lora_A[e].weight, top) for e in earlier if e in m.lora_A
            ]
            if found:
                terms.append(
                    (m.lora_A[adapter].weight, m.lora_B[adapter].weight, torch.unique(torch.cat(found)))
                )
        if not terms:
            return None
        return lambda: weight * key_penalty(terms)
