"""The precision policy of training: the backbone's dtype and accelerate's mixed precision, chosen together.

* ``dtype`` unset: ``bfloat16`` weights on a GPU that has bfloat16, ``float32`` elsewhere.
* ``bfloat16`` or ``float32`` weights train as they are (peft keeps the LoRA weights in float32); accelerate's
  mixed precision (``ACCELERATE_MIXED_PRECISION`` / ``accelerate launch --mixed_precision``) may add bf16
  autocast, or fp16 autocast with loss scaling over float32 weights.
* ``float16`` weights train only with loss scaling: mixed precision ``fp16`` (accelerate's ``GradScaler``),
  which is switched on for them, and which accelerate runs only on a GPU; on the CPU they are refused.
* Conflicting settings are refused: ``float16`` weights under bf16 autocast (autocast would crash),
  ``bfloat16`` weights under fp16 mixed precision (fp16 autocast over bf16 weights, scaled for the wrong range).

Non-finite steps: a step whose loss or gradients are not finite is not applied (no optimizer step, no
learning-rate step; with loss scaling the ``GradScaler`` skips it and lowers its scale), and is marked in
``train_log.jsonl`` (``"skipped": true``) and counted in ``tune.json`` (``nonfinite_steps``).
:data:`NONFINITE_LIMIT` such steps in a row stop the run with one clear error: the adapters saved so far
are never NaN.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from mint.errors import MintError

#: accelerate's mixed-precision settings that training takes
MIXED_PRECISION = ("no", "bf16", "fp16")
#: the backbone dtypes training takes (``auto``, the checkpoint's own, could silently be float16)
TRAIN_DTYPES = ("float32", "bfloat16", "float16")
#: consecutive non-finite steps after which training stops
NONFINITE_LIMIT = 10


@dataclass(frozen=True)
class Precision:
    """The backbone's weights ``dtype`` and accelerate's ``mixed_precision`` of one training run."""

    dtype: str
    mixed_precision: str

    @property
    def loss_scaling(self) -> bool:
        return self.mixed_precision == "fp16"

    def to_dict(self) -> dict[str, str]:
        return {"dtype": self.dtype, "mixed_precision": self.mixed_precision}


def _bf16_supported(kind: str) -> bool:
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return kind == "xpu"


def training_precision(dtype: str | None, device_kind: str, mixed_precision: str | None = None) -> Precision:
    """The :class:`Precision` of a run on a ``device_kind`` device (``cpu``, ``cuda``, ``xpu``, ``mps``) with
    ``dtype`` (None: the default) and ``mixed_precision`` (None: ``ACCELERATE_MIXED_PRECISION``, else
    ``no``); a :class:`MintError` for settings that cannot train correctly (see the module docstring)."""
    mixed = (mixed_precision or os.environ.get("ACCELERATE_MIXED_PRECISION") or "no").lower()
    if mixed not in MIXED_PRECISION:
        raise MintError(
            f"mixed precision {mixed!r} is not supported for tuning (expected one of {', '.join(MIXED_PRECISION)})"
        )
    if dtype is None:
        dtype = "bfloat16" if _bf16_supported(device_kind) else "float32"
    if dtype not in TRAIN_DTYPES:
        raise MintError(
            f"dtype {dtype!r} cannot be tuned in (expected one of {', '.join(TRAIN_DTYPES)}; "
            "auto could silently be float16, which needs loss scaling)"
        )
    if dtype == "float16":
        if mixed == "bf16":
            raise MintError(
                "dtype float16 conflicts with bf16 mixed precision (ACCELERATE_MIXED_PRECISION / "
                "--mixed_precision): use dtype bfloat16, or fp16 mixed precision"
            )
        if device_kind == "cpu":
            raise MintError(
                "dtype float16 trains only with loss scaling, which accelerate does on a GPU: "
                "on the CPU use dtype bfloat16 or float32"
            )
        mixed = "fp16"  # float16 weights: always with the GradScaler
    if dtype == "bfloat16" and mixed == "fp16":
        raise MintError(
            "dtype bfloat16 conflicts with fp16 mixed precision (ACCELERATE_MIXED_PRECISION / "
            "--mixed_precision): use bf16 mixed precision, or dtype float16 or float32"
        )
    return Precision(dtype, mixed)


def optimizer_step(accelerator: Any, optimizer: Any, finite: bool) -> bool:
    """Step ``optimizer`` unless its gradients or loss are not finite; returns whether the step was skipped.

    Under loss scaling the ``GradScaler`` decides (it skips steps with inf/NaN gradients and lowers its
    scale, which it must be allowed to do); otherwise a non-finite step is not applied."""
    if getattr(accelerator, "scaler", None) is not None:
        optimizer.step()
        skipped = bool(getattr(optimizer, "step_was_skipped", False)) or not finite
    elif finite:
        optimizer.step()
        skipped = False
    else:
        skipped = True
    optimizer.zero_grad(set_to_none=True)
    return skipped


def is_finite(*values: float | torch.Tensor) -> bool:
    """Whether every value (a float or a scalar tensor) is finite."""
    return all(math.isfinite(float(v)) for v in values)


class NonFiniteSteps:
    """Counts skipped steps (``total``, kept across a resume by the caller) and stops a run that keeps
    producing them (:data:`NONFINITE_LIMIT` in a row)."""

    def __init__(self, what: str, total: int = 0, limit: int = NONFINITE_LIMIT) -> None:
        self.what, self.total, self.limit, self.streak = what, total, limit, 0

    def record(self, skipped: bool, step: int, precision: str = "") -> None:
        if not skipped:
            self.streak = 0
            return
        self.total += 1
        self.streak += 1
        if self.streak >= self.limit:
            raise MintError(
                f"{self.what}: {self.streak} optimizer steps in a row (up to step {step}) had a non-finite "
                f"loss or gradients{f' in {precision}' if precision else ''}; none was applied. Lower the "
                "learning rate, or train in bfloat16 or float32"
            )
