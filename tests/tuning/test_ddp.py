"""Two CPU processes (torchrun, gloo): every group's adapter is identical across ranks and equal to a
one-process run with the same global batch; a stopped two-process run resumes to the same adapters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers_models import make_tiny_llava
from helpers_tuning import adapter_tensors, make_tasks

from mint.models import load_model
from mint.tuning import tune_groups

sys.path.insert(0, str(Path(__file__).parent))
from ddp_tune import GROUPS, config
from paths import TORCHRUN_2, child_env

SCRIPT = Path(__file__).parent / "ddp_tune.py"


def _torchrun(*args: str) -> None:
    env = child_env()
    proc = subprocess.run(
        [*TORCHRUN_2, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_ddp_two_ranks_match_one_process(tmp_path):
    from safetensors.torch import load_file

    pytest.importorskip("torch.distributed.run")
    model = make_tiny_llava(tmp_path / "models")
    out = tmp_path / "ddp"
    _torchrun(model, str(out), "2")
    r0, r1 = load_file(str(out / "rank-0.safetensors")), load_file(str(out / "rank-1.safetensors"))
    assert r0.keys() == r1.keys() and {k.split("/")[0] for k in r0} == set(GROUPS)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"ranks disagree on {k}"

    vlm = load_model(model)
    tune_groups(vlm, make_tasks(), GROUPS, tmp_path / "single", config(4), progress=False)
    moved = 0
    for g in GROUPS:
        for k, v in adapter_tensors(vlm.model, g).items():
            torch.testing.assert_close(r0[f"{g}/{k}"], v, rtol=1e-4, atol=1e-6, msg=f"{g} {k}")
            moved += int("lora_B" in k and v.abs().max() > 0)
    assert moved > 0  # the adapters did train (lora_B starts at zero)

    # a two-process run stopped after step 3 of g1 (checkpoint at 2) and resumed ends where the full one did
    stopped = tmp_path / "stopped"
    _torchrun(model, str(stopped), "2", "kill-at-3")
    assert not (stopped / "tune.json").exists() and (stopped / "checkpoints" / "g1-step-000002").is_dir()
    _torchrun(model, str(stopped), "2", "resume")
    for rank in (0, 1):
        resumed = load_file(str(stopped / f"rank-{rank}.safetensors"))
        for k in r0:
            assert torch.equal(resumed[k], r0[k]), f"rank {rank}: resumed run differs on {k}"
