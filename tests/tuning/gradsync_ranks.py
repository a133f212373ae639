"""Launched by tests/tuning/test_gradsync.py under ``torchrun --nproc_per_node 2`` (gloo on CPU): each rank
gives its parameters and gradients, runs mint's gradient averaging and broadcast, and prints what it holds."""

from __future__ import annotations

import json

import torch
import torch.distributed as dist

from mint.tuning.gradsync import average_gradients, broadcast_from_first


def main() -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    both = torch.nn.Parameter(torch.zeros(3))
    first_only = torch.nn.Parameter(torch.zeros(2))
    half = torch.nn.Parameter(torch.zeros(4, dtype=torch.bfloat16))
    unused = torch.nn.Parameter(torch.zeros(2))
    both.grad = torch.full((3,), float(rank + 1))
    if rank == 0:
        first_only.grad = torch.full((2,), 2.0)
    half.grad = torch.full((4,), float(rank), dtype=torch.bfloat16)
    params = [both, first_only, half, unused]
    average_gradients(params, dist.get_world_size())
    weights = [
        torch.nn.Parameter(torch.full((2, 2), float(rank))),
        torch.nn.Parameter(torch.full((3,), rank + 5.0)),
    ]
    broadcast_from_first(weights)
    print(
        "RESULT "
        + json.dumps(
            {
                "rank": rank,
                "grads": [None if p.grad is None else p.grad.float().tolist() for p in params],
                "dtypes": [None if p.grad is None else str(p.grad.dtype) for p in params],
                "weights": [w.detach().reshape(-1).tolist() for w in weights],
            }
        ),
        flush=True,
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
