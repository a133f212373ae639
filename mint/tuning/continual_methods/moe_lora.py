"""``--continual moe-lora``: MoELoRA, several LoRA experts per target module mixed by a learned router (the CoIN
benchmark's MoELoRA baseline: Chen et al. 2024, "CoIN: A Benchmark of Continual Instruction Tuning for Multimodal
Large Language Models", NeurIPS Datasets and Benchmarks; MCITlib's MoELoRA).

Each target linear layer gets ``experts`` LoRA experts of rank ``rank / experts`` and a router ``W_g`` (no
bias); for an input ``x`` the update is ``sum_i softmax(W_g x)_i * B_i A_i x * alpha / rank`` (token-wise soft
routing, as CoIN's MoELoRA; the router reads the LoRA's input after LoRA dropout, so that mixed-adapter
batches, which send a subset of the rows through the adapter, route each row). The MoELoRA is carried over from stage to stage (one shared adapter, like
``sequential``), experts and router both trained in every stage.

Stored as ONE plain peft LoRA adapter of rank ``rank + experts``: rows ``0 .. rank-1`` of ``A`` are the experts'
down-projections (expert ``i``: rows ``i*rank/experts ..``), the last ``experts`` rows of ``A`` are the router
``W_g`` and the matching columns of ``B`` stay zero; ``lora_alpha`` is scaled so the LoRA scale is ``alpha /
rank``. So checkpoints, resume, DDP and saving (safetensors + JSON) are peft's; ``adapters/moe-lora/moe.json``
(``{"experts", "rank"}``) tells :func:`attach_router` (called by :func:`mint.tuning.routing.load_adapters`) to
put the routing back in place when the adapter is loaded, e.g. by ``mint evaluate``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from mint.errors import MintError
from mint.io import read_json
from mint.tuning.continual_methods.base import Finished, Method
from mint.tuning.continual_methods.stacked import lora_layers

MOE_FILE = "moe.json"


def route(x: torch.Tensor, h: torch.Tensor, gate: torch.Tensor, rank: int, experts: int) -> torch.Tensor:
    """The gated LoRA hidden state: ``h`` (``[..., rank + experts]``, the adapter's ``A x``) with expert ``i``'s
    block scaled by ``softmax(gate x)_i`` and the router's own columns zeroed."""
    weights = torch.softmax(torch.nn.functional.linear(x.to(gate.dtype), gate), dim=-1).to(h.dtype)
    scaled = h[..., :rank] * weights.repeat_interleave(rank // experts, dim=-1)
    return torch.cat([scaled, torch.zeros_like(h[..., rank:])], dim=-1)


def router_weights(layer: Any, adapter: str, x: torch.Tensor, rank: int) -> torch.Tensor:
    """The router's expert weights for ``x`` in ``layer`` (rows sum to one)."""
    return torch.softmax(torch.nn.functional.linear(x, layer.lora_A[adapter].weight[rank:]), dim=-1)


def attach_router(peft_model: Any, adapter: str, rank: int, experts: int) -> int:
    """Route adapter ``adapter`` of every LoRA layer of ``peft_model`` through its experts (idempotent);
    returns the number of layers routed."""
    count = 0
    for _, layer in lora_layers(peft_model):
        if adapter not in layer.lora_A:
            continue
        handles = getattr(layer, "_mint_moe_handles", {})
        for h in handles.pop(adapter, ()):
            h.remove()

        def gated(module: Any, args: tuple, out: torch.Tensor) -> torch.Tensor:
            # the router reads the LoRA's own input: the rows peft sends through this adapter (mixed batches
            # send a subset), after LoRA dropout
            return route(args[0], out, module.weight[rank:], rank, experts)

        handles[adapter] = (layer.lora_A[adapter].register_forward_hook(gated),)
        layer._mint_moe_handles = handles
        count += 1
    return count


def attach_saved_router(peft_model: Any, adapter: str, folder: str | Path) -> None:
    """Put the routing back for a loaded adapter whose folder holds ``moe.json`` (no-op otherwise)."""
    path = Path(folder) / MOE_FILE
    if not path.is_file():
        return
    info = read_json(path, MOE_FILE)
    rank, experts = info.get("rank"), info.get("experts")
    if not (isinstance(rank, int) and isinstance(experts, int) and experts >= 1 and rank % experts == 0):
        raise MintError(f"{path}: expected integer rank and experts, experts dividing rank")
    if peft_model.peft_config[adapter].r != rank + experts:
        raise MintError(f"{path}: the adapter's rank is not rank + experts ({rank} + {experts})")
    attach_router(peft_model, adapter, rank, experts)


class MoELoRA(Method):
    name = "moe-lora"
    shared = "moe-lora"

    def adapter_config(self, config: Any) -> Any:
        experts = int(self.params["experts"])
        if config.rank % experts:
            raise MintError(
                f"continual moe-lora: rank {config.rank} must be a multiple of experts {experts} "
                "(each expert has rank rank / experts)"
            )
        r = config.rank + experts
        return dataclasses.replace(config, rank=r, alpha=config.alpha * r / config.rank)

    def setup(self, peft_model: Any, config: Any) -> None:
        attach_router(peft_model, self.shared, config.rank, int(self.params["experts"]))

    def on_finish(self, run: Finished) -> dict[str, dict[str, Any]]:
        experts = int(self.params["experts"])
        rank = run.peft_model.peft_config[self.shared].r - experts
        run.write_on_main(run.adapters_dir / self.shared / MOE_FILE, {"experts": experts, "rank": rank})
        return {}
