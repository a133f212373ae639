"""Bad input through the real CLI: exit 2, exactly one ``Error:`` line naming the file (and line or key),
no traceback, no output written, nothing executed; and the config is checked whole before any stage runs."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner
from paths import DATA
from PIL import Image

from mint.cli import main
from mint.clustering.synthetic import planted_profiles
from mint.models.loading import TINY_DIR

EXAMPLE = str(DATA / "profiling" / "example.jsonl")


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error(res, *needles):
    assert res.exit_code == 2, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------------------- files that are not what they say
@pytest.mark.parametrize(
    "content,needle",
    [
        (b'{"task": "a", "id": "1", "answer": "\xff"}\n', ":1: not UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"task": "a", "id": ' + b"9" * 5000 + b"}\n", "too many digits"),
    ],
)
def test_malformed_predictions(tmp_path, content, needle):
    path = tmp_path / "preds.jsonl"
    path.write_bytes(content)
    _one_error(_cli("profile", "--predictions", path, "--out", tmp_path / "p.json"), str(path), needle)
    assert not (tmp_path / "p.json").exists()


def test_non_utf8_yaml_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"suite: builtin:mini\nout: \xe9t\xe9\n")
    _one_error(_cli("run", path), f"{path}:2: not UTF-8")


@pytest.mark.parametrize("task", ["has space", "a/b", "", "-x", "é"])
def test_task_names_are_refused_at_load(tmp_path, task):
    path = tmp_path / "preds.jsonl"
    rec = {"task": task, "id": "1", "answer": "a", "predictions": {"both": "a", "image": "a", "text": "a"}}
    path.write_text(json.dumps(rec) + "\n")
    _one_error(_cli("profile", "--predictions", path, "--out", tmp_path / "p.json"), f"{path}:1")


def test_task_names_differing_only_in_case(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {"tasks": [{"builtin": "vqa_color", "name": "T"}, {"builtin": "vqa_shape", "name": "t"}]}
        )
    )
    res = _cli("predict", "--suite", suite, "--model", "tiny", "--out", tmp_path / "p.jsonl", "--no-progress")
    _one_error(res, str(suite), "duplicate task name")


def test_similarity_returning_a_non_number(tmp_path, monkeypatch):
    import mint.profiling.similarity as sim

    def text_answer(a, b):
        return "yes"

    monkeypatch.setitem(sim._REGISTRY, "text_answer", text_answer)
    res = _cli(
        "profile", "--predictions", EXAMPLE, "--similarity", "text_answer", "--out", tmp_path / "p.json"
    )
    _one_error(res, "text_answer", "not a number")
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize(
    "edit,needle",
    [
        (lambda t: t["mint_score"].update(mean=1.9, ci95=[0.1, 0.4]), "outside its own interval"),
        (lambda t: t["mint_score"].update(mean=2.5, ci95=None), "outside the score's range"),
    ],
)
def test_profiles_refused_at_load_in_cluster_and_plot(tmp_path, edit, needle):
    data = planted_profiles(sizes=(2, 2, 2), seed=1)
    edit(next(iter(data["tasks"].values())))
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(data))
    _one_error(_cli("cluster", path, "--out", tmp_path / "g.json"), str(path), "mint_score.mean", needle)
    _one_error(_cli("plot", path, "--out", tmp_path / "figs"), str(path), needle)
    assert not (tmp_path / "g.json").exists() and not (tmp_path / "figs").exists()


# ---------------------------------------------------------------------------- images and weights
def test_image_over_the_pixel_limit(tmp_path, monkeypatch):
    Image.new("RGB", (400, 300)).save(tmp_path / "big.png")
    rows = [{"id": "1", "image": "big.png", "text": "q ?", "answer": "red", "split": "test"}]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"tasks": [{"name": "t", "jsonl": "data.jsonl", "instruction": "say ."}]}))
    monkeypatch.setenv("MINT_MAX_IMAGE_PIXELS", "100000")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # mint lowers PIL's guard too
    res = _cli("predict", "--suite", suite, "--model", "tiny", "--out", tmp_path / "p.jsonl", "--no-progress")
    _one_error(res, "big.png", "120000 pixels", "MINT_MAX_IMAGE_PIXELS")


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_model_weights(tmp_path, damage):
    model = tmp_path / "model"
    shutil.copytree(TINY_DIR, model)
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    res = _cli("predict", "--suite", "builtin:mini", "--model", model, "--out", tmp_path / "p.jsonl")
    _one_error(res, str(weights))


# ---------------------------------------------------------------------------- seeds and numbers
@pytest.mark.parametrize("seed", ["4294967296", "-1"])
def test_seed_that_cannot_be_honoured(tmp_path, seed):
    prof = tmp_path / "profiles.json"
    prof.write_text(json.dumps(planted_profiles(sizes=(2, 2, 2), seed=1)))
    res = _cli("cluster", prof, "--seed", seed, "--out", tmp_path / "g.json")
    _one_error(res, "--seed")
    assert not (tmp_path / "g.json").exists()


# ---------------------------------------------------------------------------- the run config, whole and early
@pytest.mark.parametrize(
    "patch,needle",
    [
        ({"predict": {"batch_size": -1}}, "predict.batch_size"),
        ({"predict": {"modes": "both,smell"}}, "predict.modes"),
        ({"profile": {"samples": "ten"}}, "profile.samples"),
        ({"profile": {"thresholds": [0.5, 1.5]}}, "profile.thresholds"),
        ({"profile": {"similarity": "nope"}}, "profile.similarity"),
        ({"cluster": {"bootstrap": -3}}, "cluster.bootstrap"),
        ({"cluster": {"k": 0}}, "cluster.k"),
        ({"evaluate": {"batch_size": 0}}, "evaluate.batch_size"),
        ({"evaluate": {"zero_shot": "yes"}}, "evaluate.zero_shot"),
        ({"tune": {"batch_size": -2}}, "tune: batch_size"),
        ({"tune": {"rank": 10**12}}, "tune: rank"),
        ({"seed": 2**32}, "seed"),
        ({"suite": "no-such-suite.yaml"}, "suite"),
    ],
)
def test_run_config_checked_before_any_stage(tmp_path, patch, needle):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"suite": "builtin:mini", "out": "run", **patch}))
    _one_error(_cli("run", path), f"{path}: {needle}")
    assert not (tmp_path / "run").exists()


def test_code_from_a_run_config_needs_allow_code(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "evil_sim.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\ndef sim(a, b):\n    return 1.0\n"
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump({"suite": "builtin:mini", "out": "run", "profile": {"similarity": "evil_sim:sim"}})
    )
    _one_error(_cli("run", path), "profile.similarity", "--allow-code")
    assert not marker.exists() and not (tmp_path / "run").exists()
