"""Continual-learning methods of ``mint tune --continual`` (one module each) behind one interface.

A method decides, for the continual trainer (:mod:`mint.tuning.continual`), which adapter each stage trains, what a
stage's training examples are, which adapters are active while it trains, what penalty is added to its loss, which
adapters answer the evaluation after a stage, and which adapter ``mint evaluate`` routes each task to at the end.

=================  ===========================================================================================
``sequential``     one shared LoRA carried from stage to stage (the LoRA-FT baseline)
``per-group``      one LoRA per stage, each task answered by its own stage's LoRA (routing by task name)
``replay``         ``sequential`` plus a seeded buffer of earlier stages' samples mixed into each stage
``o-lora``         one LoRA per stage, orthogonal to the earlier ones (Wang et al. 2023); all summed at inference
``moe-lora``       a shared MoELoRA: LoRA experts per layer mixed by a learned router (CoIN, Chen et al. 2024)
``mr-lora``        one expert LoRA per stage and a learned router LoRA choosing the expert per sample
                   (MLLM-CL, Zhao et al. 2025)
``reglora``        one LoRA per stage, its update kept off the earlier stages' key elements (SEFE's RegLoRA,
                   Chen et al. 2025); all summed at inference
=================  ===========================================================================================

Hyper-parameters (``continual_params`` in a config file, ``--continual-param KEY=VALUE`` on the command line) are
declared in :data:`PARAMS` and checked by :func:`resolve_params`; this module imports nothing heavy, so the tuning
config can validate them.
"""

from __future__ import annotations

import math
from typing import Any

from mint.errors import MintError
from mint.tuning.continual_methods.base import PerGroup, Sequential
from mint.tuning.continual_methods.moe_lora import MoELoRA
from mint.tuning.continual_methods.moe_lora import attach_saved_router as attach_moe
from mint.tuning.continual_methods.mr_lora import MRLoRA
from mint.tuning.continual_methods.mr_lora import attach_saved_router as attach_mr
from mint.tuning.continual_methods.o_lora import OLoRA
from mint.tuning.continual_methods.reglora import RegLoRA
from mint.tuning.continual_methods.replay import Replay

#: every ``--continual`` value, in the order the docs list them
METHODS = ("sequential", "per-group", "replay", "o-lora", "mr-lora", "moe-lora", "reglora")

#: ``{method: {param: (type, default, description)}}``; ``None`` default: unset
PARAMS: dict[str, dict[str, tuple[type, Any, str]]] = {
    "sequential": {},
    "per-group": {},
    "replay": {
        "fraction": (
            float,
            None,
            "replayed samples per stage as a fraction of the stage's own (default 0.2 when size is unset)",
        ),
        "size": (int, None, "replayed samples per stage (instead of fraction)"),
    },
    "o-lora": {
        "lambda_orth": (float, 0.5, "weight of the orthogonality penalty sum |A_old A_new^T|"),
        "lambda_l2": (float, 0.0, "weight of the L2 penalty on the new stage's LoRA weights"),
    },
    "mr-lora": {
        "samples": (int, 16, "training samples per seen task in the router's replay set"),
    },
    "moe-lora": {
        "experts": (int, 4, "LoRA experts per target layer (each of rank rank / experts)"),
    },
    "reglora": {
        "top": (float, 0.02, "fraction of each earlier stage's update elements kept as key elements"),
        "weight": (float, 2500.0, "weight of the penalty mean |delta W_new| on the key elements"),
    },
}

DEFAULT_REPLAY_FRACTION = 0.2


def _number(method: str, key: str, value: Any, kind: type, source: str) -> Any:
    where = f"{source}: continual_params: {key}"
    if isinstance(value, bool):
        raise MintError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value) if kind is float else int(value)
        except ValueError:
            raise MintError(
                f"{where}: expected {'a number' if kind is float else 'an integer'}, got {value!r}"
            ) from None
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise MintError(f"{where}: expected an integer, got {value!r}")
        return value
    if not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise MintError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def resolve_params(method: str, params: dict[str, Any] | None, source: str = "tune config") -> dict[str, Any]:
    """``params`` checked against ``method``'s declared hyper-parameters, defaults filled in."""
    if method not in PARAMS:
        raise MintError(f"{source}: continual: expected one of {', '.join(METHODS)}, got {method!r}")
    declared = PARAMS[method]
    params = dict(params or {})
    if params and not declared:
        raise MintError(f"{source}: continual_params: {method} takes no parameters (got {', '.join(params)})")
    out: dict[str, Any] = {}
    for raw, value in params.items():
        key = str(raw).replace("-", "_")
        if key not in declared:
            raise MintError(
                f"{source}: continual_params: unknown key {raw!r} for {method} (known: {', '.join(declared)})"
            )
        out[key] = _number(method, key, value, declared[key][0], source)
    for key, (_, default, _) in declared.items():
        out.setdefault(key, default)
    _check(method, out, f"{source}: continual_params")
    return out


def _check(method: str, p: dict[str, Any], where: str) -> None:
    if method == "replay":
        if p["size"] is not None and p["fraction"] is not None:
            raise MintError(f"{where}: give replay size or fraction, not both")
        if p["size"] is None and p["fraction"] is None:
            p["fraction"] = DEFAULT_REPLAY_FRACTION
        if p["size"] is not None and p["size"] < 1:
            raise MintError(f"{where}: size: must be at least 1, got {p['size']}")
        if p["fraction"] is not None and not 0 < p["fraction"] <= 10:
            raise MintError(f"{where}: fraction: must be in (0, 10], got {p['fraction']}")
    elif method == "o-lora":
        for key in ("lambda_orth", "lambda_l2"):
            if p[key] < 0:
                raise MintError(f"{where}: {key}: must not be negative, got {p[key]}")
    elif method == "mr-lora":
        if p["samples"] < 1:
            raise MintError(f"{where}: samples: must be at least 1, got {p['samples']}")
    elif method == "moe-lora":
        if p["experts"] < 1:
            raise MintError(f"{where}: experts: must be at least 1, got {p['experts']}")
    elif method == "reglora":
        if not 0 < p["top"] <= 1:
            raise MintError(f"{where}: top: must be in (0, 1], got {p['top']}")
        if p["weight"] < 0:
            raise MintError(f"{where}: weight: must not be negative, got {p['weight']}")


def parse_param(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--continual-param`` (the value is checked by :func:`resolve_params`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise MintError(f"--continual-param: expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def get_method(name: str, params: dict[str, Any] | None = None) -> Any:
    """The method object for ``--continual name`` (see :class:`mint.tuning.continual_methods.base.Method`)."""
    resolved = resolve_params(name, params)
    classes = {"replay": Replay, "o-lora": OLoRA, "mr-lora": MRLoRA, "moe-lora": MoELoRA, "reglora": RegLoRA}
    if name in classes:
        return classes[name](resolved)
    return Sequential() if name == "sequential" else PerGroup()


def attach_saved(peft_model: Any, adapter: str, folder: Any) -> None:
    """After loading adapter ``adapter`` from ``folder``: put back what a method keeps beside the LoRA weights
    (moe-lora's router hooks, mr-lora's experts and router); no-op for plain adapters."""
    attach_moe(peft_model, adapter, folder)
    attach_mr(peft_model, adapter, folder)
