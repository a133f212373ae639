"""Data-parallel training of one adapter at a time without a DDP wrapper per adapter.

The sequential and continual runs train one adapter after another on one resident backbone. A DDP wrapper
registers the parameters that require a gradient when it is built, so each adapter would need its own
wrapper, and each wrapper's construction broadcasts the whole model from rank 0. Instead the model is
prepared once per run (device placement and mixed precision, :func:`prepare_once`), and the processes agree
on the one trained adapter directly: its weights are broadcast from rank 0 when its training starts
(:func:`broadcast_from_first`) and its gradients are averaged once per optimizer step, in one flat buffer per
dtype (:func:`average_gradients`), which is what DDP computes for the same parameters. Only the adapter's
weights travel, never the frozen backbone.

FSDP and DeepSpeed shard the model and the optimizer themselves; under them accelerate prepares model and
optimizer together for every adapter (:func:`sharded`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["average_gradients", "broadcast_from_first", "prepare_once", "sharded"]


def sharded(accelerator: Any) -> bool:
    """Whether ``accelerator`` shards the model (FSDP, DeepSpeed): accelerate must prepare it per adapter."""
    from accelerate.utils import DistributedType

    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


def prepare_once(accelerator: Any, model: Any) -> Any:
    """``model`` placed on the accelerator's device with its mixed precision applied, once per accelerator
    (later calls return it unchanged); never wrapped in DDP, whatever the number of processes."""
    if getattr(model, "_mint_prepared_for", None) is not accelerator:
        model = accelerator.prepare_model(model, evaluation_mode=True)  # evaluation_mode: no DDP wrapper
        model._mint_prepared_for = accelerator
    return model


def _by_dtype(tensors: list[torch.Tensor]) -> dict[Any, list[int]]:
    """The indices of ``tensors`` grouped by (dtype, device), so each group travels as one flat buffer."""
    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault((t.dtype, t.device), []).append(i)
    return groups


def _all_reduce_flat(tensors: list[torch.Tensor], op: Any) -> list[torch.Tensor]:
    """``tensors`` reduced across the processes, one collective per dtype and device."""
    out: list[torch.Tensor] = list(tensors)
    for idx in _by_dtype(tensors).values():
        flat = torch.cat([tensors[i].reshape(-1) for i in idx])
        dist.all_reduce(flat, op=op)
        for i, part in zip(idx, flat.split([tensors[i].numel() for i in idx])):
            out[i] = part.view_as(tensors[i])
    return out


def broadcast_from_first(params: list[torch.nn.Parameter]) -> None:
    """Give every process rank 0's values of ``params`` (in place), one collective per dtype and device."""
    if not params or not dist.is_available() or not dist.is_initialized():
        return
    with torch.no_grad():
        for idx in _by_dtype([p.data for p in params]).values():
            flat = torch.cat([params[i].data.reshape(-1) for i in idx])
            dist.broadcast(flat, src=0)
            for i, part in zip(idx, flat.split([params[i].numel() for i in idx])):
                params[i].data.copy_(part.view_as(params[i]))


def average_gradients(params: list[torch.nn.Parameter], nproc: int) -> None:
    """Replace each gradient of ``params`` by its mean over the ``nproc`` processes, as DDP does.

    A parameter without a gradient on some process (e.g. a vision adapter on a text-only batch) counts as a
    zero gradient there; one without a gradient on every process keeps none, so the optimizer skips it
    exactly as a single process would."""
    if nproc <= 1 or not params:
        return
    device = params[0].device
    present = torch.tensor([float(p.grad is not None) for p in params], device=device)
    (present,) = _all_reduce_flat([present], dist.ReduceOp.SUM)
    used = [i for i, seen in enumerate(present.tolist()) if seen > 0]
    grads = [params[i].grad if params[i].grad is not None else torch.zeros_like(params[i]) for i in used]
    with torch.no_grad():
        for i, summed in zip(used, _all_reduce_flat(grads, dist.ReduceOp.SUM)):
            params[i].grad = summed.div_(nproc)
