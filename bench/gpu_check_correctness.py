"""GPU correctness checks of attention masks, precision, devices and ranks, memory options, mixed LoRA in
bf16 and checkpoints, run by bench/gpu_check.py (which imports ``checks()`` when this file is present).

Each check is ``fn(device, small) -> dict`` of figures and booleans, with ``"ok"`` saying whether every
verification in it held. They use the embedded ``tiny`` backbone and the ``builtin:mini`` suite, nothing
downloaded. ``small`` (and a CPU device) keeps them to a few samples and steps; checks that need a GPU (fp16
loss scaling, the CUDA RNG state) say so in their figures instead of failing on a CPU.

    python bench/gpu_check_correctness.py [--device cuda] [--small]   # these checks alone, JSON on stdout
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run alone: this checkout's mint
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

Check = Callable[[torch.device, bool], dict[str, Any]]


# ---------------------------------------------------------------------------------------------- helpers
def _dtype(device: torch.device, small: bool) -> str:
    """bfloat16 on a GPU (the precision policy's default), float32 on the CPU or in small runs."""
    return "bfloat16" if device.type == "cuda" and not small else "float32"


def _tasks(small: bool, n_tasks: int | None = None) -> list[Any]:
    from mint.tasks import load_suite

    n = 4 if small else 16
    tasks = load_suite("builtin:mini", seed=0, max_train=n, max_test=n)
    return tasks[: n_tasks or (3 if small else 6)]


def _groups(tasks: list[Any]) -> dict[str, list[str]]:
    half = max(1, len(tasks) // 2)
    return {"g1": [t.name for t in tasks[:half]], "g2": [t.name for t in tasks[half:]]}


def _adapters(vlm: Any, groups: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return {
        f"{g}/{k}": v.detach().float().cpu()
        for g in groups
        for k, v in get_peft_model_state_dict(vlm.model, adapter_name=g).items()
    }


def _max_rel_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest |a - b| over a tensor, relative to that tensor's largest |a|."""
    return max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp(min=1e-12)) for k in a)


@contextlib.contextmanager
def _env(**values: str | None) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _accelerator(device: torch.device, precision: Any = None) -> Any:
    """A fresh accelerator (accelerate keeps one mixed-precision setting per process: the checks change it)."""
    from accelerate.state import AcceleratorState

    from mint.tuning import TuneConfig, make_accelerator

    AcceleratorState._reset_state()
    return make_accelerator(TuneConfig(), precision, cpu=device.type == "cpu")


def _tune(device: torch.device, small: bool, out: Path, dtype: str, **options: Any) -> tuple[Any, dict]:
    """``tiny`` tuned on two groups of ``builtin:mini`` on ``device`` (sequential unless ``concurrent``)."""
    from mint.models import load_model
    from mint.tuning import TuneConfig, tune_groups
    from mint.tuning.concurrent import tune_concurrent
    from mint.tuning.precision import training_precision

    concurrent = options.pop("concurrent", False)
    on_step = options.pop("on_step", None)
    resume = options.pop("resume", False)
    cfg = TuneConfig(
        **{"batch_size": 4, "epochs": 1, "lr": 5e-3, "dropout": 0.0, "checkpoint_every": 0, **options}
    )
    precision = training_precision(dtype, device.type)
    accelerator = _accelerator(device, precision)
    vlm = load_model("tiny", device=str(accelerator.device), dtype=precision.dtype)
    tasks = _tasks(small)
    train = tune_concurrent if concurrent else tune_groups
    result = train(
        vlm,
        tasks,
        _groups(tasks),
        out,
        cfg,
        accelerator=accelerator,
        progress=False,
        on_step=on_step,
        resume=resume,
        force=not resume,
    )
    return vlm, result


# ---------------------------------------------------------------------------------------------- checks
def attention_masks(device: torch.device, small: bool) -> dict[str, Any]:
    """Scores equal under eager and SDPA attention (cached, expanded and shared-prefix passes), and under
    flash-attention 2 where it is installed (it takes the padding-mask fallback)."""
    from mint.models import load_model
    from mint.models.scoring import (
        answer_logprobs,
        answer_logprobs_expanded,
        answer_logprobs_shared,
        takes_4d_mask,
    )

    dtype = _dtype(device, small)
    tasks = _tasks(small, 2)
    implementations = ["eager", "sdpa"]
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None and dtype != "float32":
        implementations.append("flash_attention_2")
    scores: dict[str, dict[str, torch.Tensor]] = {}
    for impl in implementations:
        vlm = load_model("tiny", device=str(device), dtype=dtype, attn_implementation=impl)
        out: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            for task in tasks:
                both = [vlm.build_prompt(task, s, "both") for s in task.test]
                image = [vlm.build_prompt(task, s, "image")[0] for s in task.test]
                texts, images = [p for p, _ in both], [i for _, i in both]
                out[f"{task.name}/cached"] = answer_logprobs(vlm, texts, images, task.answers).float().cpu()
                out[f"{task.name}/expanded"] = (
                    answer_logprobs_expanded(vlm, texts, images, task.answers).float().cpu()
                )
                shared = answer_logprobs_shared(vlm, texts, image, images, task.answers)
                if shared is not None:
                    out[f"{task.name}/shared"] = shared[0].float().cpu()
        scores[impl] = out
        scores[impl]["_takes_4d"] = torch.tensor(float(takes_4d_mask(vlm)))
    tol = 1e-3 if dtype == "float32" else 0.25  # nats; the boolean-mask bug moved scores by up to 15
    figures: dict[str, Any] = {"dtype": dtype, "implementations": implementations, "tolerance_nats": tol}
    ok = True
    ref = scores["sdpa"]
    for impl in implementations[0:1] + implementations[2:]:
        diffs = {
            k: float((scores[impl][k] - ref[k]).abs().max())
            for k in ref
            if not k.startswith("_") and k in scores[impl]
        }
        figures[f"{impl}_vs_sdpa_max_abs_diff"] = max(diffs.values())
        figures[f"{impl}_paths_compared"] = len(diffs)
        ok &= max(diffs.values()) <= tol
    figures["shared_prefix_used_under_sdpa"] = any(k.endswith("/shared") for k in ref)
    if "flash_attention_2" in scores:
        figures["flash_attention_2_takes_4d_mask"] = bool(scores["flash_attention_2"]["_takes_4d"])
        ok &= not figures["flash_attention_2_takes_4d_mask"]
    cached_vs_expanded = max(
        float((ref[k] - ref[k.replace("/cached", "/expanded")]).abs().max())
        for k in ref
        if k.endswith("/cached")
    )
    figures["sdpa_cached_vs_expanded_max_abs_diff"] = cached_vs_expanded
    ok &= cached_vs_expanded <= tol and figures["shared_prefix_used_under_sdpa"]
    return {"ok": bool(ok), **figures}


def precision(device: torch.device, small: bool) -> dict[str, Any]:
    """The precision policy: bf16 by default on the GPU, fp16 only with the GradScaler, conflicts refused,
    finite training in each setting the device allows."""
    from mint.errors import MintError
    from mint.tuning.precision import training_precision

    figures: dict[str, Any] = {"default_dtype": training_precision(None, device.type).dtype}
    ok = figures["default_dtype"] == ("bfloat16" if device.type == "cuda" else "float32")
    refused = 0
    for dtype, mixed in (("float16", "bf16"), ("bfloat16", "fp16"), ("auto", "no")):
        try:
            training_precision(dtype, device.type, mixed)
        except MintError:
            refused += 1
    figures["conflicts_refused"] = f"{refused}/3"
    ok &= refused == 3
    runs = ["float32", "bfloat16"] + (["float16"] if device.type == "cuda" else [])
    for dtype in runs:
        with tempfile.TemporaryDirectory() as tmp:
            vlm, result = _tune(device, small, Path(tmp) / "run", dtype)
            losses = [a["final_loss"] for a in result["adapters"].values()]
            finite = all(v is not None and math.isfinite(v) for v in losses)
            weights_finite = all(v.isfinite().all() for v in _adapters(vlm, result["groups"]).values())
            figures[f"{dtype}_final_losses"] = losses
            figures[f"{dtype}_nonfinite_steps"] = sum(
                a.get("nonfinite_steps", 0) for a in result["adapters"].values()
            )
            figures[f"{dtype}_mixed_precision"] = training_precision(dtype, device.type).mixed_precision
            ok &= finite and weights_finite
    if device.type != "cuda":
        figures["float16"] = "not run: fp16 loss scaling needs a GPU"
    return {"ok": bool(ok), **figures}


def devices_and_ranks(device: torch.device, small: bool) -> dict[str, Any]:
    """The device rule (auto, LOCAL_RANK binding), direct-to-device loading, the launch hint."""
    from mint.models import load_model
    from mint.models.devices import LAUNCH_HINT, resolve_device

    figures: dict[str, Any] = {"auto": str(resolve_device("auto"))}
    ok = resolve_device("auto").type == device.type
    if device.type == "cuda":
        last = torch.cuda.device_count() - 1
        with _env(LOCAL_RANK=str(last)):
            figures["cuda_with_local_rank_last"] = str(resolve_device("cuda"))
            ok &= resolve_device("cuda") == torch.device("cuda", last)
        torch.cuda.reset_peak_memory_stats(device)
    vlm = load_model("tiny", device=str(device), dtype=_dtype(device, small))
    placed = {p.device for p in vlm.model.parameters()}
    figures["parameters_on"] = sorted(str(d) for d in placed)
    ok &= all(d.type == device.type for d in placed)
    figures["launch_hint_multi_gpu"] = "--multi_gpu" in LAUNCH_HINT and "--cpu" not in LAUNCH_HINT
    ok &= figures["launch_hint_multi_gpu"]
    return {"ok": bool(ok), **figures}


def memory(device: torch.device, small: bool) -> dict[str, Any]:
    """Gradient checkpointing (same adapters, peak memory with / without) and one-hidden-state features
    (equal to the output_hidden_states reference)."""
    from mint.models import load_model
    from mint.models.features import _pool

    figures: dict[str, Any] = {}
    runs = {}
    for on in (False, True):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with tempfile.TemporaryDirectory() as tmp:
            vlm, result = _tune(
                device, small, Path(tmp) / "run", _dtype(device, small), gradient_checkpointing=on
            )
            runs[on] = _adapters(vlm, result["groups"])
        if device.type == "cuda":
            figures[f"peak_mib_checkpointing_{'on' if on else 'off'}"] = round(
                torch.cuda.max_memory_allocated(device) / 2**20, 1
            )
    figures["checkpointing_adapters_max_rel_diff"] = _max_rel_diff(runs[False], runs[True])
    tol = 1e-4 if _dtype(device, small) == "float32" else 0.05
    ok = figures["checkpointing_adapters_max_rel_diff"] <= tol
    if device.type == "cuda":
        figures["peak_ratio_on_over_off"] = round(
            figures["peak_mib_checkpointing_on"] / figures["peak_mib_checkpointing_off"], 3
        )
    vlm = load_model("tiny", device=str(device), dtype=_dtype(device, small))
    task = _tasks(small, 1)[0]
    feats = vlm.features(task, task.test, batch_size=4)
    worst = 0.0
    with torch.inference_mode():
        for modality, layer in (("image", 0), ("text", -1)):
            for i, s in enumerate(task.test):
                prompt, images = vlm.build_prompt(task, s, modality)
                batch = vlm.collate([prompt], [images])
                hidden = vlm.model(**batch, output_hidden_states=True).hidden_states[layer].float()
                ids = batch["input_ids"]
                is_image = ids == vlm.image_token_id
                mask = is_image if modality == "image" else batch["attention_mask"].bool() & ~is_image
                want = _pool(hidden, mask)[0].cpu().numpy()
                worst = max(worst, float(abs(feats[modality][i] - want).max()))
    figures["features_vs_all_layers_max_abs_diff"] = worst
    ok &= worst <= (1e-4 if _dtype(device, small) == "float32" else 0.05)
    return {"ok": bool(ok), **figures}


def mixed_lora(device: torch.device, small: bool) -> dict[str, Any]:
    """Concurrent against sequential tuning in the device's training precision (bf16 on a GPU), with the
    fused mixed-LoRA path counted."""
    from mint.tuning import mixed_lora as mixed_module

    counts = {"fused": 0, "segment": 0}
    real_remove = mixed_module.MixedLoRA.remove

    def counting_remove(self: Any) -> Any:
        counts["fused"] += self.fused_calls
        counts["segment"] += self.segment_calls
        return real_remove(self)

    dtype = _dtype(device, small)
    with tempfile.TemporaryDirectory() as tmp:
        seq, _ = _tune(device, small, Path(tmp) / "seq", dtype)
        mixed_module.MixedLoRA.remove = counting_remove
        try:
            con, result = _tune(device, small, Path(tmp) / "con", dtype, concurrent=True)
        finally:
            mixed_module.MixedLoRA.remove = real_remove
    drift = _max_rel_diff(_adapters(seq, result["groups"]), _adapters(con, result["groups"]))
    tol = 1e-3 if dtype == "float32" else 0.02
    return {
        "ok": bool(counts["fused"] > 0 and drift <= tol),
        "dtype": dtype,
        "fused_layer_calls": counts["fused"],
        "segment_layer_calls": counts["segment"],
        "concurrent_vs_sequential_max_rel_diff": drift,
        "tolerance": tol,
    }


def checkpoints(device: torch.device, small: bool) -> dict[str, Any]:
    """A run stopped and resumed on the device ends where an uninterrupted one does; the checkpoint holds the
    CUDA RNG state of this device only and, under fp16, the loss scaler's state."""
    from mint.tuning import TrainingStopped
    from mint.tuning import checkpoint as ckpt

    dtype = "float16" if device.type == "cuda" else _dtype(device, small)
    figures: dict[str, Any] = {"dtype": dtype}
    with tempfile.TemporaryDirectory() as tmp:
        full, _ = _tune(device, small, Path(tmp) / "full", dtype, checkpoint_every=1, batch_size=2)
        out = Path(tmp) / "stopped"

        def stop(row: dict[str, Any]) -> None:
            if row["group"] == "g1" and row["step"] == 1:
                raise TrainingStopped("stopped after step 1")

        try:
            _tune(device, small, out, dtype, checkpoint_every=1, batch_size=2, on_step=stop)
        except TrainingStopped:
            pass
        folder = next(p for p in (out / "checkpoints").iterdir() if p.is_dir())
        loaded = ckpt.load_checkpoint(folder, 0)
        figures["checkpoint"] = folder.name
        figures["scaler_state_saved"] = loaded["scaler"] is not None
        cuda = loaded["rng"].get("cuda")
        figures["cuda_rng_state"] = (
            "none"
            if cuda is None
            else "one device"
            if isinstance(cuda, torch.Tensor)
            else f"{len(cuda)} devices"
        )
        resumed, result = _tune(device, small, out, dtype, checkpoint_every=1, batch_size=2, resume=True)
        figures["resumed_vs_uninterrupted_max_rel_diff"] = _max_rel_diff(
            _adapters(full, result["groups"]), _adapters(resumed, result["groups"])
        )
    ok = figures["resumed_vs_uninterrupted_max_rel_diff"] <= 1e-6
    if device.type == "cuda":
        ok &= figures["scaler_state_saved"] and figures["cuda_rng_state"] == "one device"
    return {"ok": bool(ok), **figures}


def checks() -> list[tuple[str, Check]]:
    """The checks, as ``(name, fn(device, small) -> dict)``, in the order bench/gpu_check.py runs them."""
    return [
        ("attention_masks", attention_masks),
        ("precision", precision),
        ("devices_and_ranks", devices_and_ranks),
        ("memory", memory),
        ("mixed_lora_bf16", mixed_lora),
        ("checkpoints", checkpoints),
    ]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    results = {}
    for name, fn in checks():
        try:
            results[name] = fn(device, args.small)
        except Exception as e:  # one failing check must not hide the others
            results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(f"{name}: {'ok' if results[name]['ok'] else 'FAILED'}", file=sys.stderr)
    print(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
