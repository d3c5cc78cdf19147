from __future__ import annotations

import json

import numpy as np
import pytest

from leukolib.data import download, limit_dataset, load_dataset
from leukolib.errors import DownloadError
from leukolib.notebook import save_results, setup


def test_setup_uses_the_profile_and_saves_json(tmp_path):
    run = setup("00_test", "smoke", "synthetic", None, tmp_path / "out", seed=3)
    assert len(run.dataset) == run.profile.data.synthetic_images
    assert run.dataset[0].image.shape[:2] == (run.profile.data.synthetic_size,) * 2
    assert run.device in ("cpu", "cuda")
    name = run.save({"value": np.float32(0.5), "array": np.arange(2), "nan": float("nan")})
    assert name == "00_test.json"  # relative: no path of the machine is printed
    record = json.loads((tmp_path / "out" / name).read_text())
    assert record["results"] == {"value": 0.5, "array": [0, 1], "nan": None}
    assert record["params"]["seed"] == 3 and "numpy" in record["versions"]


def test_same_seed_same_subset():
    ds = load_dataset("synthetic", n_images=30, size=64, seed=0)
    a, b = limit_dataset(ds, 9, seed=1), limit_dataset(ds, 9, seed=1)
    assert a.ids == b.ids and len(a) == 9
    assert np.bincount(a.labels).tolist() == [3, 3, 3]  # stratified
    assert limit_dataset(ds, None, 0) is ds


def test_save_results_rejects_nothing_jsonable(tmp_path):
    with pytest.raises(TypeError):
        save_results(tmp_path, "x", {"bad": object()})


def test_download_of_a_private_set_says_what_to_do(tmp_path):
    with pytest.raises(DownloadError, match="no public download.*ALL-IDB authors"):
        download("all_idb2", tmp_path)


def test_download_skips_when_the_data_is_there(tmp_path):
    (tmp_path / "Dataset 1").mkdir()
    (tmp_path / "Dataset 1" / "001.bmp").write_bytes(b"x")
    assert download("jtsc", tmp_path) == tmp_path  # no network used
