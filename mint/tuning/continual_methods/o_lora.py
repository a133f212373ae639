"""``--continual o-lora``: orthogonal subspace learning (O-LoRA; Wang et al. 2023, "Orthogonal Subspace Learning
for Language Model Continual Learning", Findings of EMNLP 2023).

Each stage trains a new LoRA on top of the frozen earlier ones (:mod:`.stacked`), with the loss

    answer cross-entropy + lambda_orth * sum_l sum_(earlier e) sum |A_e,l A_new,l^T| + lambda_l2 * sum ||W||_2

(``A`` the ``r x d_in`` down-projections of layer ``l``; the L2 term over the new LoRA's ``A`` and ``B``
matrices), so the new update lives in a subspace orthogonal to the earlier stages' input subspaces. All stages'
LoRAs are summed at inference. Defaults follow the paper's code: ``lambda_orth`` 0.5, ``lambda_l2`` 0.
"""

from __future__ import annotations

from typing import Any

import torch

from mint.tuning.continual_methods.stacked import Stacked, lora_layers


def orthogonality_penalty(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """``sum |A_old A_new^T|`` over ``(A_old, A_new)`` pairs (zero exactly when the row spaces are orthogonal)."""
    return sum(((old @ new.T).abs().sum() for old, new in pairs), torch.zeros(()))


def l2_penalty(weights: list[torch.Tensor]) -> torch.Tensor:
    """``sum ||W||_2`` (Frobenius norms) over ``weights``."""
    return sum((torch.linalg.vector_norm(w) for w in weights), torch.zeros(()))


class OLoRA(Stacked):
    name = "o-lora"

    def penalty(self, peft_model: Any, earlier: list[str], adapter: str) -> Any:
        lam_orth, lam_l2 = float(self.params["lambda_orth"]), float(self.params["lambda_l2"])
        layers = [m for _, m in lora_layers(peft_model) if adapter in m.lora_A]
        pairs = [
            (m.lora_A[e].weight, m.lora_A[adapter].weight) for m in layers for e in earlier if e in m.lora_A
        ]
        new = [p.weight for m in layers for p in (m.lora_A[adapter], m.lora_B[adapter])]
        if not (lam_orth and pairs) and not lam_l2:
            return None

        def penalty() -> torch.Tensor:
            total = lam_orth * orthogonality_penalty(pairs) if lam_orth and pairs else 0.0
            return total + (lam_l2 * l2_penalty(new) if lam_l2 else 0.0)

        return penalty
