"""Checkpoints move between machines: tensors read onto the CPU, the CUDA RNG state restored onto this
process's device whatever the number of visible GPUs (or skipped without one), the loss scaler saved and
restored."""

from __future__ import annotations

import pytest
import torch

from mint.errors import MintError
from mint.tuning import checkpoint as ckpt


def _parts():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.full((3,), 0.5)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (s + 1))
    scheduler.step()
    return param, optimizer, scheduler


def _save(folder, optimizer, scheduler, scaler=None):
    ckpt.save_checkpoint(
        folder,
        adapter_state={"w": torch.ones(2)},
        optimizer=optimizer,
        scheduler=scheduler,
        position={"log_lines": 0},
        rank=0,
        is_main=True,
        scaler=scaler,
    )


def test_a_gpu_runs_rng_state_restores_without_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = ckpt.rng_state()
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 4  # written on a 4-GPU machine
    ckpt.set_rng_state(state)  # no GPU here: the CUDA state is not needed


@pytest.mark.parametrize("current, saved, want", [(0, "list4", 0), (1, "one", "one"), (3, "list2", None)])
def test_cuda_rng_state_goes_to_this_processs_device(monkeypatch, current, saved, want):
    states = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]
    one = torch.full((16,), 9, dtype=torch.uint8)
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device="cuda": restored.append(s))
    monkeypatch.setattr(
        torch.cuda,
        "set_rng_state_all",
        lambda s: pytest.fail("restored every GPU's state (needs as many GPUs)"),
    )
    state = ckpt.rng_state()
    state["cuda"] = {"list4": states, "list2": states[:2], "one": one}[saved]
    ckpt.set_rng_state(state)
    if want is None:
        assert restored == []  # this device had no saved state: nothing to restore, no error
    else:
        assert len(restored) == 1 and torch.equal(restored[0], one if want == "one" else states[want])


def test_checkpoint_tensors_are_read_onto_the_cpu(tmp_path):
    _, optimizer, scheduler = _parts()
    _save(tmp_path / "c", optimizer, scheduler)
    loaded = ckpt.load_checkpoint(tmp_path / "c", 0)
    tensors = list(loaded["adapter"].values()) + [
        v for s in loaded["optimizer"]["state"].values() for v in s.values() if isinstance(v, torch.Tensor)
    ]
    assert tensors and all(t.device.type == "cpu" for t in tensors)


def test_loss_scaler_state_is_saved_and_restored(tmp_path):
    _, optimizer, scheduler = _parts()
    scaler = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    scaler.scale(torch.ones(1))  # the scale starts being used
    scaler.update(128.0)  # as after overflows
    _save(tmp_path / "c", optimizer, scheduler, scaler)
    loaded = ckpt.load_checkpoint(tmp_path / "c", 0)
    _, opt2, sched2 = _parts()
    fresh = torch.amp.GradScaler("cpu")
    ckpt.restore(loaded, opt2, sched2, fresh)
    assert fresh.get_scale() == 128.0 and fresh.state_dict() == scaler.state_dict()
    with pytest.raises(MintError, match="checkpointed with fp16 loss scaling"):
        ckpt.restore(loaded, opt2, sched2, None)
    _save(tmp_path / "d", optimizer, scheduler)
    with pytest.raises(MintError, match="checkpointed without fp16 loss scaling"):
        ckpt.restore(ckpt.load_checkpoint(tmp_path / "d", 0), opt2, sched2, torch.amp.GradScaler("cpu"))
