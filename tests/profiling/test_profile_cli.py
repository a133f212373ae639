"""``mint profile --predictions`` end to end through the real CLI, on files written here."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from paths import DATA

from mint.cli import main
from mint.errors import MintError
from mint.profiling import load_predictions, profile_predictions

COLOURS = ["red", "blue", "green", "yellow", "black"]


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def rec(task, i, both, image, text, **extra):
    return {"task": task, "id": str(i), "predictions": {"both": both, "image": image, "text": text}, **extra}


def run(*args):
    try:  # click < 8.2 mixes stderr into output unless told not to
        runner = CliRunner(mix_stderr=False)
    except TypeError:
        runner = CliRunner()
    return runner.invoke(main, ["profile", *map(str, args)])


def profile(tmp_path, rows, *args, name="preds.jsonl"):
    src = write_jsonl(tmp_path / name, rows)
    out = tmp_path / "profiles.json"
    r = run("--predictions", src, "--out", out, "--force", *args)
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text()), r


def planted(n=200, seed=0, classes=COLOURS):
    """Tasks whose interaction is known: who agrees with the multimodal answer."""
    rng = np.random.default_rng(seed)
    rows = []
    for task, agree in [
        ("redundant", "both"),
        ("image_unique", "image"),
        ("text_unique", "text"),
        ("synergy", "none"),
    ]:
        for i in range(n):
            y = str(rng.choice(classes))
            img = y if agree in ("both", "image") else str(rng.choice(classes))
            txt = y if agree in ("both", "text") else str(rng.choice(classes))
            rows.append(rec(task, i, y, img, txt, answer=y))
    return rows


# --------------------------------------------------------------------------- numbers


def test_hand_computed_file(tmp_path):
    rows = [
        rec("t", 0, "cat", "Cat", "cat", answer="cat"),
        rec("t", 1, "dog", "the dog", "pig", answer="dog"),
        rec("t", 2, "cow", "cow.", "hen", answer="hen"),
        rec("t", 3, "owl", "bat", "ant", answer="owl"),
    ]
    prof, _ = profile(tmp_path, rows, "--size", 4, "--samples", 3)
    assert list(prof)[:2] == ["mint_version", "schema"] and prof["schema"] == 1
    t = prof["tasks"]["t"]
    assert t["n"] == 4
    assert t["mint_score"]["mean"] == pytest.approx(1.0)  # (3 + 1) agreements / 4 samples
    assert t["mint_score"]["samples"] == 3 and t["mint_score"]["size"] == 4
    assert t["agreement"] == {"image": pytest.approx(0.75), "text": pytest.approx(0.25)}
    lo, hi = t["mint_score"]["ci95"]
    assert 0 <= lo <= 1.0 <= hi <= 2
    # 3 of the 4 equally likely image answers (cat, dog, cow) are multimodal answers of mass 1/4:
    # p_e = 3 * 1/16, kappa = (3/4 - 3/16) / (1 - 3/16) = 9/13
    assert t["chance_corrected"]["chance"]["image"] == pytest.approx(3 / 16)
    assert t["chance_corrected"]["kappa"]["image"] == pytest.approx(9 / 13)
    assert t["interaction"] == "uniqueness" and t["dominant_modality"] == "image"
    assert t["accuracy"] == {"both": 0.75, "image": 0.5, "text": 0.5}
    assert t["pid"] is None and "features" in t["reasons"]["pid"]
    cfg = prof["config"]
    assert cfg["predictions"].endswith("preds.jsonl")
    assert {
        k: cfg[k]
        for k in (
            "samples",
            "size",
            "seed",
            "similarity",
            "thresholds",
            "decide_by",
            "bins",
            "pid_target",
            "modalities",
        )
    } == {
        "samples": 3,
        "size": 4,
        "seed": 0,
        "similarity": "exact",
        "thresholds": [1.5, 0.5],
        "decide_by": "corrected",
        "bins": 20,
        "pid_target": "answer",
        "modalities": ["image", "text"],
    }


def test_planted_interactions_recovered(tmp_path):
    prof, r = profile(tmp_path, planted())
    tasks = prof["tasks"]
    assert [tasks[t]["interaction"] for t in ("redundant", "image_unique", "text_unique", "synergy")] == [
        "redundancy",
        "uniqueness",
        "uniqueness",
        "synergy",
    ]
    assert tasks["image_unique"]["dominant_modality"] == "image"
    assert tasks["text_unique"]["dominant_modality"] == "text"
    assert tasks["redundant"]["dominant_modality"] is None
    assert tasks["redundant"]["mint_score"]["mean"] == 2.0
    iu = tasks["image_unique"]
    assert iu["agreement"]["image"] == 1.0 and iu["agreement"]["text"] == pytest.approx(0.2, abs=0.08)
    assert iu["chance_corrected"]["mean"] == pytest.approx(1.0, abs=0.1)
    assert tasks["synergy"]["chance_corrected"]["mean"] == pytest.approx(0.0, abs=0.15)
    assert "1 redundancy, 2 uniqueness, 1 synergy" in r.stderr


def test_yes_no_synergy_is_synergy_by_default(tmp_path):
    rows = [
        r for r in planted(n=400, seed=1, classes=["yes", "no"]) if r["task"] in ("synergy", "image_unique")
    ]
    raw, _ = profile(tmp_path, rows, "--decide-by", "raw")
    # independent yes/no answers agree half the time: the raw score (~1), the paper's rule, calls it
    # uniqueness; it is still reported under the default
    assert raw["config"]["decide_by"] == "raw"
    assert raw["tasks"]["synergy"]["mint_score"]["mean"] == pytest.approx(1.0, abs=0.15)
    assert raw["tasks"]["synergy"]["interaction"] == "uniqueness"
    cor, _ = profile(tmp_path, rows)
    assert cor["config"]["decide_by"] == "corrected"
    assert cor["tasks"]["synergy"]["mint_score"] == raw["tasks"]["synergy"]["mint_score"]
    assert cor["tasks"]["synergy"]["interaction"] == "synergy"
    assert cor["tasks"]["image_unique"]["interaction"] == "uniqueness"
    assert cor["tasks"]["image_unique"]["dominant_modality"] == "image"


def test_thresholds_option_moves_the_cut(tmp_path):
    rows = [r for r in planted(n=100) if r["task"] == "image_unique"]
    prof, _ = profile(tmp_path, rows, "--decide-by", "raw")  # the thresholds cut the raw score
    score = prof["tasks"]["image_unique"]["mint_score"]["mean"]
    assert 1.05 < score < 1.45 and prof["tasks"]["image_unique"]["interaction"] == "uniqueness"
    prof, _ = profile(tmp_path, rows, "--decide-by", "raw", "--thresholds", f"1.9,{score + 0.01}")
    assert prof["tasks"]["image_unique"]["interaction"] == "synergy"
    assert prof["config"]["thresholds"] == [1.9, score + 0.01]
    prof, _ = profile(tmp_path, rows, "--decide-by", "raw", "--thresholds", f"{score},0.2")
    assert prof["tasks"]["image_unique"]["interaction"] == "redundancy"  # >= HIGH is redundancy


def test_seed_reproducible(tmp_path):
    rows = planted(n=120, seed=3)
    src = write_jsonl(tmp_path / "p.jsonl", rows)
    outs = []
    for i, seed in enumerate([5, 5, 6]):
        out = tmp_path / f"o{i}.json"
        assert run("--predictions", src, "--out", out, "--seed", seed).exit_code == 0
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]
    assert outs[0]["tasks"]["synergy"]["mint_score"] != outs[2]["tasks"]["synergy"]["mint_score"]
    assert outs[2]["config"]["seed"] == 6


def test_size_larger_than_task_shrinks_with_warning(tmp_path):
    rows = [rec("small", i, "a", "a", "b") for i in range(5)]
    prof, r = profile(tmp_path, rows, "--size", 50)
    t = prof["tasks"]["small"]
    assert t["mint_score"]["size"] == 5 and prof["config"]["size"] == 50
    assert "Warning: task 'small'" in r.stderr and "using size 5" in r.stderr
    assert any("using size 5" in w for w in t["warnings"])


# --------------------------------------------------------------------------- PID


def _codes_rows(task, pairs, label):
    return [
        rec(task, i, label(a, b), "x", "x", answer=str(label(a, b)), codes={"image": a, "text": b})
        for i, (a, b) in enumerate(pairs)
    ]


def test_planted_pid_from_codes(tmp_path):
    grid4 = [(a, b) for a in range(4) for b in range(4)] * 3
    grid2 = [(a, b) for a in range(2) for b in range(2)] * 5
    rows = (
        _codes_rows("copy_image", grid4, lambda a, b: a)
        + _codes_rows("copy_text", grid4, lambda a, b: b)
        + _codes_rows("xor", grid2, lambda a, b: a ^ b)
        + _codes_rows("same", [(a, a) for a in range(4)] * 4, lambda a, b: a)
    )
    prof, _ = profile(tmp_path, rows)
    pid = {t: prof["tasks"][t]["pid"] for t in ("copy_image", "copy_text", "xor", "same")}
    atoms = ("redundancy", "unique_image", "unique_text", "synergy")
    assert [pid["copy_image"][k] for k in atoms] == pytest.approx([0, 2, 0, 0], abs=1e-5)  # H(Y) = 2 bits
    assert [pid["copy_text"][k] for k in atoms] == pytest.approx([0, 0, 2, 0], abs=1e-5)
    assert [pid["xor"][k] for k in atoms] == pytest.approx([0, 0, 0, 1], abs=1e-5)
    assert [pid["same"][k] for k in atoms] == pytest.approx([2, 0, 0, 0], abs=1e-5)
    p = pid["xor"]
    assert p["units"] == "bits" and p["estimator"] == "exact" and p["source"] == "codes"
    assert p["target"] == "answer" and p["shape"] == [2, 2, 2]


def test_pid_from_features_and_custom_modality_names(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 5
    rows = []
    for i in range(150):
        y = i % 3
        rows.append(
            {
                "task": "shape",
                "id": i,
                "answer": f"c{y}",
                "predictions": {"both": f"c{y}", "img": f"c{y}", "txt": "c0"},
                "features": {
                    "img": (centres[y] + rng.normal(size=8) * 0.1).tolist(),
                    "txt": rng.normal(size=4).tolist(),
                },
            }
        )
    prof, _ = profile(tmp_path, rows, "--bins", 6)
    assert prof["config"]["modalities"] == ["img", "txt"]
    pid = prof["tasks"]["shape"]["pid"]
    h_y = math.log2(3)
    assert pid["source"] == "features" and pid["bins"] == 6
    assert pid["unique_img"] + pid["redundancy"] == pytest.approx(h_y, abs=1e-3)  # image features determine y
    assert pid["unique_img"] > 0.8 * h_y
    assert pid["unique_txt"] < 0.05
    assert set(prof["tasks"]["shape"]["agreement"]) == {"img", "txt"}


def test_pid_target_both_and_one_class(tmp_path):
    grid = [(a, b) for a in range(2) for b in range(2)] * 4
    rows = [
        rec("t", i, str(a), "x", "x", answer="same", codes={"image": a, "text": b})
        for i, (a, b) in enumerate(grid)
    ]
    prof, r = profile(tmp_path, rows)
    t = prof["tasks"]["t"]
    assert t["pid"] is None and "one class" in t["reasons"]["pid"]
    assert "Warning: task 't': PID not computed" in r.stderr
    prof, _ = profile(tmp_path, rows, "--pid-target", "both")
    assert prof["tasks"]["t"]["pid"]["unique_image"] == pytest.approx(1.0, abs=1e-5)
    assert prof["config"]["pid_target"] == "both"


def test_library_api(tmp_path):
    rows = planted(n=60)
    src = write_jsonl(tmp_path / "p.jsonl", rows)
    ps = load_predictions(src)
    assert ps.modalities == ("image", "text") and list(ps.tasks) == [
        "redundant",
        "image_unique",
        "text_unique",
        "synergy",
    ]
    from_file = profile_predictions(ps, seed=2, warn=None)
    from_dicts = profile_predictions(rows, seed=2, warn=None)
    assert from_file["tasks"] == from_dicts["tasks"]
    with pytest.raises(MintError, match="--thresholds"):
        profile_predictions(ps, thresholds="0.5,1.5")


# --------------------------------------------------------------------------- bad input


def _bad(tmp_path, lines, *args, existing=None):
    src = write_jsonl(tmp_path / "bad.jsonl", lines)
    out = tmp_path / "profiles.json"
    if existing is not None:
        out.write_text(existing)
    r = run("--predictions", src, "--out", out, *args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    if existing is None:
        assert not out.exists()
    else:
        assert out.read_text() == existing
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["bad.jsonl"] + (["profiles.json"] if existing else [])
    )
    return errors[0]


GOOD = [rec("t", i, "a", "a", "b") for i in range(3)]


@pytest.mark.parametrize(
    "lines, expected",
    [
        (GOOD[:2] + ['{"task": "t", "id": "9", '], r"bad.jsonl:3: malformed JSON"),
        (GOOD[:1] + [{"task": "t", "id": "5"}], r"bad.jsonl:2: missing field 'predictions'"),
        (
            [{"id": "1", "predictions": {"both": "a", "image": "a", "text": "a"}}],
            r"bad.jsonl:1: missing field 'task'",
        ),
        (
            GOOD[:2] + [{"task": "t", "id": "7", "predictions": {"both": "a", "image": "a", "audio": "a"}}],
            r"bad.jsonl:3: unknown modality key 'predictions.audio'",
        ),
        ([{"task": "t", "id": "1", "predictions": {"image": "a", "text": "a"}}], r"bad.jsonl:1: .*'both'"),
        (
            [{"task": "t", "id": "1", "predictions": {"both": "a", "image": "a", "text": "a", "x": "a"}}],
            r"bad.jsonl:1: .*exactly two modality keys",
        ),
        (
            GOOD + [rec("t", 1, "a", "a", "a")],
            r"bad.jsonl:4: duplicate id '1' in task 't' \(first at line 2\)",
        ),
        (
            GOOD[:1] + [rec("t", 9, "a", None, "a")],
            r"bad.jsonl:2: field 'predictions.image': expected a string",
        ),
        (
            [
                rec("t", 1, "a", "a", "a", features={"image": [0.1, 0.2], "text": [1.0]}),
                '{"task": "t", "id": "8", "predictions": {"both": "a", "image": "a", "text": "a"}, '
                '"features": {"image": [0.1, NaN], "text": [1.0]}}',
            ],
            r"bad.jsonl:2: field 'features.image'\[1\]: feature is NaN",
        ),
        (
            [
                rec("t", 1, "a", "a", "a", features={"image": [1.0, 2.0], "text": [1.0]}),
                rec("t", 2, "a", "a", "a", features={"image": [1.0], "text": [1.0]}),
            ],
            r"bad.jsonl:2: field 'features.image' has 1 values.*lengths must agree",
        ),
        (
            [
                rec("t", 1, "a", "a", "a", features={"image": [1.0], "text": [1.0]}),
                rec("t", 2, "a", "a", "a"),
            ],
            r"bad.jsonl:2: field 'features' is missing.*every record of the task or none",
        ),
        (
            [rec("t", 1, "a", "a", "a", codes={"image": 1.5, "text": 0})],
            r"bad.jsonl:1: field 'codes.image' must be an integer",
        ),
        (
            [rec("t", 1, "a", "a", "a", codes={"image": 1, "sound": 0})],
            r"bad.jsonl:1: unknown modality key 'codes.sound'",
        ),
        (GOOD + [rec("lonely", 1, "a", "a", "a")], r"bad.jsonl:4: task 'lonely' has 1 sample.*at least 2"),
    ],
)
def test_bad_predictions(tmp_path, lines, expected):
    import re

    err = _bad(tmp_path, lines)
    assert re.search(expected, err), err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--thresholds", "1.5"], "--thresholds: expected two numbers"),
        (["--thresholds", "0.5,1.5"], "HIGH > LOW"),
        (["--thresholds", "a,b"], "--thresholds"),
        (["--similarity", "nope"], "unknown similarity 'nope'"),
        (["--samples", "0"], "--samples: expected an integer >= 1"),
        (["--modalities", "image"], "--modalities"),
        (["--modalities", "img,txt"], "unknown modality key 'predictions.image'"),
    ],
)
def test_bad_options(tmp_path, args, expected):
    assert expected in _bad(tmp_path, GOOD, *args)


def test_existing_output_needs_force(tmp_path):
    err = _bad(tmp_path, GOOD, existing='{"old": true}\n')
    assert "already exists" in err and "--force" in err
    # a failing run with --force still leaves the old file alone
    lines = GOOD + ['{"broken": ']
    err = _bad(tmp_path, lines, "--force", existing='{"old": true}\n')
    assert "malformed JSON" in err
    prof, _ = profile(tmp_path, GOOD)  # --force on good input replaces it
    assert prof["tasks"]["t"]["n"] == 3


def test_missing_input_file(tmp_path):
    r = run("--predictions", tmp_path / "nope.jsonl", "--out", tmp_path / "o.json")
    assert r.exit_code == 2 and "Error:" in r.stderr and "nope.jsonl" in r.stderr
    r = run("--out", tmp_path / "o.json")
    assert r.exit_code == 2 and "--predictions" in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_example_fixture(tmp_path):
    """The example file of docs/profiling.md: one task of each kind."""

    src = DATA / "profiling" / "example.jsonl"
    out = tmp_path / "profiles.json"
    r = run("--predictions", src, "--out", out)
    assert r.exit_code == 0, r.output
    tasks = json.loads(out.read_text())["tasks"]
    assert {t: (v["interaction"], v["dominant_modality"]) for t, v in tasks.items()} == {
        "vqa_color": ("redundancy", None),
        "shape_count": ("uniqueness", "image"),
        "meme_intent": ("synergy", None),
    }
    assert tasks["vqa_color"]["pid"]["redundancy"] == pytest.approx(2.0, abs=1e-6)
    sc = tasks["shape_count"]["pid"]
    assert sc["redundancy"] + sc["unique_image"] == pytest.approx(2.0, abs=1e-6)  # = I(X_image; Y) = H(Y)
    assert sc["unique_text"] == pytest.approx(0.0, abs=1e-6) and sc["synergy"] == pytest.approx(0.0, abs=1e-6)
    assert tasks["meme_intent"]["pid"]["synergy"] == pytest.approx(1.0, abs=1e-6)
