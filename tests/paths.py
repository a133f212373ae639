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


def load_tool(name: str):
    """The developer script ``tools/<name>.py`` as a module (the tools folder importable while it loads, for
    the pieces the build scripts share with ``tools/build_tiny.py``)."""
    import importlib.util

    script = REPO / "tools" / f"{name}.py"
    sys.path.insert(0, str(script.parent))
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while being defined
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
        sys.modules.pop("build_tiny", None)
        sys.path.remove(str(script.parent))
    return module
