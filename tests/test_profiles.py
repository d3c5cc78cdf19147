from __future__ import annotations

import pytest

from leukolib import paper
from leukolib.profiles import PROFILES, get_profile


def test_three_profiles_with_growing_sizes():
    smoke, cpu, full = (get_profile(n) for n in ("smoke", "cpu", "paper"))
    assert set(PROFILES) == {"smoke", "cpu", "paper"}
    for stage, field in (("segmentation", "image_size"), ("segmentation", "folds"),
                         ("segmentation", "epochs"), ("classification", "image_size"),
                         ("classification", "epochs"), ("classification", "folds")):
        values = [getattr(getattr(p, stage), field) for p in (smoke, cpu, full)]
        assert values == sorted(values), (stage, field)


def test_paper_profile_follows_the_paper():
    p = get_profile("paper")
    s, c = p.segmentation, p.classification
    assert (s.folds, s.epochs, s.batch_size, s.image_size, s.hparams) == (10, 30, 8, 256, "paper")
    # section 4.2: batch 8, Adam 1e-5, weight decay 1e-4, resize 232 / crop 224, 10 % test
    assert (c.folds, c.epochs, c.batch_size, c.lr, c.weight_decay) == (10, 30, 8, 1e-5, 1e-4)
    assert (c.resize, c.image_size, c.test_fraction, c.pretrained) == (232, 224, 0.1, True)
    assert set(paper.UNET_HPARAMS) >= {"jtsc", "all_idb2", "bloodseg"}  # what "paper" reads


def test_unet_sizes_divide_by_the_strides():
    for p in PROFILES.values():
        assert p.segmentation.image_size % 8 == 0, p.name
        assert p.classification.resize >= p.classification.image_size, p.name


def test_unknown_profile():
    with pytest.raises(ValueError, match="choose one of smoke, cpu, paper"):
        get_profile("fast")
    assert get_profile(get_profile("cpu")) is get_profile("cpu")
    assert get_profile("cpu").to_dict()["segmentation"]["folds"] == 5


def test_cpu_inputs_keep_their_native_side_up_to_the_ceiling():
    import numpy as np

    from leukolib.classification.inputs import default_crop, input_size
    from leukolib.data import Sample

    c = get_profile("cpu").classification

    def side(shape, name):
        cells = [Sample(np.zeros((*shape, 3), np.uint8), None, None, 0, "x")]
        return input_size(cells, c.image_size, c.resize, *default_crop(name), c.native_size)

    assert side((128, 128), "synthetic") == (48, 50)  # the nucleus window, never enlarged
    assert side((120, 120), "jtsc")[0] == 112
    assert side((257, 257), "all_idb2")[0] == 112
    p = get_profile("paper").classification
    assert input_size([Sample(np.zeros((120, 120, 3), np.uint8), None, None, 0, "x")],
                      p.image_size, p.resize, None, 0.0, p.native_size) == (224, 232)


def test_tuning_smears_are_never_the_books():
    """Settings are chosen on smears of a reserved seed range that no page or report draws."""
    from leukolib.data import load_dataset, profile_dataset
    from leukolib.data.fingerprint import dataset_fingerprints
    from leukolib.profiles import TUNING_SEED_BASE

    with pytest.raises(ValueError, match="reserved for choosing settings"):
        profile_dataset("synthetic", None, "smoke", seed=TUNING_SEED_BASE)
    book = set(dataset_fingerprints(profile_dataset("synthetic", None, "smoke", seed=0)))
    tuning = load_dataset("synthetic", n_images=12, size=128, seed=TUNING_SEED_BASE)
    assert not book & set(dataset_fingerprints(tuning))


def test_unet_epochs_follow_the_budget_rule_for_the_shared_datasets_only():
    """``cpu`` trains each shared dataset for its own epochs; every other dataset for ``epochs``."""
    from leukolib.data import profile_dataset
    from leukolib.segmentation.hparams import unet_hparams
    from leukolib.segmentation.training import _config

    s = get_profile("cpu").segmentation
    assert {d: s.epochs_for(d) for d in ("jtsc", "all_idb2", "bloodseg", "synthetic", None)} \
        == {"jtsc": 26, "all_idb2": 29, "bloodseg": 9, "synthetic": 8, None: 8}
    for name in ("smoke", "paper"):
        p = get_profile(name).segmentation
        assert p.epochs_for("jtsc") == p.epochs
    ds = profile_dataset("synthetic", None, "smoke", seed=0)
    cfg = _config(ds, get_profile("cpu"), unet_hparams(ds.name), 0, {}, {})
    assert cfg["epochs"] == 8
    assert _config(ds, get_profile("cpu"), unet_hparams(ds.name), 0, {"epochs": 3}, {})[
        "epochs"] == 3
