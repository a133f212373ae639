"""A tuning run's inputs as its tune.json records them: the checked tune.json, the suite's tasks sampled as
they were for training, the backbone loaded as it was tuned, and the in-context setting. Evaluation,
serving (:class:`~mint.tuning.routing.Router`) and export all start from these."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mint.artifacts.runs import TuneRun
from mint.errors import MintError
from mint.models import load_model
from mint.models.load_options import prepare_kbit
from mint.tasks import load_suite
from mint.tasks.demos import check_in_context


def load_tune(run_dir: str | Path) -> dict[str, Any]:
    """The run folder's checked tune.json payload (:class:`~mint.artifacts.runs.TuneRun` for the object)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise MintError(f"{run}: no such run folder")
    return TuneRun.load(run).data


def load_run_tasks(tune: dict[str, Any], suite: str | None = None, max_test: int | None = None) -> list[Any]:
    """The run's suite (or ``suite``), loaded with the seed it was sampled with (tune.json ``data_seed``,
    else the run's seed) and the run's caps."""
    spec = suite or tune.get("suite")
    if not spec:
        raise MintError("the run's tune.json names no suite; pass --suite")
    return load_suite(
        spec,
        seed=int(tune.get("data_seed", tune.get("seed", 0))),
        max_train=tune.get("max_train"),
        max_test=max_test if max_test is not None else tune.get("max_test"),
    )


def load_run_model(
    tune: dict[str, Any],
    model: str | None = None,
    device: str = "auto",
    device_map: str | None = None,
    attn_implementation: str | None = None,
) -> Any:
    """The run's backbone as it was tuned: its dtype and, for a QLoRA run, the same quantised base
    (tune.json ``quantize``, prepared as for training); placement and attention kernel as asked."""
    spec = model or tune.get("model")
    if not spec:
        raise MintError("the run's tune.json names no model; pass --model")
    vlm = load_model(
        spec,
        device=device,
        dtype=tune.get("dtype") or "float32",
        device_map=device_map,
        attn_implementation=attn_implementation or tune.get("attn_implementation"),
        quantize=tune.get("quantize"),
    )
    if tune.get("quantize"):
        prepare_kbit(vlm)
    return vlm


def run_in_context(
    tune: dict[str, Any], in_context: int | None = None, demo_selection: str | None = None
) -> tuple[int, str]:
    """The demonstrations an evaluation uses: the run's (tune.json config) unless overridden."""
    cfg = tune.get("config") or {}
    k = cfg.get("in_context", 0) if in_context is None else in_context
    selection = demo_selection or cfg.get("demo_selection", "random")
    return check_in_context(k, selection), selection
