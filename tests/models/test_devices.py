"""The one device rule (mint.models.devices): auto, the local rank's GPU, one-line errors."""

from __future__ import annotations

import pytest
import torch

from mint.errors import MintError
from mint.models import devices
from mint.models.devices import resolve_device


def test_auto_and_cpu_on_a_machine_without_accelerators(monkeypatch):
    monkeypatch.setattr(devices, "_available", lambda kind: kind == "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device("cpu:0") == torch.device("cpu")  # accelerate's name for a gloo rank's CPU


@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x", "cpu:a", "meta", "cudaa"])
def test_unknown_devices_are_one_error(spec):
    with pytest.raises(MintError, match="unknown device"):
        resolve_device(spec)


@pytest.mark.parametrize("spec", ["cuda", "cuda:1", "mps", "xpu"])
def test_absent_accelerators_are_one_error(monkeypatch, spec):
    monkeypatch.setattr(devices, "_available", lambda kind: kind == "cpu")
    with pytest.raises(MintError, match="not available on this machine"):
        resolve_device(spec)


def test_cuda_binds_to_the_local_rank(monkeypatch):
    monkeypatch.setattr(devices, "_available", lambda kind: kind in ("cpu", "cuda"))
    monkeypatch.setattr(devices, "_count", lambda kind: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda") == torch.device("cuda", 2)
    assert resolve_device("auto") == torch.device("cuda", 2)
    assert resolve_device("cuda:3") == torch.device("cuda", 3)  # an explicit index is taken as given
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "5")
    with pytest.raises(MintError, match="LOCAL_RANK 5, but only 4"):
        resolve_device("cuda")
    with pytest.raises(MintError, match="index 7, but only 4"):
        resolve_device("cuda:7")


def test_auto_prefers_cuda_then_xpu_then_mps(monkeypatch):
    monkeypatch.setattr(devices, "_available", lambda kind: kind in ("cpu", "mps"))
    assert resolve_device("auto") == torch.device("mps")
    monkeypatch.setattr(devices, "_available", lambda kind: kind in ("cpu", "mps", "xpu"))
    monkeypatch.setattr(devices, "_count", lambda kind: 1)
    assert resolve_device("auto") == torch.device("xpu", 0)


def test_cli_device_error_is_exit_2(tmp_path):
    from click.testing import CliRunner

    from mint.cli import main

    out = str(tmp_path / "x.jsonl")
    result = CliRunner().invoke(
        main, ["predict", "--suite", "builtin:default", "--model", "tiny", "--device", "gpu", "--out", out]
    )
    assert result.exit_code == 2, result.output
    assert "unknown device 'gpu'" in result.output
