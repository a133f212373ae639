"""Computed vs reference interaction labels: confusion matrix, agreement, Cohen's kappa, the CLI paths."""

import csv
import json

import pytest
from click.testing import CliRunner

from mint.benchmarks import HEMM_COLUMNS, hemm_table
from mint.cli import main
from mint.errors import MintError
from mint.profiling.reference import compare_labels, read_reference_csv, reference_from_meta


def runner():
    try:  # click < 8.2 mixes stderr into output unless told not to
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def refs(labels):
    return {t: {"interaction": k, "dominant": None} for t, k in labels.items()}


def test_hand_computed_confusion_and_kappa():
    # reference: R R U U S S; computed: R U U U S R
    # confusion (rows reference R, U, S): [1 1 0], [0 2 0], [1 0 1]; p_o = 4/6
    # marginals: reference 2/2/2, computed R 2, U 3, S 1 -> p_e = (2*2 + 2*3 + 2*1) / 36 = 1/3
    # kappa = (2/3 - 1/3) / (1 - 1/3) = 0.5
    computed = dict(
        zip("abcdef", ["redundancy", "uniqueness", "uniqueness", "uniqueness", "synergy", "redundancy"])
    )
    reference = refs(
        dict(zip("abcdef", ["redundancy", "redundancy", "uniqueness", "uniqueness", "synergy", "synergy"]))
    )
    out = compare_labels(computed, reference, n_boot=200, seed=1)
    assert out["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert out["agreement"] == pytest.approx(4 / 6)
    assert out["kappa"]["value"] == pytest.approx(0.5)
    lo, hi = out["kappa"]["ci95"]
    assert -1 <= lo <= 0.5 <= hi <= 1
    assert out["disagree"] == ["b", "f"] and out["n"] == 6
    assert out["tasks"]["b"] == {"computed": "uniqueness", "reference": "redundancy", "agrees": False}
    again = compare_labels(computed, reference, n_boot=200, seed=1)
    assert again["kappa"]["ci95"] == out["kappa"]["ci95"]  # seeded


def test_perfect_and_undefined_kappa_and_coverage():
    computed = {"a": "redundancy", "b": "synergy", "c": "synergy"}
    out = compare_labels(computed, refs({"a": "redundancy", "b": "synergy", "z": "uniqueness"}), n_boot=50)
    assert out["kappa"]["value"] == pytest.approx(1.0) and out["agreement"] == 1.0
    assert out["unlabelled"] == ["c"] and out["missing"] == ["z"]
    # a single label throughout: kappa is 0/0, reported as undefined (None), never a number
    one = compare_labels({"a": "synergy", "b": "synergy"}, refs({"a": "synergy", "b": "synergy"}), n_boot=20)
    assert one["kappa"]["value"] is None and one["kappa"]["ci95"] is None and one["kappa"]["undefined"] == 20
    with pytest.raises(MintError, match="no task has both"):
        compare_labels({"a": "synergy"}, refs({"b": "synergy"}))


def test_dominant_modality_compared_for_uniqueness():
    reference = {
        "a": {"interaction": "uniqueness", "dominant": "image"},
        "b": {"interaction": "uniqueness", "dominant": "text"},
    }
    out = compare_labels(
        {"a": "uniqueness", "b": "uniqueness"},
        reference,
        computed_dominant={"a": "image", "b": "image"},
        n_boot=10,
    )
    assert out["dominant"] == {"compared": 2, "agree": 1}
    assert out["tasks"]["b"]["dominant_agrees"] is False


def test_reference_csv_errors(tmp_path):
    good = tmp_path / "labels.csv"
    good.write_text("task,interaction,dominant\nt1,uniqueness,image\nt2,synergy,\n")
    assert read_reference_csv(good) == {
        "t1": {"interaction": "uniqueness", "dominant": "image"},
        "t2": {"interaction": "synergy", "dominant": None},
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("task,interaction\nt1,redundancy\nt2,synergistic\n")
    with pytest.raises(MintError, match=r"bad.csv:3: field 'interaction': unknown interaction 'synergistic'"):
        read_reference_csv(bad)
    nohead = tmp_path / "nohead.csv"
    nohead.write_text("name,label\nt1,synergy\n")
    with pytest.raises(MintError, match=r"nohead.csv:1: missing column 'task'"):
        read_reference_csv(nohead)
    dup = tmp_path / "dup.csv"
    dup.write_text("key,kind\nt1,synergy\nt1,synergy\n")
    with pytest.raises(MintError, match=r"dup.csv:3: .*duplicate task 't1'"):
        read_reference_csv(dup)


def test_hemm_table_counts_and_facts():
    rows = hemm_table()
    assert len(rows) == 28 and tuple(rows[0]) == HEMM_COLUMNS
    counts = {k: sum(r["interaction"] == k for r in rows) for k in ("redundancy", "uniqueness", "synergy")}
    assert counts == {"redundancy": 12, "uniqueness": 9, "synergy": 7}
    by = {r["task"]: r for r in rows}
    for key in ("memecaps", "hatefulmemes", "mmimdb"):  # MINT's synergy examples
        assert by[key]["interaction"] == "synergy"
    assert by["vqarad"]["use_case"] == "health" and by["vqarad"]["external_knowledge"] == "yes"
    assert by["flickr30k"]["information_flow"] == "translation"
    assert {r["use_case"] for r in rows} == {"multimedia", "affect", "science", "health", "hci"}
    assert read_reference_csv("hemm")["scienceqa"]["interaction"] == "synergy"


def planted_rows():
    """Two image-unique tasks, one redundant, one synergistic (by who agrees with the multimodal answer)."""
    rows = []
    for task, agree in [("img1", "image"), ("img2", "image"), ("red", "both"), ("syn", "none")]:
        for i in range(40):
            y = ["red", "blue", "green", "black"][i % 4]
            other = ["red", "blue", "green", "black"][(i + 2) % 4]
            img = y if agree in ("image", "both") else other
            txt = y if agree == "both" else ["red", "blue", "green", "black"][(i + 1) % 4]
            rows.append(
                {
                    "task": task,
                    "id": str(i),
                    "answer": y,
                    "predictions": {"both": y, "image": img, "text": txt},
                }
            )
    return rows


def test_profile_uses_suite_kinds_from_sidecar_and_compare_labels(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in planted_rows()))
    meta = {
        "tasks": {
            "img1": {"kind": "uniqueness", "dominant": "image"},
            "img2": {"kind": "synergy"},
            "red": {"kind": "redundancy"},
            "syn": {"kind": "synergy"},
        }
    }
    (tmp_path / "preds.jsonl.meta.json").write_text(json.dumps(meta))
    assert reference_from_meta(meta)["img1"] == {"interaction": "uniqueness", "dominant": "image"}
    out = tmp_path / "profiles.json"
    r = runner().invoke(main, ["profile", "--predictions", str(preds), "--out", str(out)])
    assert r.exit_code == 0, r.output
    prof = json.loads(out.read_text())
    ref = prof["reference"]
    assert [prof["tasks"][t]["interaction"] for t in ("img1", "img2", "red", "syn")] == [
        "uniqueness",
        "uniqueness",
        "redundancy",
        "synergy",
    ]
    assert ref["disagree"] == ["img2"] and ref["agreement"] == pytest.approx(0.75)
    assert prof["tasks"]["img1"]["reference"]["dominant_agrees"] is True
    assert "Cohen's kappa" in r.stderr

    # the same labels kept outside the suite, through compare-labels, with the marked figure
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "interaction", "dominant"])
        w.writerows(
            [
                ["img1", "uniqueness", "image"],
                ["img2", "synergy", ""],
                ["red", "redundancy", ""],
                ["syn", "synergy", ""],
            ]
        )
    fig = tmp_path / "map.png"
    out2 = tmp_path / "compared.json"
    r = runner().invoke(
        main,
        ["compare-labels", str(out), "--reference", str(labels), "--figure", str(fig), "--out", str(out2)],
    )
    assert r.exit_code == 0, r.output
    assert "agreement 0.750" in r.stdout and fig.stat().st_size > 0
    compared = json.loads(out2.read_text())
    assert compared["reference"]["confusion"] == ref["confusion"]
    assert compared["reference"]["kappa"]["value"] == pytest.approx(ref["kappa"]["value"])
    # existing outputs are kept without --force; a bad labels file is one Error line, exit 2
    r = runner().invoke(main, ["compare-labels", str(out), "--reference", str(labels), "--out", str(out2)])
    assert r.exit_code == 2 and "already exists" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("task,interaction\nimg1,both\n")
    r = runner().invoke(main, ["compare-labels", str(out), "--reference", str(bad)])
    assert r.exit_code == 2 and r.stderr.count("Error:") == 1 and "bad.csv:2" in r.stderr


def test_interaction_map_rings_disagreeing_tasks():
    from mint.plotting.ternary import interaction_map
    from mint.profiling import profile_predictions
    from mint.profiling.reference import attach_reference

    prof = attach_reference(
        profile_predictions(planted_rows(), warn=None, n_boot=20),
        refs({"img1": "uniqueness", "img2": "synergy", "red": "redundancy", "syn": "synergy"}),
        n_boot=20,
    )
    fig = interaction_map(prof)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(lbl.startswith("computed \u2260 reference (1 of 4)") for lbl in labels)
    rings = [c for c in ax.collections if c.get_label().startswith("computed")]
    assert len(rings) == 1 and len(rings[0].get_offsets()) == 1
