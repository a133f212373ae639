"""bench/gpu_check_correctness.py: the contract with bench/gpu_check.py (``checks()`` of named
``fn(device, small) -> dict``), and its cheapest check run on the CPU."""

from __future__ import annotations

import importlib.util
import inspect

import torch
from paths import REPO

PATH = REPO / "bench" / "gpu_check_correctness.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check_correctness", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checks_contract_and_a_cpu_run():
    module = _module()
    checks = module.checks()
    names = [n for n, _ in checks]
    assert names == [
        "attention_masks",
        "precision",
        "devices_and_ranks",
        "memory",
        "mixed_lora_bf16",
        "checkpoints",
    ]
    for _, fn in checks:
        assert list(inspect.signature(fn).parameters) == ["device", "small"]
    figures = dict(checks)["devices_and_ranks"](torch.device("cpu"), True)
    assert figures["ok"] is True and figures["parameters_on"] == ["cpu"]
