"""Stacked LoRA: one LoRA per stage, the earlier stages' LoRAs frozen but active, all of them summed.

Stage ``s`` trains a fresh adapter (named after its group) while the adapters of stages ``0 .. s-1`` stay active
and frozen, so the new LoRA learns on top of the earlier ones, as in O-LoRA (earlier LoRAs frozen and summed) and
SEFE's RegLoRA (earlier LoRAs merged into the backbone). The evaluation after stage ``s`` answers every seen task
with the sum of adapters ``0 .. s``. At the end the stages' adapters are written as ONE plain LoRA adapter,
``adapters/<method>/`` (rank ``r * stages``: the stages' ``A`` stacked by rows, their ``B`` by columns, alpha
``alpha * stages`` so each keeps its scale ``alpha / r``), which tune.json's routing sends every task to: ``mint
evaluate`` loads it as any peft adapter (safetensors + JSON).
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from mint.errors import MintError
from mint.io import file_mode
from mint.tuning.continual_methods.base import AdapterSpec, Finished, Method, StageHooks


def lora_layers(peft_model: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` of every LoRA layer (a module with ``lora_A`` / ``lora_B`` dicts of linear layers)."""
    return [
        (name, m)
        for name, m in peft_model.named_modules()
        if isinstance(getattr(m, "lora_A", None), torch.nn.ModuleDict)
        and isinstance(getattr(m, "lora_B", None), torch.nn.ModuleDict)
    ]


def activate_stacked(peft_model: Any, earlier: list[str], adapter: str) -> None:
    """``earlier`` adapters and ``adapter`` active together (their updates summed), only ``adapter`` trainable."""
    peft_model.base_model.set_adapter([*earlier, adapter])
    for _, layer in lora_layers(peft_model):
        for name in earlier:
            for d in (layer.lora_A, layer.lora_B):
                if name in d:
                    d[name].requires_grad_(False)


def combined_state(peft_model: Any, adapters: list[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights and LoraConfig fields of one LoRA equal to the sum of ``adapters`` (same rank and alpha):
    ``A`` stacked by rows, ``B`` by columns (zeros where an adapter does not reach a module)."""
    from peft.utils import get_peft_model_state_dict

    configs = [peft_model.peft_config[a] for a in adapters]
    first = configs[0]
    if any(c.r != first.r or c.lora_alpha != first.lora_alpha or c.use_rslora for c in configs):
        raise MintError("stacked LoRA: the stages' adapters must share rank and alpha (and not use rsLoRA)")
    states = [get_peft_model_state_dict(peft_model, adapter_name=a) for a in adapters]
    modules = list(dict.fromkeys(k.rsplit(".lora_", 1)[0] for s in states for k in s if ".lora_" in k))
    r = first.r
    out: dict[str, torch.Tensor] = {}
    for mod in modules:
        a_key, b_key = f"{mod}.lora_A.weight", f"{mod}.lora_B.weight"
        shape_a = next(s[a_key].shape for s in states if a_key in s)
        shape_b = next(s[b_key].shape for s in states if b_key in s)
        out[a_key] = torch.cat([s.get(a_key, torch.zeros(shape_a)).detach().float().cpu() for s in states], 0)
        out[b_key] = torch.cat([s.get(b_key, torch.zeros(shape_b)).detach().float().cpu() for s in states], 1)
    targets = [c.target_modules for c in configs]
    if all(t == targets[0] for t in targets):
        target = targets[0]
    elif all(isinstance(t, str) for t in targets):
        target = "|".join(f"(?:{t})" for t in dict.fromkeys(targets))
    else:
        target = sorted({x for t in targets for x in ([t] if isinstance(t, str) else t)})
    dtype = next(iter(states[0].values())).dtype
    out = {k: v.to(dtype).contiguous() for k, v in out.items()}
    return out, {
        "r": r * len(adapters),
        "lora_alpha": first.lora_alpha * len(adapters),
        "target_modules": target,
    }


def write_combined(peft_model: Any, adapters: list[str], folder: Path) -> None:
    """``folder`` (replaced atomically): adapter_config.json + adapter_model.safetensors of the summed LoRA."""
    from safetensors.torch import save_file

    weights, fields = combined_state(peft_model, adapters)
    config = copy.deepcopy(peft_model.peft_config[adapters[0]])
    for key, value in fields.items():
        setattr(config, key, value)
    config.inference_mode = True
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}.") as tmp:
        staged = Path(tmp) / "adapter"
        config.save_pretrained(str(staged))
        save_file(weights, str(staged / "adapter_model.safetensors"), metadata={"format": "pt"})
        (staged / "adapter_model.safetensors").chmod(file_mode())  # outputs follow the umask
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)


class Stacked(Method):
    """Per-stage LoRAs trained on top of the earlier ones and summed; subclasses add the penalty."""

    @property
    def answered_by(self) -> str:  # type: ignore[override]
        """Every task is answered by the summed adapter, named after the method."""
        return self.name

    def penalty(self, peft_model: Any, earlier: list[str], adapter: str) -> Any:
        """``penalty()`` for the stage that trains ``adapter`` after ``earlier`` (None: no penalty)."""
        return None

    def stage_hooks(
        self, peft_model: Any, si: int, stages: list[str], adapter_of: dict[str, str]
    ) -> StageHooks:
        earlier = [adapter_of[g] for g in stages[:si]]
        if self.name in stages:
            raise MintError(
                f"continual {self.name}: a group may not be named {self.name!r} (the summed adapter)"
            )
        return StageHooks(
            activate=lambda model, adapter: activate_stacked(model, earlier, adapter),
            penalty=self.penalty(peft_model, earlier, adapter_of[stages[si]]),
        )

    def eval_adapter(self, si: int, group: str, stages: list[str], adapter_of: dict[str, str]) -> AdapterSpec:
        return tuple(adapter_of[g] for g in stages[: si + 1])

    def on_finish(self, run: Finished) -> dict[str, dict[str, Any]]:
        import warnings

        names = [run.adapter_of[g] for g in run.stages]
        folder, peft_model = run.adapters_dir / self.name, run.peft_model
        if run.accelerator.is_main_process:
            write_combined(peft_model, names, folder)
        run.accelerator.wait_for_everyone()
        if self.name in peft_model.peft_config:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                peft_model.delete_adapter(self.name)
        peft_model.load_adapter(str(folder), adapter_name=self.name)
        peft_model.set_adapter(self.name, inference_mode=True)
        rank = peft_model.peft_config[self.name].r
        return {self.name: {"path": f"adapters/{self.name}", "summed": names, "rank": rank}}
