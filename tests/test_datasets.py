"""Dataset loaders: the real sets from ../shared/data and every layout on small files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leukolib.data import Subset, load_dataset
from leukolib.errors import DatasetError, ImageReadError, LossyMaskWarning, MaskError


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under root with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _image(seed: int, shape=(20, 24)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _mask(shape=(20, 24), nucleus=255, cytoplasm=None) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    if cytoplasm is not None:
        m[3:15, 3:15] = cytoplasm
    m[5:12, 5:12] = nucleus
    return m


# ----------------------------------------------------------------------------- real data


@pytest.mark.shared
def test_jtsc_loads_300_samples_with_masks_and_five_classes(jtsc_root):
    before = snapshot(jtsc_root)
    ds = load_dataset("jtsc", jtsc_root)
    assert len(ds) == 300 and ds.has_masks
    assert ds.class_names == ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil")
    assert set(np.unique(ds.labels)) == {0, 1, 2, 3, 4}
    for i in (0, 150, 299):
        s = ds[i]
        assert s.image.shape[2] == 3 and s.image.dtype == np.uint8
        assert s.nucleus.shape == s.image.shape[:2] and s.nucleus.dtype == bool and s.nucleus.any()
        assert s.cytoplasm.any() and not (s.nucleus & s.cytoplasm).any()
    assert ds[0].id == "001" and ds.labels[0] == 1  # CSV: "1,2" -> lymphocyte
    assert ds[0].image.shape == (120, 120, 3)
    assert snapshot(jtsc_root) == before


@pytest.mark.shared
def test_bloodseg_loads_367_fields_and_counts_its_repaired_masks(bloodseg_root):
    before = snapshot(bloodseg_root)
    ds = load_dataset("bloodseg", bloodseg_root)
    assert len(ds) == 367 and ds.has_masks and ds.labels is None
    clean, noisy = ds[ds.ids.index("BloodImage_00100")], ds[ds.ids.index("BloodImage_00010")]
    assert clean.image.shape == (480, 640, 3) and clean.nucleus.any()
    assert clean.mask_repaired == 0 and noisy.mask_repaired > 0  # an RGB mask with noise
    assert snapshot(bloodseg_root) == before


@pytest.mark.shared
def test_all_idb2_loads_260_samples_with_masks_and_blast_labels(all_idb2_root):
    before = snapshot(all_idb2_root)
    ds = load_dataset("all_idb2", all_idb2_root)
    assert len(ds) == 260 and ds.has_masks
    assert ds.class_names == ("normal", "blast")
    assert np.bincount(ds.labels).tolist() == [130, 130]
    s = ds[0]
    assert s.id == "Im001_1" and s.label == 1
    assert s.image.shape[2] == 3 and s.nucleus.shape == s.image.shape[:2]
    assert s.nucleus.any() and s.cytoplasm.any()
    shapes = {ds[i].image.shape for i in range(0, 260, 13)}
    assert (257, 257, 3) in shapes
    assert snapshot(all_idb2_root) == before


# ----------------------------------------------------------------------------- layouts


def test_cellavision_layout(tmp_path):
    for i in (1, 2):
        _save(tmp_path / "Dataset 2" / f"{i:03d}.bmp", _image(i))
        _save(tmp_path / "Dataset 2" / f"{i:03d}.png", _mask(cytoplasm=128))
    (tmp_path / "Class Labels of Dataset 2.csv").write_text("image ID,class label\n1,3\n2,5\n")
    ds = load_dataset("cellavision", tmp_path)
    assert len(ds) == 2 and ds.labels.tolist() == [2, 4]
    assert ds[1].nucleus.sum() == 49 and ds[1].cytoplasm.sum() == 144 - 49


def test_cellavision_masks_with_a_few_stray_pixels_load_all_images(tmp_path):
    """CellaVision's public masks: clean 0/128/255 with a handful of stray grey pixels."""
    for i in range(1, 6):
        _save(tmp_path / "Dataset 2" / f"{i:03d}.bmp", _image(i, (60, 60)))
        m = _mask((60, 60), cytoplasm=128)
        if i % 2:
            m[0, :3] = [2, 27, 50]  # 3 of 3600 pixels: under 1 %
        _save(tmp_path / "Dataset 2" / f"{i:03d}.png", m)
    ds = load_dataset("cellavision", tmp_path)
    with pytest.warns(LossyMaskWarning):
        samples = [ds[i] for i in range(len(ds))]
    assert len(samples) == 5 and [s.mask_repaired for s in samples] == [3, 0, 3, 0, 3]
    assert all(s.nucleus.sum() == 49 for s in samples)


def test_bloodseg_maps_noisy_rgb_masks_to_nearest_level(tmp_path):
    _save(tmp_path / "images" / "BloodImage_00001.jpg", _image(0))
    noisy = np.repeat(_mask(nucleus=252, cytoplasm=150)[..., None], 3, axis=-1)
    noisy[0, 0] = (4, 2, 6)
    _save(tmp_path / "masks" / "BloodImage_Mask_00001.png", noisy)
    ds = load_dataset("bloodseg", tmp_path)
    s = ds[0]
    assert s.id == "BloodImage_00001" and s.nucleus.sum() == 49 and ds.labels is None
    assert s.mask_repaired == 144 + 1  # the 252 and 150 region, and the (4, 2, 6) pixel


