"""Checkpoints of a tuning run: enough state to continue a killed run to the same result.

``checkpoints/state.json`` says which groups are done and which checkpoint is the latest;
``checkpoints/<group>-step-<n>/`` holds the training group's adapter weights
(``adapter_model.safetensors``), the optimizer and scheduler states and each process's RNG states
(``<name>.json`` for numbers and structure, ``<name>.safetensors`` for tensors) and the data position
(``position.json``). Nothing in a checkpoint is a pickle: loading one only parses JSON and safetensors,
so a file planted in ``checkpoints/`` cannot run code. The state file is rewritten (atomically) only
after a checkpoint folder is complete, and older folders are removed only after that.

Portable: every tensor is read onto the CPU (the optimizer state then follows its parameters onto this
run's devices), each process keeps the CUDA RNG state of its own device only (restored onto its device
now, whatever the number of visible GPUs; skipped where there is no GPU), and under fp16 loss scaling the
``GradScaler``'s state (``scaler.json``) is saved and restored with the optimizer.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mint.errors import MintError, first_line
from mint.io import atomic_path, atomic_write_json, atomic_write_text, read_json, stamp

STATE = "state.json"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
# JSON markers of the values JSON has no form for: a tensor (stored in the .safetensors file), a tuple,
# a mapping whose keys are not all strings (the optimizer's per-parameter state is keyed by index).
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def rng_state() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) RNG states, as plain data and tensors."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])},
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's own device (a rank's, under DDP)
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = dict(state["numpy"])
    np_state["state"] = {
        "key": np.asarray(np_state["state"]["key"], dtype=np.uint32),
        "pos": np_state["state"]["pos"],
    }
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if isinstance(cuda, (list, tuple)):  # one state per visible GPU: this device's, where it had one
            index = torch.cuda.current_device()
            cuda = cuda[index] if index < len(cuda) else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda)  # onto this process's current device


def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """``obj`` as JSON-able data; its tensors are moved into ``tensors`` and named by their path."""
    if isinstance(obj, torch.Tensor):
        key = where or "tensor"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, tensors, f"{where}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, tensors, f"{where}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not {_TENSOR, _TUPLE, _ITEMS} & obj.keys():
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        if all(k is None or isinstance(k, (bool, int, float, str)) for k in obj):
            return {_ITEMS: [[k, _encode(v, tensors, f"{where}.{k}")] for k, v in obj.items()]}
    raise TypeError(f"{where or 'value'}: a {type(obj).__name__} cannot be stored in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, path) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {_TENSOR}:
        if obj[_TENSOR] not in tensors:
            raise MintError(f"{path}: refers to tensor {obj[_TENSOR]!r}, which its .safetensors file lacks")
        return tensors[obj[_TENSOR]]
    if set(obj) == {_TUPLE} and isinstance(obj[_TUPLE], list):
        return tuple(_decode(v, tensors, path) for v in obj[_TUPLE])
    if set(obj) == {_ITEMS} and isinstance(obj[_ITEMS], list):
        if not all(isinstance(kv, list) and len(kv) == 2 for kv in obj[_ITEMS]):
            raise MintError(f"{path}: malformed {_ITEMS} entry")
        return {k: _decode(v, tensors, path) for k, v in obj[_ITEMS]}
    return {k: _decode(v, tensors, path) for k, v in obj.items()}


def save_tree(obj: Any, stem: Path) -> None:
    """Write ``obj`` (dicts, lists, tuples, numbers, strings and tensors) as ``stem.json`` plus, when it
    holds tensors, ``stem.safetensors``; each file atomically, the tensors first."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    data = _encode(obj, tensors, "")
    if tensors:
        with atomic_path(stem.with_suffix(".safetensors"), replace=True) as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt"})
    atomic_write_text(stem.with_suffix(".json"), json.dumps(data) + "\n", replace=True)


def load_tensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors (on CPU); a missing, empty, truncated or corrupt file is a
    :class:`MintError` naming it."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise MintError(f"{path}: no such {what}")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error type (and OSError) for a bad file
        raise MintError(f"{path}: unreadable {what} ({first_line(e)})") from None


def load_tree(stem: Path) -> Any:
    """Read what :func:`save_tree` wrote: parses JSON and safetensors only, so nothing in it can run."""
    json_path = stem.with_suffix(".json")
    data = read_json(json_path, "checkpoint file")
    tensors_path = stem.with_suffix(".safetensors")
    tensors = load_tensors(tensors_path, "checkpoint tensor file") if tensors_path.is_file() else {}
    return _decode(data, tensors, json_path)


