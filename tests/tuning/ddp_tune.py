"""Launched by tests/tuning/test_ddp.py under ``torchrun --nproc_per_node 2``: tune on CPU (gloo) and save what each
rank holds, so the test can check the ranks agree with each other and with a one-process run.

Usage: torchrun --nproc_per_node 2 tests/tuning/ddp_tune.py MODEL OUT BATCH_SIZE [kill-at-STEP | resume]

``kill-at-STEP`` stops the run after optimizer step STEP of group g1 (every rank raises there);
``resume`` continues a stopped run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the tests folder

from helpers_tuning import adapter_tensors, make_tasks  # noqa: E402

from mint.models import load_model  # noqa: E402
from mint.tuning import TrainingStopped, TuneConfig, make_accelerator, tune_groups  # noqa: E402

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}


def config(batch_size: int) -> TuneConfig:
    return TuneConfig(batch_size=batch_size, epochs=1, lr=0.02, dropout=0.0, checkpoint_every=2, seed=1)


def main() -> None:
    from safetensors.torch import save_file

    model, out, batch_size = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else ""
    cfg = config(batch_size)
    accelerator = make_accelerator(cfg, cpu=True)
    vlm = load_model(model, device=str(accelerator.device))

    def on_step(row: dict) -> None:
        if (
            mode.startswith("kill-at-")
            and row["group"] == "g1"
            and row["step"] == int(mode[len("kill-at-") :])
        ):
            raise TrainingStopped(f"stopped at step {row['step']}")

    try:
        tune_groups(
            vlm,
            make_tasks(),
            GROUPS,
            out,
            cfg,
            accelerator=accelerator,
            progress=False,
            resume=mode == "resume",
            on_step=on_step,
        )
    except TrainingStopped:
        print(f"rank {accelerator.process_index} stopped", flush=True)
        return
    tensors = {f"{g}/{k}": v.contiguous() for g in GROUPS for k, v in adapter_tensors(vlm.model, g).items()}
    save_file(tensors, str(out / f"rank-{accelerator.process_index}.safetensors"))
    print(f"rank {accelerator.process_index} of {accelerator.num_processes} done", flush=True)


if __name__ == "__main__":
    main()
