"""Checkpoints of a tuning run: enough state to continue a killed run to the same result.

``checkpoints/state.json`` says which groups are done and which checkpoint is the latest;
``checkpoints/<group>-step-<n>/`` holds the training group's adapter weights, optimizer and scheduler
states, each process's RNG states and the data position. The state file is rewritten (atomically) only
after a checkpoint folder is complete, and older folders are removed only after that.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mint.errors import MintError
from mint.io import atomic_path, atomic_write_json, read_json, stamp

STATE = "state.json"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(
    folder: Path,
    *,
    adapter_state: dict[str, torch.Tensor] | None,
    optimizer: Any,
    scheduler: Any,
    position: dict[str, Any],
    rank: int,
    is_main: bool,
) -> None:
    """Write one checkpoint folder; every process writes its RNG state, the main one the rest."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    _torch_save(rng_state(), folder / f"rng-{rank}.pt")
    if is_main:
        with atomic_path(folder / "adapter_model.safetensors") as tmp:
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in adapter_state.items()},
                str(tmp),
                metadata={"format": "pt"},
            )
        _torch_save(optimizer.state_dict(), folder / "optimizer.pt")
        _torch_save(scheduler.state_dict(), folder / "scheduler.pt")
        atomic_write_json(folder / "position.json", position)


def load_checkpoint(folder: Path, rank: int) -> dict[str, Any]:
    """The pieces of a checkpoint folder (tensors on CPU)."""
    from safetensors.torch import load_file

    rng_file = folder / f"rng-{rank}.pt"
    if not rng_file.is_file():
        raise MintError(
            f"{folder}: no RNG state for process {rank} (was the run started with another "
            "number of processes?)"
        )
    return {
        "adapter": load_file(str(folder / "adapter_model.safetensors")),
        "optimizer": torch.load(folder / "optimizer.pt", weights_only=False),
        "scheduler": torch.load(folder / "scheduler.pt", weights_only=False),
        "rng": torch.load(rng_file, weights_only=False),
        "position": read_json(folder / "position.json", "checkpoint position"),
    }


def read_state(ckpt_dir: Path) -> dict[str, Any] | None:
    path = ckpt_dir / STATE
    return read_json(path, "run state") if path.is_file() else None


def write_state(ckpt_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_json(ckpt_dir / STATE, stamp(state))


def prune(ckpt_dir: Path, keep: str | None) -> None:
    """Remove checkpoint folders other than ``keep``."""
    for p in ckpt_dir.iterdir():
        if p.is_dir() and p.name != keep:
            shutil.rmtree(p, ignore_errors=True)
