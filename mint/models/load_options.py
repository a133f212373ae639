"""How a backbone is loaded for large models: precision, placement, attention kernel and k-bit quantisation.

:class:`LoadOptions` holds what ``--dtype``, ``--device-map``, ``--attn-implementation`` and ``--quantize``
ask for, refuses impossible combinations with one clear error, and turns them into the keyword arguments of
``from_pretrained``. :func:`loading_options` adds the options to a click command.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from typing import Any

import click

from mint.errors import MintError

DTYPES = ("float32", "bfloat16", "float16", "auto")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
QUANTIZE = ("4bit", "8bit")


@dataclass(frozen=True)
class LoadOptions:
    """``dtype``: weights' precision (with ``quantize``: the compute dtype of the k-bit layers);
    ``device_map``: accelerate's big-model placement over the visible devices (and CPU) instead of one
    ``--device``; ``attn_implementation``: passed to transformers as is (``eager``, ``sdpa``,
    ``flash_attention_2``, ...); ``quantize``: bitsandbytes ``4bit`` (NF4, double quantisation) or ``8bit``."""

    dtype: str = "float32"
    device_map: str | None = None
    attn_implementation: str | None = None
    quantize: str | None = None

    def check(self, device: str | None = None, processes: int = 1) -> LoadOptions:
        """Validate the options (with the ``--device`` given, None or ``auto`` if none was, and the number
        of processes)."""
        if self.dtype not in DTYPES:
            raise MintError(f"--dtype: unknown dtype {self.dtype!r} (expected one of {', '.join(DTYPES)})")
        if self.device_map is not None:
            if self.device_map not in DEVICE_MAPS:
                raise MintError(
                    f"--device-map: expected one of {', '.join(DEVICE_MAPS)}, got {self.device_map!r}"
                )
            if device not in (None, "auto"):
                raise MintError(
                    f"--device {device} and --device-map {self.device_map} exclude each other (one device, "
                    "or the model spread over all of them)"
                )
            if processes > 1:
                raise MintError(
                    f"--device-map spreads one model over the devices of one process; it cannot run under "
                    f"{processes} processes (launch one process, or drop --device-map)"
                )
        if self.quantize is not None:
            if self.quantize not in QUANTIZE:
                raise MintError(f"--quantize: expected one of {', '.join(QUANTIZE)}, got {self.quantize!r}")
            if importlib.util.find_spec("bitsandbytes") is None:
                raise MintError(
                    f"--quantize {self.quantize} needs bitsandbytes, which is not installed "
                    "(pip install 'mint[qlora]')"
                )
            if self.dtype == "auto":
                raise MintError(
                    f"--quantize {self.quantize}: give the compute dtype (--dtype bfloat16, float16 or float32)"
                )
        if self.attn_implementation is not None and not self.attn_implementation.strip():
            raise MintError("--attn-implementation: empty name")
        return self

    def torch_dtype(self) -> Any:
        import torch

        return self.dtype if self.dtype == "auto" else getattr(torch, self.dtype)

    def pretrained_kwargs(self, device: Any = None) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained`` (``device``: where a quantised model is built, since
        bitsandbytes places its layers while loading)."""
        kwargs: dict[str, Any] = {"dtype": self.torch_dtype()}
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        if self.quantize is not None:
            from transformers import BitsAndBytesConfig

            compute = self.torch_dtype()
            kwargs["quantization_config"] = (
                BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_use_double_quant=True,
                    bnb_4bit_compute_dtype=compute,
                    bnb_4bit_quant_storage=compute,
                )
                if self.quantize == "4bit"
                else BitsAndBytesConfig(load_in_8bit=True)
            )
            if self.device_map is None:
                kwargs["device_map"] = {"": str(device) if device is not None else "cpu"}
        return kwargs

    def places_itself(self) -> bool:
        """Whether loading puts the weights on their devices (no ``.to(device)`` afterwards)."""
        return self.device_map is not None or self.quantize is not None

    def record(self) -> dict[str, Any]:
        """The options that differ from the defaults, for run metadata."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default or f.name == "dtype"
        }


def prepare_kbit(vlm: Any) -> Any:
    """peft's k-bit preparation of a quantised backbone (the layers left in full precision cast to float32,
    inputs' gradients enabled for the adapters), done alike before QLoRA training and evaluation."""
    from peft import prepare_model_for_kbit_training

    vlm.model = prepare_model_for_kbit_training(vlm.model, use_gradient_checkpointing=False)
    return vlm


def loading_options(f):
    """``--device-map`` and ``--attn-implementation`` for a command that already has ``--dtype``."""
    f = click.option(
        "--attn-implementation",
        default=None,
        metavar="NAME",
        help="Attention kernel passed to transformers (eager, sdpa, flash_attention_2, ...).",
    )(f)
    return click.option(
        "--device-map",
        type=click.Choice(DEVICE_MAPS),
        default=None,
        help="Spread a model larger than one device over all visible devices (accelerate big-model "
        "inference); excludes --device.",
    )(f)
