"""bench/gpu_check.py in its --small mode on CPU: every check runs and writes its figures (CPU against CPU
is exactly equal), and checks from bench/gpu_check_correctness.py are picked up and isolated."""

from __future__ import annotations

import json
import sys

import torch
from paths import REPO

BENCH = REPO / "bench"


def _gpu_check():
    """The bench module, imported inside a test (its bench_env silences warnings; pytest restores them)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import gpu_check

    return gpu_check


def test_small_mode_on_cpu(tmp_path):
    gpu_check = _gpu_check()
    out = tmp_path / "gpu_check.json"
    report = gpu_check.main(["--small", "--device", "cpu", "--k", "2", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    eq, tp = report["checks"]["equality"], report["checks"]["throughput"]
    assert eq["ok"] and eq["same_answers"] and eq["score_rows"] == 12, eq
    assert eq["score_max_abs_diff"] == 0.0 and eq["step_weights_max_abs_diff"] == 0.0
    assert tp["ok"], tp
    for name in ("qwen2-vl-2b", "llava-1.5-7b"):
        figures = tp[name]
        assert all(figures[k]["samples_per_s"] > 0 for k in ("predict_1", "predict_k", "tune_1", "tune_k"))
        assert figures["ratio_tune_k_over_1"] > 0


def test_correctness_checks_are_picked_up(tmp_path):
    gpu_check = _gpu_check()
    module = tmp_path / "gpu_check_correctness.py"
    module.write_text(
        "def checks():\n"
        "    def fine(device, small):\n"
        "        return {'device': str(device), 'small': small}\n"
        "    def broken(device, small):\n"
        "        raise RuntimeError('mismatch')\n"
        "    return [('fine', fine), ('broken', broken)]\n"
    )
    checks = gpu_check.extra_checks(module)
    results = gpu_check.run_checks(torch.device("cpu"), True, checks)
    assert results["fine"]["ok"] and results["fine"]["device"] == "cpu" and results["fine"]["small"] is True
    assert not results["broken"]["ok"] and "mismatch" in results["broken"]["error"]
    assert gpu_check.extra_checks(tmp_path / "absent.py") == []
