"""mint's own data-parallel step for one adapter (no DDP wrapper): gradients averaged as DDP would, a
gradient missing on one process counted as zero there, one missing everywhere left absent, and rank 0's
weights broadcast; checked on two gloo processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from paths import TORCHRUN_2, child_env


def test_two_processes_average_gradients_and_share_rank0_weights():
    script = Path(__file__).parent / "gradsync_ranks.py"
    proc = subprocess.run(
        [*TORCHRUN_2, str(script)], env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = [
        json.loads(line[len("RESULT ") :]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")
    ]
    assert sorted(r["rank"] for r in results) == [0, 1]
    for r in results:
        assert r["grads"] == [[1.5] * 3, [1.0] * 2, [0.5] * 4, None]
        assert r["dtypes"] == ["torch.float32", "torch.float32", "torch.bfloat16", None]
        assert r["weights"] == [[0.0] * 4, [5.0] * 3]
