"""The one device rule of every command: which torch device a ``--device`` value means on this process.

* ``auto`` (the default everywhere): the process's own accelerator where there is one (CUDA, then XPU,
  then MPS), else the CPU.
* ``cuda`` / ``xpu`` without an index: the device of this process's local rank (``LOCAL_RANK``, 0 outside
  a distributed launch), so that ``torchrun --nproc_per_node 4`` puts rank r on ``cuda:r`` and not every
  rank on ``cuda:0``. ``cuda:N`` is taken as given.
* ``cpu``, ``mps`` (with or without an index): as named.

Anything else (``gpu``, ``tpu``, a typo), or a device this machine does not have, is a one-line
:class:`~mint.errors.MintError` instead of a torch error.
"""

from __future__ import annotations

import os

import torch

from mint.errors import MintError

#: what ``--device`` accepts, for help texts and errors
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, xpu, xpu:N, mps"
DEVICE_HELP = "auto (this process's GPU where there is one, else cpu), cpu, cuda (the local rank's GPU), cuda:N, xpu, mps."
_KINDS = ("cpu", "cuda", "xpu", "mps")


#: the launch commands mint recommends (accelerate launch --cpu runs ONE process whatever --num_processes says)
LAUNCH_HINT = (
    "on GPUs: accelerate launch --multi_gpu --num_processes N -m mint.cli ... or "
    "torchrun --nproc_per_node N -m mint.cli ...; on CPU: torchrun --nproc_per_node N -m mint.cli ..."
)
_WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def world_size() -> int:
    """The number of processes this one was launched among (1 outside torchrun / accelerate / MPI)."""
    for var in _WORLD_SIZE_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def single_process(command: str) -> None:
    """Refuse to run ``command`` as one of several processes: it does not split its work, so every process
    would do all of it (and write the same outputs)."""
    n = world_size()
    if n > 1:
        raise MintError(
            f"{command} runs in one process, but it was launched as {n}: each would do all the work and "
            f"write the same outputs; run it without torchrun / accelerate launch"
        )


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK`` of torchrun / accelerate launch; 0 otherwise)."""
    value = os.environ.get("LOCAL_RANK", "")
    return int(value) if value.isdigit() else 0


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "xpu":
        return bool(getattr(torch, "xpu", None) is not None and torch.xpu.is_available())
    if kind == "mps":
        return bool(torch.backends.mps.is_available())
    return kind == "cpu"


def _count(kind: str) -> int:
    return torch.cuda.device_count() if kind == "cuda" else torch.xpu.device_count()


def auto_kind() -> str:
    """The accelerator ``auto`` picks on this machine: ``cuda``, ``xpu``, ``mps`` or ``cpu``."""
    return next((k for k in ("cuda", "xpu", "mps") if _available(k)), "cpu")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device ``spec`` means on this process (see the module docstring)."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    if text == "auto":
        text = auto_kind()
    kind, _, index = text.partition(":")
    if kind not in _KINDS or (index and not index.isdigit()):
        raise MintError(f"unknown device {spec!r} (expected one of {DEVICE_CHOICES})")
    if not _available(kind):
        raise MintError(f"device {spec!r} requested but {kind.upper()} is not available on this machine")
    if kind in ("cpu", "mps"):  # one device each (accelerate names the CPU of a gloo rank cpu:0)
        return torch.device(kind)
    n = int(index) if index else local_rank()
    count = _count(kind)
    if n >= count:
        source = f"index {n}" if index else f"LOCAL_RANK {n}"
        raise MintError(f"device {spec!r}: {source}, but only {count} {kind.upper()} device(s) are visible")
    return torch.device(kind, n)
