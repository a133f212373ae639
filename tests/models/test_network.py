"""The network policy through the CLI, without touching the network: the hub is a closed loopback port
(``HF_ENDPOINT=http://127.0.0.1:9``) and the cache a fresh folder. A hub id that is neither a folder nor
cached fails within seconds with one line saying why; a cached one loads without any request."""

from __future__ import annotations

import shutil
import time

import pytest
from click.testing import CliRunner

import mint.cli.predict_cmd  # noqa: F401  (imported here, so the timings below exclude imports)
from mint.cli import main
from mint.models.loading import TINY_DIR

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """A fresh Hugging Face cache and a hub that cannot be reached."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", CLOSED)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", CLOSED)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return cache


def _predict(tmp_path, model):
    args = ["predict", "--suite", "builtin:mini", "--model", model, "--out", str(tmp_path / "p.jsonl")]
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, [*args, "--no-progress", "--max-samples", "1"])
    return res, time.perf_counter() - t0


def _one_error(res):
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    return errors[0]


@pytest.mark.parametrize("model", ["someone/no-such-model", "m/x"])
def test_unreachable_hub_fails_fast(hub, tmp_path, model):
    res, seconds = _predict(tmp_path, model)
    line = _one_error(res)
    assert model in line and "cannot be reached" in line and CLOSED in line, line
    assert seconds < 10, seconds
    assert not (tmp_path / "p.jsonl").exists()


def test_offline_says_so(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res, seconds = _predict(tmp_path, "someone/no-such-model")
    line = _one_error(res)
    assert "not in the Hugging Face cache" in line and "HF_HUB_OFFLINE" in line, line
    assert seconds < 10, seconds


def test_not_an_id(hub, tmp_path):
    line = _one_error(_predict(tmp_path, "bad id!")[0])
    assert "neither a model folder nor a Hugging Face model id" in line, line


def test_cached_id_loads_without_the_network(hub):
    from mint.models import load_model

    repo = hub / "models--someone--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(TINY_DIR, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    vlm = load_model("someone/tiny", device="cpu")  # the hub cannot be reached: any request would fail
    assert vlm.model_type and str(snapshot) in str(vlm.model.name_or_path)