def test_leukemia_fab_and_imagefolder(tmp_path):
    for k, cls in enumerate(("ALL1", "ALL2", "ALL3")):
        for j in range(2):
            _save(tmp_path / cls / f"img{j}.jpg", _image(10 * k + j))
    ds = load_dataset("leukemia_fab", tmp_path)
    assert len(ds) == 6 and ds.class_names == ("L1", "L2", "L3") and not ds.has_masks
    assert ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds[5].nucleus is None and ds[5].id == "ALL3/img1"
    own = load_dataset("imagefolder", tmp_path)
    assert own.class_names == ("ALL1", "ALL2", "ALL3")


def test_paired_with_configurable_level_and_mask_suffix(tmp_path):
    _save(tmp_path / "images" / "a.png", _image(1))
    _save(tmp_path / "images" / "b.tif", _image(2))
    _save(tmp_path / "masks" / "a.png", _mask(nucleus=1))
    _save(tmp_path / "masks" / "b_mask.png", _mask(nucleus=1))
    ds = load_dataset("paired", tmp_path, nucleus_level=1)
    assert [s.nucleus.sum() for s in ds] == [49, 49]
    assert ds[0].cytoplasm is None


def test_all_idb2_without_masks_loads_for_classification(tmp_path):
    _save(tmp_path / "img" / "Im001_1.tif", _image(0))
    _save(tmp_path / "img" / "Im002_0.tif", _image(1))
    ds = load_dataset("all_idb2", tmp_path)
    assert not ds.has_masks and ds.labels.tolist() == [1, 0] and ds[0].nucleus is None


def test_synthetic_by_name_and_subset():
    ds = load_dataset("synthetic", n_images=6, size=96, seed=1)
    sub = Subset(ds, [4, 1])
    assert len(sub) == 2 and sub.ids == [ds.ids[4], ds.ids[1]]
    np.testing.assert_array_equal(sub[0].image, ds[4].image)
    with pytest.raises(IndexError):
        ds[6]


# ----------------------------------------------------------------------------- bad input


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'nope'"):
        load_dataset("nope", tmp_path)
    with pytest.raises(DatasetError, match="needs a root folder.*ALL-IDB authors"):
        load_dataset("all_idb2")  # jtsc without a root is fetched: tests/test_download.py
    with pytest.raises(DatasetError, match="'Dataset 1' folder not found"):
        load_dataset("jtsc", tmp_path / "missing")


def test_empty_dataset_folder(tmp_path):
    (tmp_path / "img").mkdir()
    with pytest.raises(DatasetError, match=r"img: no images found"):
        load_dataset("all_idb2", tmp_path)
    with pytest.raises(DatasetError, match="no class folders"):
        load_dataset("imagefolder", tmp_path / "img")


def test_image_without_mask_is_named(tmp_path):
    _save(tmp_path / "images" / "a.png", _image(1))
    (tmp_path / "masks").mkdir()
    with pytest.raises(MaskError, match=r"a\.png: no mask found"):
        load_dataset("paired", tmp_path)
    _save(tmp_path / "Dataset 1" / "001.bmp", _image(1))
    with pytest.raises(MaskError, match=r"001\.bmp: no mask found \(expected 001\.png"):
        load_dataset("jtsc", tmp_path)


def test_bad_mask_size_level_and_corrupt_image_are_named_and_nothing_written(tmp_path):
    _save(tmp_path / "images" / "a.png", _image(1))
    _save(tmp_path / "masks" / "a.png", _mask(shape=(10, 10)))
    _save(tmp_path / "images" / "b.png", _image(2))
    _save(tmp_path / "masks" / "b.png", _mask(nucleus=200))
    (tmp_path / "images" / "c.png").write_bytes(b"\x89PNG garbage")
    _save(tmp_path / "masks" / "c.png", _mask())
    before = snapshot(tmp_path)
    ds = load_dataset("paired", tmp_path)
    with pytest.raises(MaskError, match=r"masks/a\.png: mask is 10x10"):
        ds[0]
    with pytest.raises(MaskError, match=r"masks/b\.png: unknown mask level\(s\) 200"):
        ds[1]
    with pytest.raises(ImageReadError, match=r"images/c\.png: (cannot decode|not a readable)"):
        ds[2]
    assert snapshot(tmp_path) == before


def test_bad_names_and_labels(tmp_path):
    _save(tmp_path / "img" / "photo.tif", _image(0))
    with pytest.raises(DatasetError, match=r"photo\.tif: name does not follow"):
        load_dataset("all_idb2", tmp_path)
    d = tmp_path / "z"
    _save(d / "Dataset 1" / "001.bmp", _image(1))
    _save(d / "Dataset 1" / "001.png", _mask())
    (d / "Class Labels of Dataset 1.csv").write_text("image ID,class label\n1,9\n")
    with pytest.raises(DatasetError, match="label 9 not in 1-5"):
        load_dataset("jtsc", d)


def test_loaders_do_not_write(tmp_path):
    _save(tmp_path / "images" / "a.png", _image(1))
    _save(tmp_path / "masks" / "a.png", _mask())
    before = snapshot(tmp_path)
    os.chmod(tmp_path / "images", 0o555)
    try:
        ds = load_dataset("paired", tmp_path)
        assert ds[0].nucleus.sum() == 49
    finally:
        os.chmod(tmp_path / "images", 0o755)
    assert snapshot(tmp_path) == before
