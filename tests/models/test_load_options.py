"""Model-loading options (--dtype, --device-map, --attn-implementation, --quantize, --device): what loads,
and one clear error for every impossible combination."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from click.testing import CliRunner

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.models.load_options import LoadOptions


def test_impossible_combinations_name_the_options(monkeypatch):
    with pytest.raises(MintError, match="--device cpu and --device-map auto exclude each other"):
        LoadOptions(device_map="auto").check("cpu")
    with pytest.raises(MintError, match="cannot run under 2 processes"):
        LoadOptions(device_map="auto").check(None, processes=2)
    with pytest.raises(MintError, match="--device-map: expected one of"):
        LoadOptions(device_map="everywhere").check()
    with pytest.raises(MintError, match="--dtype: unknown dtype"):
        LoadOptions(dtype="float8").check()
    with pytest.raises(MintError, match="give the compute dtype"):
        LoadOptions(dtype="auto", quantize="4bit").check()
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    with pytest.raises(MintError, match="--quantize 4bit needs bitsandbytes"):
        LoadOptions(quantize="4bit").check()


def test_options_reach_the_model():
    vlm = load_model("tiny", dtype="bfloat16", attn_implementation="eager")
    assert vlm.dtype == torch.bfloat16 and vlm.model.config._attn_implementation == "eager"
    # accelerate's placement; on a machine without GPUs everything lands on the CPU: the same model
    spread, plain = load_model("tiny", device_map="auto"), load_model("tiny")
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(spread.model(input_ids=ids).logits.cpu(), plain.model(input_ids=ids).logits)
    with pytest.raises(MintError, match="cannot be loaded from .*no_such_kernel"):
        load_model("tiny", attn_implementation="no_such_kernel")


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "args, needle",
    [
        (["predict", "--suite", "builtin:mini", "--out", "p.jsonl", "--device", "cpu", "--device-map", "auto"],
         "exclude each other"),
        (["evaluate", "run", "--device", "cpu", "--device-map", "auto"], "exclude each other"),
        (["cluster", "--method", "gradient", "--suite", "builtin:mini", "--model", "tiny", "--out", "g.json",
          "--device", "cpu", "--device-map", "auto"], "exclude each other"),
        (["tune", "--suite", "builtin:mini", "--model", "tiny", "--groups", "g.json", "--out", "run",
          "--device", "cpu", "--device-map", "auto"], "exclude each other"),
        (["tune", "--suite", "builtin:mini", "--model", "tiny", "--groups", "g.json", "--out", "run",
          "--quantize", "4bit", "--dtype", "auto"], "give the compute dtype"),
        (["tune", "--suite", "builtin:mini", "--model", "tiny", "--groups", "g.json", "--out", "run",
          "--device", "nowhere"], "unknown device"),
    ],
)  # fmt: skip
def test_cli_refuses_impossible_combinations(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    r = _invoke(*args)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and needle in lines[0], r.output
