"""One GPU check, in under 5 minutes on one GPU: does mint compute the same on the GPU, and how fast and how
big are real model shapes?

``python bench/gpu_check.py [--device cuda] [--out gpu_check.json]``

(a) ``equality``: the embedded ``tiny`` on the device against the CPU: answer scores of ``builtin:mini``
    test prompts (largest difference, same answers) and one LoRA training step from the same start (loss and
    updated weights).
(b) ``throughput``: randomly initialised models of real shapes (Qwen2-VL-2B and LLaVA-1.5-7B, built from
    their configs in bench/model_shapes.py, nothing downloaded) in bfloat16: prediction (one scoring
    forward pass over a batch of image + text prompts) and tuning (forward, backward and an optimizer step of
    the LoRA weights) with one adapter and with K adapters in one mixed batch (each sample through its own),
    in samples/s and peak device memory, with the K / 1 ratios side by side.
(c) every figure into one JSON (``--out``).

bench/gpu_check_correctness.py, when present, contributes more checks: its ``checks()`` returns
``[(name, fn(device, small) -> dict)]``, run after these and stored under their names.

``--small`` shrinks everything (narrow two-layer versions of the same architectures, float32, few samples):
on a CPU it checks that the script runs (tests/project/test_gpu_check.py), the figures mean nothing there.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_env import ROOT  # first: one thread and no network before torch is imported

# isort: split
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from model_shapes import SHAPES, make_config  # noqa: E402

from mint.tuning.targets import target_regex  # noqa: E402


# ---------------------------------------------------------------------------------------------- (a) equality
def equality(device: torch.device, small: bool) -> dict[str, Any]:
    """tiny on ``device`` against the CPU: answer scores and one training step."""
    import copy

    from peft import LoraConfig, get_peft_model

    from mint.models import load_model
    from mint.models.scoring import answer_logprobs
    from mint.tasks import load_suite
    from mint.tuning.trainer import answer_loss

    n = 4 if small else 16
    tasks = load_suite("builtin:mini", seed=0, max_test=n, max_train=n)[: 3 if small else None]
    cpu, dev = load_model("tiny", device="cpu"), load_model("tiny", device=str(device))
    worst, same, rows = 0.0, True, 0
    for task in tasks:
        prompts = [cpu.build_prompt(task, s) for s in task.test]
        texts, images = [p for p, _ in prompts], [i for _, i in prompts]
        with torch.inference_mode():
            a = answer_logprobs(cpu, texts, images, task.answers)
            b = answer_logprobs(dev, texts, images, task.answers).cpu()
        worst = max(worst, float((a - b).abs().max()))
        same &= bool(torch.equal(a.argmax(-1), b.argmax(-1)))
        rows += len(texts)
    # one LoRA step from the same start on both devices
    torch.manual_seed(0)
    lora = LoraConfig(
        r=8,
        lora_alpha=16,
        target_modules=target_regex(cpu.model_type, "language", ("q_proj", "v_proj")),
        lora_dropout=0.0,
    )
    model_cpu = get_peft_model(cpu.model, lora)
    model_dev = copy.deepcopy(model_cpu).to(device)
    task = tasks[0]
    prompts = [cpu.build_prompt(task, s) for s in task.train]
    batch = cpu.collate(
        [p for p, _ in prompts], [i for _, i in prompts], answers=[s.answer for s in task.train]
    )
    losses, weights = [], []
    for model in (model_cpu, model_dev):
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-3)
        loss, count = answer_loss(
            model, {k: v.to(device if model is model_dev else "cpu") for k, v in batch.items()}
        )
        (loss / count).backward()
        opt.step()
        losses.append(float(loss / count))
        weights.append(torch.cat([p.detach().float().cpu().flatten() for p in params]))
    return {
        "score_rows": rows,
        "score_max_abs_diff": worst,
        "same_answers": same,
        "train_loss_cpu": losses[0],
        "train_loss_device": losses[1],
        "train_loss_abs_diff": abs(losses[0] - losses[1]),
        "step_weights_max_abs_diff": float((weights[0] - weights[1]).abs().max()),
    }


# ---------------------------------------------------------------------------------------------- (b) throughput
def synthetic_batch(
    config: Any, rows: int, text_len: int, device: torch.device, dtype: torch.dtype, side: int = 32
) -> dict:
    """Random image + text inputs of the right structure for ``config``'s architecture (Qwen2-VL: an image of
    ``side`` x ``side`` patches, 32 = 448 pixels; LLaVA: its fixed image size)."""
    g = torch.Generator().manual_seed(0)
    vocab = config.get_text_config().vocab_size
    if config.model_type == "qwen2_vl":
        vc = config.vision_config
        n_img = side * side // vc.spatial_merge_size**2
        ids = torch.randint(0, min(vocab, 150000), (rows, n_img + text_len + 1), generator=g)
        ids[:, 0] = config.vision_start_token_id
        ids[:, 1 : 1 + n_img] = config.image_token_id
        types = torch.zeros_like(ids)
        types[:, 1 : 1 + n_img] = 1
        patch = vc.in_chans * vc.temporal_patch_size * vc.patch_size**2
        batch = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "pixel_values": torch.randn(rows * side * side, patch, generator=g),
            "image_grid_thw": torch.tensor([[1, side, side]] * rows),
            "mm_token_type_ids": types,
        }
    else:  # llava
        vc = config.vision_config
        n_img = (vc.image_size // vc.patch_size) ** 2
        ids = torch.randint(0, min(vocab, config.image_token_index), (rows, n_img + text_len), generator=g)
        ids[:, :n_img] = config.image_token_index
        batch = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "pixel_values": torch.randn(rows, 3, vc.image_size, vc.image_size, generator=g),
        }
    return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in batch.items()}


def _lora_model(config: Any, adapters: int, device: torch.device, dtype: torch.dtype) -> Any:
    """A randomly initialised model of ``config`` on ``device`` with ``adapters`` LoRA adapters (rank 16)
    on the language model's attention projections."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    regex = target_regex(config.model_type, "language", ("q_proj", "k_proj", "v_proj", "o_proj"))
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=regex, lora_dropout=0.0, init_lora_weights=False)
    model = get_peft_model(model, lora, adapter_name="a0")
    for i in range(1, adapters):
        model.add_adapter(f"a{i}", lora)
    return model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gib(device: torch.device) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 1024**3, 3) if device.type == "cuda" else None


