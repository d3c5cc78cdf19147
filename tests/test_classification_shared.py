"""The classification stage on real data (``../shared/data``): splits and baselines with floors."""

from __future__ import annotations

import numpy as np
import pytest

from leukolib.classification.baselines import run_baselines
from leukolib.classification.splits import classifier_split
from leukolib.data import load_dataset
from leukolib.data.duplicates import image_thumbnails, thumbnail_groups

pytestmark = pytest.mark.shared


def _record(ds, folds=3, seed=0):
    """A run record's split (what the baselines read), made by the classifiers' own protocol."""
    thumbs, prints = image_thumbnails(ds)
    near = thumbnail_groups(thumbs, prints)
    sp = classifier_split(prints, ds.labels, 0.1, folds, seed, near_duplicates=near)
    ids = ds.ids
    return prints, sp, {"split": {"test_ids": [ids[i] for i in sp.test]},
                        "folds": [{"train_ids": [ids[i] for i in t], "val_ids": [ids[i] for i in v]}
                                  for t, v in sp.folds]}


def test_all_idb2_duplicates_stay_together_and_colour_alone_scores_high(all_idb2_root):
    ds = load_dataset("all_idb2", all_idb2_root)
    prints, sp, record = _record(ds)
    twins = [ds.ids.index("Im223_0"), ds.ids.index("Im257_0")]
    assert prints[twins[0]] == prints[twins[1]]
    assert (twins[0] in sp.test) == (twins[1] in sp.test)
    base = run_baselines(ds, record, seed=0, progress=False)
    # the colour question: a histogram of the whole image separates blasts from normal cells
    assert base["color"]["val_acc_mean"] >= 0.9
    assert base["handcrafted"]["val_acc_mean"] >= 0.85
    assert len(base["color"]["test"]["ids"]) == len(sp.test)


def test_jtsc_five_classes_with_a_single_basophil(jtsc_root):
    ds = load_dataset("jtsc", jtsc_root)
    prints, sp, record = _record(ds)
    assert np.bincount(ds.labels).tolist() == [176, 53, 48, 22, 1]
    for name in ("112", "139"):  # a duplicate pair
        assert ds.ids.index(name) >= 0
    a, b = ds.ids.index("112"), ds.ids.index("139")
    assert prints[a] == prints[b] and (a in sp.test) == (b in sp.test)
    base = run_baselines(ds, record, seed=0, progress=False, names=["handcrafted"])
    assert base["handcrafted"]["val_acc_mean"] >= 0.8  # majority class alone: 0.59
