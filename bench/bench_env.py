"""The environment every training bench runs in; import it first (before torch is imported anywhere).

One torch / OpenMP thread (two threads on two busy cores are far slower, and the side-by-side ratios must
compare like with like), no tokenizer threads, no network, warnings off, and the repository root on
``sys.path`` so that ``python bench/<name>.py`` uses this checkout's ``mint``. Also the set-up the benches
share: the backbone to bench (:func:`resolve_model`) and the peft + ``Trainer`` baseline's arguments
(:func:`trainer_arguments`).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")


def resolve_model(spec: str, tmp: Path) -> str:
    """``tiny`` if the embedded backbone is installed, else a tiny random LLaVA from the test helpers."""
    from mint.models import TINY_DIR

    if spec != "tiny" or (TINY_DIR / "config.json").is_file():
        return spec
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers_models import make_tiny_llava

    print("(embedded tiny backbone not built here: using a tiny random LLaVA from tests/helpers_models.py)")
    return make_tiny_llava(tmp)


def trainer_arguments(output_dir: Path, cfg, seed: int):
    """The plain peft + ``Trainer`` baseline's ``TrainingArguments`` for the tuning options ``cfg`` (a
    :class:`mint.tuning.TuneConfig`): its batch size, epochs, learning rate and clipping, a linear schedule
    without warm-up or weight decay, on the CPU, no logging, checkpoints or progress bars."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=cfg.max_grad_norm,
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=True,
        seed=seed,
    )
