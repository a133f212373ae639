"""Mixed-adapter batches: each row of one batch goes through its own group's LoRA adapter.

:class:`MixedLoRA` overrides the forward of every peft ``lora.Linear`` layer of a model (an instance
attribute, removed again by :meth:`MixedLoRA.remove`). Inside :meth:`MixedLoRA.route`, a layer computes the
frozen base product once for the whole batch and adds, for each segment ``(adapter, start, stop)`` of
consecutive rows, that adapter's low-rank product on the slice ``x[start:stop]`` (a view: no gather, no
copy), as mLoRA's BatchLoRA does. When the segments have equal sizes (the usual case: one micro-batch per group),
the low-rank products of all adapters are one batched product fused with the add (``bmm`` + ``baddbmm`` over
stacked adapter weights), which writes the layer output once instead of once more per adapter. Outside ``route``
the layers behave exactly as peft's.

Why not peft's own ``adapter_names=[...]`` forward: peft refuses it in training mode (so the backbone's own
dropout would differ from the sequential trainer's), gathers rows with index lists (a copy of the input per
adapter and a scatter-add per adapter) and relies on internals that are not a training API. Slices of a
batch ordered by group need neither; the gradient of every adapter is the one of a separate pass over its
rows because rows of a batch never interact in these models (tests/tuning/test_concurrent.py checks it).

LoRA dropout is not supported here (it must be 0): a concurrent step would draw the dropout masks in
another order than one-group-at-a-time training, so the two could never agree.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from mint.errors import MintError
from mint.tuning.lora import Segment, segment_losses

__all__ = ["MixedLoRA", "Segment", "segment_losses"]  # segment_losses: the loss of a routed batch


class MixedLoRA:
    """Row-segment routing of a peft LoRA model's linear layers to several adapters at once."""

    def __init__(self, model: torch.nn.Module, adapters: Sequence[str]) -> None:
        from peft.tuners.lora.layer import Linear as LoraLinear
        from peft.tuners.lora.layer import LoraLayer

        self.adapters = list(adapters)
        self.layers: list[tuple[str, Any]] = []
        for name, module in model.named_modules():
            if not isinstance(module, LoraLayer):
                continue
            if not isinstance(module, LoraLinear):
                raise MintError(
                    f"concurrent tuning: {name} is a {type(module).__name__}; only LoRA on linear "
                    "layers can be routed per sample"
                )
            for a in self.adapters:
                if a not in module.lora_A:  # adapters may sit in different towers (--tower auto)
                    continue
                if a in getattr(module, "lora_variant", {}) or module.use_dora.get(a, False):
                    raise MintError(
                        f"concurrent tuning: adapter {a!r} uses a LoRA variant (DoRA, ...) on {name}; "
                        "only plain LoRA can be routed per sample"
                    )
                if not isinstance(module.lora_dropout[a], torch.nn.Identity):
                    raise MintError(
                        f"concurrent tuning needs LoRA dropout 0 (adapter {a!r} has {module.lora_dropout[a]})"
                    )
            self.layers.append((name, module))
        if not self.layers:
            raise MintError("concurrent tuning: the model carries no LoRA layers")
        self._segments: list[Segment] | None = None
        self._rows = 0
        self._installed = False
        self.fused_calls = self.segment_calls = 0  # routed layer calls: one batched product / per segment

    # ------------------------------------------------------------------ install / remove
    def install(self) -> MixedLoRA:
        """Put the routing forward on every LoRA layer (a no-op for them until :meth:`route`)."""
        for i, (_, layer) in enumerate(self.layers):
            layer.forward = functools.partial(self._forward, i, layer)
        self._installed = True
        return self

    def remove(self) -> None:
        """Give every layer its peft forward back."""
        for _, layer in self.layers:
            layer.__dict__.pop("forward", None)
        self._installed = False

    def __enter__(self) -> MixedLoRA:
        return self.install()

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    # ------------------------------------------------------------------ routing
    @contextlib.contextmanager
    def route(self, segments: Sequence[Segment]) -> Iterator[None]:
        """Within the block, row ``start:stop`` of every layer input goes through adapter ``segments[i][0]``.

        Segments must be consecutive from row 0 and cover the batch; an adapter may appear in several.
        """
        if not self._installed:
            raise RuntimeError("MixedLoRA.route called before install()")
        pos = 0
        for adapter, start, stop in segments:
            if adapter not in self.adapters:
                raise MintError(f"concurrent tuning: unknown adapter {adapter!r}")
            if start != pos or stop <= start:
                raise ValueError(f"segments must be consecutive and non-empty, got {list(segments)}")
            pos = stop
        self._segments, self._rows = list(segments), pos
        try:
            yield
        finally:
            self._segments = None

    def parameters(self, adapter: str) -> list[torch.nn.Parameter]:
        """The LoRA weights of ``adapter`` (A then B of each layer that carries it, in module order)."""
        out: list[torch.nn.Parameter] = []
        for _, layer in self.layers:
            if adapter in layer.lora_A:
                out += [layer.lora_A[adapter].weight, layer.lora_B[adapter].weight]
        return out

    def _forward(self, index: int, layer: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        segments = self._segments
        if segments is None:
            return type(layer).forward(layer, x, *args, **kwargs)
        if layer.merged or layer.disable_adapters:
            raise MintError(
                f"concurrent tuning: layer {self.layers[index][0]} has merged or disabled adapters"
            )
        if x.shape[0] != self._rows:
            raise MintError(
                f"concurrent tuning: layer {self.layers[index][0]} gets {x.shape[0]} rows for a batch of "
                f"{self._rows} samples, so its rows cannot be routed per sample (this happens on vision "
                "towers that flatten or split images); use --tower language or train without "
                "--concurrent"
            )
        result = layer.base_layer(x, *args, **kwargs)
        names = [a for a, _, _ in segments]
        if not any(a in layer.lora_A for a in names):
            return result
        # peft's casts: the input goes to the LoRA weights' dtype (float32 when peft keeps them so over a
        # bf16/fp16 backbone), the low-rank product is added in that dtype, the sum cast back to the output's
        lora_dtype = next(layer.lora_A[n].weight.dtype for n in names if n in layer.lora_A)
        if _batched(layer, names, segments):
            # equal segments: one batched low-rank product for all, fused with the add (no copy of the output)
            self.fused_calls += 1
            k = len(segments)
            a = torch.stack([layer.lora_A[n].weight for n in names])  # k, r, in
            b = torch.stack([layer.lora_B[n].weight * layer.scaling[n] for n in names])  # k, out, r
            xa = torch.bmm(x.reshape(k, -1, x.shape[-1]).to(lora_dtype), a.transpose(1, 2))
            base = result.reshape(k, -1, result.shape[-1]).to(lora_dtype)
            return torch.baddbmm(base, xa, b.transpose(1, 2)).view(result.shape).to(result.dtype)
        self.segment_calls += 1
        parts = []
        for adapter, start, stop in segments:
            if adapter in layer.lora_A:
                lora_a, lora_b = layer.lora_A[adapter], layer.lora_B[adapter]
                part = x[start:stop].to(lora_a.weight.dtype)
                parts.append(lora_b(lora_a(part)) * layer.scaling[adapter])
            else:  # this adapter leaves the layer alone (--tower auto): its rows get the base output
                parts.append(result.new_zeros((stop - start, *result.shape[1:]), dtype=lora_dtype))
        # out of place, as peft's own forward: the base output may be a leaf (frozen layer, input without grad)
        return (result + (parts[0] if len(parts) == 1 else torch.cat(parts))).to(result.dtype)


def _batched(layer: Any, names: list[str], segments: Sequence[Segment]) -> bool:
    """Whether the segments can share one batched product: several of equal size, every adapter in this layer
    with the same rank and its weights in one dtype (the backbone's may differ: see the casts in ``_forward``)."""
    if len(segments) < 2 or len({stop - start for _, start, stop in segments}) != 1:
        return False
    if not all(n in layer.lora_A for n in names):
        return False
    weights = [layer.lora_A[n].weight for n in names] + [layer.lora_B[n].weight for n in names]
    return len({w.shape for w in weights[: len(names)]}) == 1 and len({w.dtype for w in weights}) == 1
