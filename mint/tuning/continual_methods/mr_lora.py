"""``--continual mr-lora``: MR-LoRA, one expert LoRA per stage and a router LoRA that picks a sample's expert at
inference (Zhao et al. 2025, "MLLM-CL: Continual Learning for Multimodal Large Language Models", arXiv:2506.05453;
MCITlib v3's MR-LoRA).

Each stage trains its own expert LoRA on the backbone (as ``per-group``). Then the router, one more LoRA on the
same backbone (adapter ``mr-lora``), is trained again from a fresh seeded initialisation on a small replay set:
``samples`` training samples of every task seen so far (a seeded buffer per task), each shown as a routing
question (the task's instruction and the sample's text, with its image) whose answer is its stage's number
(``one`` .. ``nine``, then ``10``, ``11`` ..). At inference the router scores the ``k`` numbers for a sample (the backbone's closed-answer
scoring) and the chosen expert answers it: routing per sample, learned, where ``per-group`` routes by task name.

Saved as peft adapters (``adapters/<group>/`` for the experts, ``adapters/mr-lora/`` for the router with
``router.json``: the experts in stage order); :func:`mint.tuning.routing.load_adapters` loads the experts named
there, and ``mint evaluate`` sends each sample to its expert with :func:`route_items`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from mint.errors import MintError
from mint.io import read_json
from mint.tasks.schema import Sample, Task
from mint.tuning.continual_methods.base import Finished, Method
from mint.tuning.continual_methods.replay import buffer_order
from mint.tuning.continual_methods.stacked import lora_layers
from mint.tuning.data import Example
from mint.tuning.serving import Item, active_adapter, answer_routed

ROUTER = "mr-lora"
ROUTER_FILE = "router.json"
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def expert_label(i: int) -> str:
    """The router's answer for expert ``i`` (0-based): a number word up to nine (small vocabularies know them),
    then numerals."""
    return NUMBER_WORDS[i] if i < len(NUMBER_WORDS) else str(i + 1)


def router_task(n_experts: int) -> Task:
    """The routing question: which of ``n_experts`` experts (numbered from 1) should answer."""
    return Task(
        name=ROUTER,
        instruction=f"which expert should answer this request ? answer with its number from one to "
        f"{expert_label(n_experts - 1)} .",
        train=[],
        test=[],
        answers=[expert_label(i) for i in range(n_experts)],
    )


def router_sample(task: Any, sample: Any, stage: int | None = None) -> Sample:
    """``sample`` of ``task`` as a routing question (the user's request: instruction, text and image); its
    answer is the stage's label (empty when unknown)."""
    text = " ".join(x for x in (task.instruction, sample.text) if x)
    return Sample(
        id=f"{task.name}/{sample.id}",
        text=text,
        answer="" if stage is None else expert_label(stage),
        image=sample.image_source,
    )


@dataclass(frozen=True)
class Routed:
    """Evaluate through the router, choosing among ``experts`` (adapter names, stage order)."""

    experts: tuple[str, ...]

    def predict(
        self, vlm: Any, task: Any, samples: list[Any], mode: str = "both", **kwargs: Any
    ) -> list[str]:
        """``vlm.predict``'s answers, each sample answered by the expert the router picks (mode ``both``)."""
        if mode != "both":
            raise MintError(f"mr-lora routes prompts with both modalities, not {mode!r}")
        return predict_routed(vlm, task, samples, list(self.experts), **kwargs)[0]


def predict_routed(
    vlm: Any,
    task: Any,
    samples: list[Any],
    experts: list[str],
    *,
    batch_size: int = 8,
    progress: bool = False,
    demos: Any = (),
) -> tuple[list[str], list[int]]:
    """Answers for ``samples``, each by the expert the router picks, and the picked expert indices."""
    with active_adapter(vlm, ROUTER):
        picks = vlm.predict(
            router_task(len(experts)),
            [router_sample(task, s) for s in samples],
            "both",
            batch_size=batch_size,
            progress=progress,
        )
    labels = [expert_label(i) for i in range(len(experts))]
    chosen = [labels.index(p) for p in picks]
    answers: list[str] = [""] * len(samples)
    for e, adapter in enumerate(experts):
        idx = [i for i, c in enumerate(chosen) if c == e]
        if not idx:
            continue
        with active_adapter(vlm, adapter):
            out = vlm.predict(
                task, [samples[i] for i in idx], "both", batch_size=batch_size, progress=progress, demos=demos
            )
        for i, a in zip(idx, out):
            answers[i] = a
    return answers, chosen


def route_items(vlm: Any, items: list[Any], batch_size: int = 8) -> list[Any]:
    """``items`` (:class:`mint.tuning.serving.Item`) whose adapter is a loaded router (see
    :func:`attach_saved_router`) sent to the expert the router picks for each; other items unchanged."""
    routed = [(i, saved_router(vlm, it.adapter)) for i, it in enumerate(items) if it.adapter is not None]
    routed = [(i, r) for i, r in routed if r is not None]
    if not routed:
        return list(items)
    questions = [
        Item(router_task(len(r.experts)), router_sample(items[i].task, items[i].sample), items[i].adapter)
        for i, r in routed
    ]
    picks = answer_routed(vlm, questions, batch_size=batch_size)
    out = list(items)
    for (i, r), pick in zip(routed, picks):
        labels = [expert_label(e) for e in range(len(r.experts))]
        out[i] = replace(items[i], adapter=r.experts[labels.index(pick)])
    return out


def saved_router(vlm: Any, adapter: str) -> Routed | None:
    """The :class:`Routed` of a loaded router adapter (see :func:`attach_saved_router`), else None."""
    return (getattr(vlm.model, "_mint_routers", None) or {}).get(adapter)


def saved_experts(folder: str | Path) -> list[str]:
    """The experts a saved router folder names (``router.json``), or [] when it is not a router."""
    path = Path(folder) / ROUTER_FILE
    if not path.is_file():
        return []
    experts = read_json(path, ROUTER_FILE).get("experts")
    if not isinstance(experts, list) or not experts or not all(isinstance(e, str) for e in experts):
        raise MintError(f"{path}: experts: expected a non-empty list of adapter names")
    return experts


def attach_saved_router(peft_model: Any, adapter: str, folder: str | Path) -> None:
    """Load the experts a router folder names (from its sibling folders) and register the router on the model
    (no-op for other adapters)."""
    experts = saved_experts(folder)
    if not experts:
        return
    for name in experts:
        expert = Path(folder).parent / name
        if not (expert / "adapter_config.json").is_file():
            raise MintError(f"{Path(folder) / ROUTER_FILE}: expert {name!r} has no adapter in {expert}")
        if name not in peft_model.peft_config:
            peft_model.load_adapter(str(expert), adapter_name=name)
    routers = dict(getattr(peft_model, "_mint_routers", None) or {})
    routers[adapter] = Routed(tuple(experts))
    peft_model._mint_routers = routers


class MRLoRA(Method):
    name = ROUTER
    answered_by = ROUTER

    def extra_adapters(self) -> list[str]:
        return [ROUTER]

    def stage_adapters(self, stages: list[str]) -> dict[str, str]:
        if ROUTER in stages:
            raise MintError(f"continual mr-lora: a group may not be named {ROUTER!r} (the router)")
        return {g: g for g in stages}

    def extra_phase(
        self, si: int, stages: list[str], members: dict[str, list[str]], tasks: dict[str, Any], seed: int
    ) -> tuple[str, str, list[Any]]:
        """The router's training after stage ``si``: ``(label, adapter, examples)``."""
        question = router_task(si + 1)
        n = int(self.params["samples"])
        examples = []
        for stage, group in enumerate(stages[: si + 1]):
            for name in members[group]:
                train = list(tasks[name].train)
                for i in buffer_order(len(train), seed, f"router/{name}")[:n]:
                    examples.append(Example(question, router_sample(tasks[name], train[i], stage)))
        return f"{stages[si]}.router", ROUTER, examples

    def prepare_phase(self, peft_model: Any, si: int, seed: int) -> None:
        """A fresh, seeded router before each stage's router training."""
        torch.manual_seed(seed + 7919 * (si + 1))
        for _, layer in lora_layers(peft_model):
            if ROUTER in layer.lora_A:
                layer.reset_lora_parameters(ROUTER, True)

    def eval_adapter(self, si: int, group: str, stages: list[str], adapter_of: dict[str, str]) -> Any:
        return Routed(tuple(adapter_of[g] for g in stages[: si + 1]))

    def on_finish(self, run: Finished) -> dict[str, dict[str, Any]]:
        experts = [run.adapter_of[g] for g in run.stages]
        run.write_on_main(run.adapters_dir / ROUTER / ROUTER_FILE, {"experts": experts})
        attach_saved_router(run.peft_model, ROUTER, run.adapters_dir / ROUTER)
        return {ROUTER: {"path": f"adapters/{ROUTER}", "routes_to": experts}}