def _timed(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    fn()  # warm-up (kernels, allocator)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def throughput(device: torch.device, small: bool, k: int = 4) -> dict[str, Any]:
    """Prediction and tuning samples/s and peak memory, one adapter against K in one mixed batch."""
    dtype = torch.float32 if small else torch.bfloat16
    rows, text_len, repeats = (k, 16, 2) if small else (4 * k, 64, 5)
    out: dict[str, Any] = {"dtype": str(dtype).replace("torch.", ""), "batch": rows, "adapters_k": k}
    for name in SHAPES:
        out[name] = _measure(make_config(name, small=small), device, dtype, rows, text_len, repeats, k, small)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _measure(
    config: Any,
    device: torch.device,
    dtype: torch.dtype,
    rows: int,
    text_len: int,
    repeats: int,
    k: int,
    small: bool,
) -> dict[str, Any]:
    from mint.tuning.mixed_lora import MixedLoRA

    model = _lora_model(config, k, device, dtype)
    batch = synthetic_batch(config, rows, text_len, device, dtype, side=8 if small else 32)
    names = [
        f"a{i * k // rows}" for i in range(rows)
    ]  # consecutive rows per adapter, as MixedLoRA routes them
    mixed = MixedLoRA(model, [f"a{i}" for i in range(k)]).install()
    segments = [(f"a{i}", i * rows // k, (i + 1) * rows // k) for i in range(k)]
    opt = torch.optim.AdamW([p for n, p in model.named_parameters() if "lora_" in n], lr=1e-4)
    figures: dict[str, Any] = {"params": sum(p.numel() for p in model.parameters())}

    def predict_one() -> None:
        with torch.inference_mode():
            model(**batch, logits_to_keep=1)

    def predict_k() -> None:  # peft's per-row adapter names, as mint.Router does
        with torch.inference_mode(), model._enable_peft_forward_hooks(adapter_names=names):
            model(**batch, logits_to_keep=1)

    def tune_step(route: bool) -> None:  # mint tune --concurrent's routing for K
        model.train()
        with mixed.route(segments) if route else torch.enable_grad():
            logits = model(**batch, logits_to_keep=8).logits
        logits.float().logsumexp(-1).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        model.eval()

    model.eval()
    for key, fn in (
        ("predict_1", predict_one),
        ("predict_k", predict_k),
        ("tune_1", lambda: tune_step(False)),
        ("tune_k", lambda: tune_step(True)),
    ):
        if key == "tune_k":  # every adapter trainable, each sample's rows through its own
            model.base_model.set_adapter([f"a{i}" for i in range(k)])
        seconds = _timed(fn, device, repeats)
        figures[key] = {"samples_per_s": round(rows / seconds, 2), "peak_gib": _peak_gib(device)}
    for part in ("predict", "tune"):
        one, many = figures[f"{part}_1"]["samples_per_s"], figures[f"{part}_k"]["samples_per_s"]
        figures[f"ratio_{part}_k_over_1"] = round(many / one, 3)
    mixed.remove()
    return figures


# ---------------------------------------------------------------------------------------------- checks
def extra_checks(path: Path = ROOT / "bench" / "gpu_check_correctness.py") -> list[tuple[str, Callable]]:
    """``checks()`` of bench/gpu_check_correctness.py when the file exists (else none)."""
    if not path.is_file():
        return []
    spec = importlib.util.spec_from_file_location("gpu_check_correctness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.checks())


def default_checks(k: int = 4) -> list[tuple[str, Callable]]:
    """(a) and (b), as ``(name, fn(device, small) -> dict)``."""
    return [("equality", equality), ("throughput", lambda d, s: throughput(d, s, k))]


def run_checks(device: torch.device, small: bool, checks: list[tuple[str, Callable]]) -> dict:
    """Every check in turn; a check that fails records its error and the others still run."""
    results: dict[str, Any] = {}
    for name, fn in checks:
        start = time.perf_counter()
        try:
            results[name] = {"ok": True, **fn(device, small)}
        except Exception as e:  # one failing check must not hide the others' figures
            results[name] = {
                "ok": False,
                "error": f"{type(e).__name__}: {e}",
                "trace": traceback.format_exc(),
            }
        results[name]["seconds"] = round(time.perf_counter() - start, 2)
        print(f"{name}: {'ok' if results[name]['ok'] else results[name]['error']} "
              f"({results[name]['seconds']} s)", file=sys.stderr)  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="Tiny shapes and few samples (CPU test).")
    parser.add_argument("--k", type=int, default=4, help="Adapters in the mixed batches (default 4).")
    parser.add_argument(
        "--out", default="gpu_check.json", help="JSON of the figures (default gpu_check.json)."
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(
            "--device cuda: CUDA is not available (run with --small --device cpu to test the script)"
        )
    start = time.perf_counter()
    results = run_checks(device, args.small, default_checks(args.k) + extra_checks())
    report = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "small": args.small,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.perf_counter() - start, 1),
        "checks": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_summary(report)
    return report


def _print_summary(report: dict[str, Any]) -> None:
    tp = report["checks"].get("throughput", {})
    eq = report["checks"].get("equality", {})
    if eq.get("ok"):
        print(f"equality: scores max |diff| {eq['score_max_abs_diff']:.2e} over {eq['score_rows']} prompts, "
              f"same answers {eq['same_answers']}; one step: loss diff {eq['train_loss_abs_diff']:.2e}, "
              f"weights max |diff| {eq['step_weights_max_abs_diff']:.2e}")  # fmt: skip
    if tp.get("ok"):
        print(f"| model ({tp['dtype']}, batch {tp['batch']}) | predict 1 | predict K={tp['adapters_k']} | K/1 "
              "| tune 1 | tune K | K/1 | peak GiB (predict / tune) |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name in SHAPES:
            f = tp[name]
            print(f"| {name} | {f['predict_1']['samples_per_s']} | {f['predict_k']['samples_per_s']} | "
                  f"{f['ratio_predict_k_over_1']} | {f['tune_1']['samples_per_s']} | {f['tune_k']['samples_per_s']} "
                  f"| {f['ratio_tune_k_over_1']} | {f['predict_1']['peak_gib']} / {f['tune_1']['peak_gib']} |")  # fmt: skip
    print(f"{report['seconds']} s in all; figures in the JSON")


if __name__ == "__main__":
    main()