def save_checkpoint(
    folder: Path,
    *,
    adapter_state: dict[str, torch.Tensor] | None,
    optimizer: Any,
    scheduler: Any,
    position: dict[str, Any],
    rank: int,
    is_main: bool,
    scaler: Any = None,
) -> None:
    """Write one checkpoint folder; every process writes its RNG state, the main one the rest (with the
    loss ``scaler``'s state where there is one)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_tree(rng_state(), folder / f"rng-{rank}")
    if is_main:
        with atomic_path(folder / "adapter_model.safetensors", replace=True) as tmp:
            save_file(
                {k: v.detach().cpu().contiguous() for k, v in adapter_state.items()},
                str(tmp),
                metadata={"format": "pt"},
            )
        save_tree(optimizer.state_dict(), folder / "optimizer")
        save_tree(scheduler.state_dict(), folder / "scheduler")
        if scaler is not None:
            save_tree(scaler.state_dict(), folder / "scaler")
        atomic_write_json(folder / "position.json", position, replace=True)


def load_checkpoint(folder: Path, rank: int) -> dict[str, Any]:
    """The pieces of a checkpoint folder (tensors on CPU); a missing or damaged piece is a
    :class:`MintError` naming the file."""
    if not (folder / f"rng-{rank}.json").is_file():
        raise MintError(
            f"{folder / f'rng-{rank}.json'}: no RNG state for process {rank} (was the run started with "
            "another number of processes, or by a mint that wrote pickled checkpoints?)"
        )
    loaded = {
        "folder": folder,
        "adapter": load_tensors(folder / "adapter_model.safetensors", "checkpoint adapter"),
        "optimizer": load_tree(folder / "optimizer"),
        "scheduler": load_tree(folder / "scheduler"),
        "rng": load_tree(folder / f"rng-{rank}"),
        "position": read_json(folder / "position.json", "checkpoint position"),
        "scaler": load_tree(folder / "scaler") if (folder / "scaler.json").is_file() else None,
    }
    _check_shape(loaded, folder, rank)
    return loaded


def _check_shape(loaded: dict[str, Any], folder: Path, rank: int) -> None:
    def bad(name: str, what: str) -> MintError:
        return MintError(f"{folder / name}: {what}")

    opt = loaded["optimizer"]
    if not (
        isinstance(opt, dict)
        and isinstance(opt.get("state"), dict)
        and isinstance(opt.get("param_groups"), list)
        and all(isinstance(g, dict) and isinstance(g.get("params"), list) for g in opt["param_groups"])
    ):
        raise bad("optimizer.json", "expected an optimizer state (state, param_groups with params)")
    if not isinstance(loaded["scheduler"], dict):
        raise bad("scheduler.json", "expected a mapping (the learning-rate scheduler's state)")
    rng = loaded["rng"]
    py = rng.get("python") if isinstance(rng, dict) else None
    if not (
        isinstance(py, list)
        and len(py) == 3
        and isinstance(py[1], list)
        and all(isinstance(v, int) for v in py[1])
        and isinstance(rng.get("numpy"), dict)
        and isinstance(rng.get("torch"), torch.Tensor)
        and rng["torch"].dtype == torch.uint8
    ):
        raise bad(f"rng-{rank}.json", "expected the python, numpy and torch RNG states")
    pos = loaded["position"]
    if not (isinstance(pos, dict) and isinstance(pos.get("log_lines"), int) and pos["log_lines"] >= 0):
        raise bad("position.json", "expected the data position (with log_lines, a count)")


def restore(resume_from: dict[str, Any], optimizer: Any, scheduler: Any, scaler: Any = None) -> None:
    """Load a checkpoint's optimizer, scheduler, loss-scaler and RNG states; a state that does not fit the
    run (a loss scaler saved and none now, or the other way round) is a :class:`MintError` naming the
    checkpoint."""
    folder = resume_from["folder"]
    saved = resume_from.get("scaler")
    if (saved is None) != (scaler is None):
        had = "with" if saved is not None else "without"
        raise MintError(
            f"{folder}: the run was checkpointed {had} fp16 loss scaling; resume it with the same --dtype "
            "and mixed precision"
        )
    if scaler is not None:
        if not isinstance(saved, dict):
            raise MintError(f"{folder / 'scaler.json'}: expected the loss scaler's state (a mapping)")
        scaler.load_state_dict(saved)
    for name, target, state in (
        ("optimizer.json", optimizer, resume_from["optimizer"]),
        ("scheduler.json", scheduler, resume_from["scheduler"]),
    ):
        try:
            target.load_state_dict(state)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise MintError(f"{folder / name}: does not fit this run ({first_line(e)})") from None
    try:
        set_rng_state(resume_from["rng"])
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
        raise MintError(f"{folder}: unusable RNG state ({first_line(e)})") from None


def checkpoint_folder(ckpt_dir: Path, name: Any) -> Path:
    """The folder of checkpoint ``name`` as recorded in ``state.json``: a plain folder name inside
    ``ckpt_dir``, nothing else."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise MintError(f"{ckpt_dir / STATE}: checkpoint: expected a checkpoint folder name, got {name!r}")
    return ckpt_dir / name


def check_resumable(ckpt_dir: Path, rank: int) -> None:
    """Read the checkpoint a resumed run would continue from, so that a damaged one is refused before
    anything is loaded."""
    state = read_state(ckpt_dir)
    if state is not None and state.get("checkpoint"):
        load_checkpoint(checkpoint_folder(ckpt_dir, state["checkpoint"]), rank)


def read_state(ckpt_dir: Path) -> dict[str, Any] | None:
    path = ckpt_dir / STATE
    if not path.is_file():
        return None
    state = read_json(path, "run state")
    if not isinstance(state, dict):
        raise MintError(f"{path}: expected a mapping (the run's saved state)")
    return state


def write_state(ckpt_dir: Path, state: dict[str, Any], new: bool = False) -> None:
    """Save the run's state; a ``new`` state claims the run folder: it fails if another run wrote one
    meanwhile."""
    atomic_write_json(ckpt_dir / STATE, stamp(state), replace=not new)


def prune(ckpt_dir: Path, keep: str | None) -> None:
    """Remove checkpoint folders other than ``keep``."""
    for p in ckpt_dir.iterdir():
        if p.is_dir() and p.name != keep:
            shutil.rmtree(p, ignore_errors=True)
