"""Where things are, for tests in any sub-folder: the repository root, the tests folder and its data."""

import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DATA = TESTS / "data"

#: two processes under torchrun on this machine (gloo on CPU)
TORCHRUN_2 = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")


def child_env() -> dict[str, str]:
    """The environment of a test's child process: one thread, no network, this checkout and the tests'
    helpers importable."""
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
