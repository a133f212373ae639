"""The environment every training bench runs in; import it first (before torch is imported anywhere).

One torch / OpenMP thread (two threads on two busy cores are far slower, and the side-by-side ratios must
compare like with like), no tokenizer threads, no network, warnings off, and the repository root on
``sys.path`` so that ``python bench/<name>.py`` uses this checkout's ``mint``.
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
