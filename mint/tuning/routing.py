"""Routing each task to its group's adapter on one resident backbone.

:func:`load_adapters` puts every adapter of a run folder onto ``vlm.model`` (a ``PeftModel``);
:class:`Router` maps task -> adapter and orders the work by adapter, so each adapter is activated
once; :func:`active_adapter` switches the active adapter (``None``: the bare backbone).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mint.artifacts import Grouping
from mint.errors import MintError
from mint.io import check_safetensors, read_json
from mint.tasks.schema import Sample
from mint.tuning.continual_methods import attach_saved
from mint.tuning.runs import load_run_model, load_run_tasks, load_tune
from mint.tuning.serving import Item, answer_routed
from mint.tuning.serving import active_adapter as active_adapter  # where continual training takes it from

BASE = None  # the bare backbone (adapters disabled)


def run_routing(run_dir: str | Path) -> dict[str, str] | None:
    """The run's own task -> adapter routing (tune.json ``routing``, written by continual runs, whose
    ``sequential`` mode sends every task to one shared adapter), or None: route by groups.json."""
    path = Path(run_dir) / "tune.json"
    if not path.is_file():
        return None
    routing = read_json(path, "tune.json").get("routing")
    if routing is None:
        return None
    if not isinstance(routing, dict) or not all(isinstance(v, str) for v in routing.values()):
        raise MintError(f"{path}: routing: expected an object of task -> adapter name")
    return dict(routing)


def run_adapters(run_dir: str | Path) -> dict[str, Path]:
    """``{adapter: adapter folder}`` of a run: its groups in groups.json order (or its routing's adapters)."""
    run = Path(run_dir)
    routing = run_routing(run)
    if routing is not None:
        names = list(dict.fromkeys(routing.values()))
    else:
        names = Grouping.load(run / "groups.json").adapter_ready().names
    out: dict[str, Path] = {}
    for g in names:
        folder = run / "adapters" / g
        if not (folder / "adapter_config.json").is_file():
            raise MintError(
                f"{run}: no adapter for group {g!r} (expected {folder}/adapter_config.json); "
                "is the run finished? (mint tune --resume continues it)"
            )
        out[g] = folder
    return out


def load_adapters(vlm: Any, run_dir: str | Path, exclusive: bool = True) -> Any:
    """Load every adapter of ``run_dir`` onto ``vlm.model`` (made a ``PeftModel``); returns it, in eval mode.

    Adapters already present under the same names (e.g. right after tuning) are replaced; with
    ``exclusive``, adapters of other runs are removed, so one backbone can evaluate several runs in turn.
    """
    from peft import PeftModel

    folders = run_adapters(run_dir)
    model = vlm.model
    if exclusive and isinstance(model, PeftModel):
        model = model.unload()  # the bare backbone again (LoRA layers removed, nothing merged)
    for folder in folders.values():
        check_safetensors(folder, "adapter weights")
    for name, folder in folders.items():
        if isinstance(model, PeftModel):
            if name in model.peft_config:
                with warnings.catch_warnings():  # "adapter X was active which is now deleted"
                    warnings.simplefilter("ignore", UserWarning)
                    model.delete_adapter(name)
            model.load_adapter(str(folder), adapter_name=name)
        else:
            with (
                warnings.catch_warnings()
            ):  # transformers' deprecation of is_gradient_checkpointing, hit by peft
                warnings.filterwarnings(
                    "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
                )
                model = PeftModel.from_pretrained(model, str(folder), adapter_name=name)
    for name, folder in folders.items():  # learned routers of continual methods (moe-lora, mr-lora)
        attach_saved(model, name, folder)
    model.set_adapter(next(iter(folders)), inference_mode=True)
    model.eval()
    vlm.model = model
    return model


class Router:
    """Task -> adapter (group) mapping of a run; given a run folder, also the run's backbone with its adapters,
    answering batches of requests of any tasks at once.

    ``Router({task: adapter})`` is the mapping alone. ``Router(run)`` reads the run's mapping; :meth:`answer`
    takes ``(task, image, text)`` requests and answers each through its task's adapter in mixed batches
    (:mod:`mint.tuning.serving`), loading the run's backbone (as tuned: dtype, quantisation) and adapters on
    first use, or putting the adapters on ``vlm`` when one is given. The tasks (instructions, answer sets)
    are the run's suite's unless ``tasks`` are given.
    """

    def __init__(
        self,
        run: str | Path | dict[str, str],
        vlm: Any = None,
        *,
        device: str = "auto",
        batch_size: int = 8,
        tasks: Sequence[Any] | None = None,
    ) -> None:
        self.run: Path | None = None
        if isinstance(run, dict):
            self.assignment = dict(run)
        else:
            self.run = Path(run)
            self.assignment = _run_assignment(self.run)
        self._vlm, self._ready = vlm, False
        self.device, self.batch_size = device, batch_size
        self._tasks: dict[str, Any] | None = {t.name: t for t in tasks} if tasks is not None else None

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Router:
        return cls(_run_assignment(Path(run_dir)))

    def adapter_for(self, task: str) -> str:
        if task not in self.assignment:
            raise MintError(
                f"task {task!r} is in no group of this run (groups: "
                f"{', '.join(sorted(set(self.assignment.values())))})"
            )
        return self.assignment[task]

    def plan(self, tasks: list[str]) -> dict[str, list[str]]:
        """``{adapter: [tasks]}`` for ``tasks``, adapters in first-use order (one activation each)."""
        out: dict[str, list[str]] = {}
        for t in tasks:
            out.setdefault(self.adapter_for(t), []).append(t)
        return out

    # ------------------------------------------------------------------ answering
    @property
    def vlm(self) -> Any:
        """The backbone carrying the run's adapters (loaded on first use)."""
        if self.run is None:
            raise MintError("this Router holds a mapping only; give it a run folder to answer requests")
        if not self._ready:
            if self._vlm is None:
                self._vlm = load_run_model(load_tune(self.run), device=self.device)
            load_adapters(self._vlm, self.run)
            self._ready = True
        return self._vlm

    def tasks(self) -> dict[str, Any]:
        """The run's tasks by name (instructions and answer sets), from its suite."""
        if self._tasks is None:
            if self.run is None:
                raise MintError("this Router holds a mapping only; give it a run folder to answer requests")
            self._tasks = {t.name: t for t in load_run_tasks(load_tune(self.run))}
        return self._tasks

    def answer(self, requests: Sequence[tuple[str, Any, str]], *, progress: bool = False) -> list[str]:
        """Answers to ``(task, image, text)`` requests (image: a PIL image, an array, a file path or None),
        each through its task's adapter, in batches that mix tasks and adapters."""
        tasks = self.tasks()
        items = []
        for i, (name, image, text) in enumerate(requests):
            if name not in tasks:
                raise MintError(f"request {i}: unknown task {name!r} (the run's tasks: {', '.join(tasks)})")
            items.append(Item(tasks[name], Sample(id=str(i), text=text or "", answer="", image=_image(image)),
                              self.adapter_for(name)))  # fmt: skip
        return answer_routed(self.vlm, items, batch_size=self.batch_size, progress=progress)

    def answer_items(self, items: Sequence[Any], *, progress: bool = False) -> list[str]:
        """:func:`mint.tuning.serving.answer_routed` on the run's backbone (items name their adapters)."""
        return answer_routed(self.vlm, items, batch_size=self.batch_size, progress=progress)


def _run_assignment(run: Path) -> dict[str, str]:
    routing = run_routing(run)
    if routing is not None:
        return routing
    return Grouping.load(run / "groups.json").adapter_ready().assignment


def _image(image: Any) -> Any:
    """A request's image as the sample schema takes it (a path is opened as RGB)."""
    if isinstance(image, (str, Path)):
        from PIL import Image

        with Image.open(image) as im:
            return im.convert("RGB")
    return image
