"""Every shipped HEMM suite file validates and loads a small local dataset built here in its declared
schema (a few rows with generated images, saved with save_to_disk where MINT_DATASETS_DIR points)."""

import numpy as np
import pytest
import yaml

from mint.benchmarks import hemm_table, suite_names, suite_path
from mint.errors import MintError
from mint.metrics import references
from mint.tasks import load_suite
from mint.tasks.loaders import DATASETS_DIR_ENV

datasets = pytest.importorskip("datasets")  # in the dev extra

N = 4


def _images(n, seed):
    rng = np.random.default_rng(seed)
    from PIL import Image

    return [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(n)]


def _vqa(seed):
    return {
        "image": _images(N, seed),
        "question": [f"is there a lesion in part {i}?" for i in range(N)],
        "answer": ["yes", "no", "yes", "left lung"],
    }


UC_MERCED = (
    "agricultural",
    "airplane",
    "baseballdiamond",
    "beach",
    "buildings",
    "chaparral",
    "denseresidential",
    "forest",
    "freeway",
    "golfcourse",
    "harbor",
    "intersection",
    "mediumresidential",
    "mobilehomepark",
    "overpass",
    "parkinglot",
    "river",
    "runway",
    "sparseresidential",
    "storagetanks",
    "tenniscourt",
)

#: hub id -> (split names, builder of one split's columns, features) in the schema each suite declares
SCHEMAS = {
    "flaviagiammarino/vqa-rad": (("train", "test"), _vqa, None),
    "flaviagiammarino/path-vqa": (("train", "validation", "test"), _vqa, None),
    "lmms-lab/flickr30k": (
        ("test",),
        lambda seed: {
            "image": _images(N, seed),
            "caption": [[f"a photo number {i}", f"picture {i} of a scene", "an image"] for i in range(N)],
            "sentids": [[str(i)] for i in range(N)],
            "img_id": [str(100 + i) for i in range(N)],
            "filename": [f"{100 + i}.jpg" for i in range(N)],
        },
        None,
    ),
    "blanchon/UC_Merced": (
        ("train",),
        lambda seed: {"image": _images(N, seed), "label": [0, 20, 7, 0]},
        {"label": UC_MERCED},
    ),
    "timm/resisc45": (
        ("train", "validation", "test"),
        lambda seed: {"image": _images(N, seed), "label": [0, 1, 2, 0]},
        {"label": ("airplane", "baseball_diamond", "forest")},
    ),
}


def _save(root, hub_id):
    splits, build, class_labels = SCHEMAS[hub_id]
    parts = {}
    for k, split in enumerate(splits):
        columns = build(k)
        features = None
        if class_labels:
            ds = datasets.Dataset.from_dict(columns)
            features = ds.features.copy()
            for col, names in class_labels.items():
                features[col] = datasets.ClassLabel(names=list(names))
        parts[split] = datasets.Dataset.from_dict(columns, features=features)
    datasets.DatasetDict(parts).save_to_disk(str(root / hub_id))


def test_every_hemm_dataset_with_a_suite_has_one_in_the_test_schemas():
    assert set(suite_names()) == {"vqarad", "pathvqa", "flickr30k", "resisc45", "ucmerced"}
    declared = {yaml.safe_load(suite_path(n).read_text())["tasks"][0]["hf"] for n in suite_names()}
    assert declared == set(SCHEMAS)


@pytest.mark.parametrize("name", ["vqarad", "pathvqa", "flickr30k", "resisc45", "ucmerced"])
def test_shipped_suite_loads_its_local_dataset(name, tmp_path, monkeypatch):
    entry = yaml.safe_load(suite_path(name).read_text())["tasks"][0]
    _save(tmp_path, entry["hf"])
    monkeypatch.setenv(DATASETS_DIR_ENV, str(tmp_path))
    (task,) = load_suite(f"hemm:{name}")
    hemm = {r["task"]: r for r in hemm_table()}
    assert task.name == name and task.kind == hemm[name]["interaction"]  # HEMM's label is the reference
    assert task.metric == entry["metric"] and len(task.test) == N
    assert task.test[0].image.size == (16, 16)
    if name == "flickr30k":
        assert task.train == [] and references(task.test[0]) == [
            "a photo number 0",
            "picture 0 of a scene",
            "an image",
        ]
        assert task.test[1].answer == "a photo number 1" and task.test[1].id == "101"
    elif name == "ucmerced":
        assert task.train == [] and task.answers == list(UC_MERCED)
        assert [s.answer for s in task.test] == ["agricultural", "tenniscourt", "forest", "agricultural"]
    elif name == "resisc45":
        assert [s.answer for s in task.test] == ["airplane", "baseball_diamond", "forest", "airplane"]
        assert len(task.train) == N
    else:
        assert task.test[0].text == "is there a lesion in part 0?" and task.test[3].answer == "left lung"


def test_missing_local_copy_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setenv(DATASETS_DIR_ENV, str(tmp_path))  # empty: nothing saved, and no network
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MintError, match=r"vqarad.yaml:\d+: task 'vqarad': field 'test': cannot load"):
        load_suite("hemm:vqarad")
    with pytest.raises(MintError, match="unknown shipped suite 'hemm:nope'"):
        load_suite("hemm:nope")
