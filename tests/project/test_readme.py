"""The README's walkthrough runs as written on the embedded default suite and the ``tiny`` backbone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from paths import REPO

README = REPO / "README.md"


def _blocks(section: str) -> list[str]:
    """The ```bash blocks of the README section whose heading is ``section``."""
    text = README.read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```bash\n(.*?)```", text[start : end if end > 0 else None], re.S)


def test_walkthrough_runs_as_written(tmp_path: Path) -> None:
    (block,) = _blocks("The pipeline, one command at a time")
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(bindir), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report["rows"]) == {"zero_shot", "mint", "all", "single"}
    assert {c["baseline"] for c in report["comparisons"]} >= {"all", "single", "zero_shot"}
    for path in ("figures", "bundle", "routes.json", "groups/single.json", "runs/all/tune.json"):
        assert (tmp_path / path).exists(), path


def _options(line: str) -> dict[str, str]:
    """``--key value`` pairs of one command line (flags without a value left out)."""
    words = line.replace("\\\n", " ").split("#")[0].split()
    return {
        w[2:].replace("-", "_"): v
        for w, v in zip(words, words[1:])
        if w.startswith("--") and not v.startswith("--")
    }


def test_walkthrough_uses_the_demo_settings() -> None:
    """Predict, tune and evaluate in the README are the shipped demo config's settings (one seed)."""
    import yaml

    demo = yaml.safe_load((REPO / "mint" / "configs" / "demo.yaml").read_text())
    (block,) = _blocks("The pipeline, one command at a time")
    joined = block.replace("\\\n", " ")
    lines = {ln.split()[1]: ln for ln in joined.splitlines() if ln.strip().startswith("mint ")}
    tune = _options(lines["tune"])
    assert tune.pop("suite") == demo["suite"]
    for key, value in demo["tune"].items():
        if key != "checkpoint_every":  # how often a run checkpoints, not what it learns
            assert tune.pop(key) == str(value), key
    assert {k: int(v) for k, v in tune.items() if k.startswith("max_")} == {
        "max_train": demo["max_train"],
        "max_test": demo["max_test"],
    }
    predict = _options(lines["predict"])
    assert predict["split"] == demo["predict"]["split"] == "train"
    assert int(predict["max_samples"]) == demo["predict"]["max_samples"]
    assert int(predict["batch_size"]) == demo["predict"]["batch_size"]
    assert int(_options(lines["evaluate"])["batch_size"]) == demo["evaluate"]["batch_size"]
