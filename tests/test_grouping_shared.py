"""Near duplicates never straddle a split of the shared data: every seed, every fold, every report.

The known pairs are the detector's (``leukolib/reference/duplicates.json``) and
the ones checked by hand when the leak was found (issue 22). Each test also
splits once without the near-duplicate groups and asserts that pairs then do
straddle, so a test that passes is one that would fail with grouping off.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from leukolib.classification.inputs import InputSpec
from leukolib.classification.splits import classifier_split
from leukolib.classification.views import build_views
from leukolib.data import load_dataset
from leukolib.data.duplicates import image_thumbnails, thumbnail_groups
from leukolib.data.fingerprint import split_groups
from leukolib.folds import kfold

pytestmark = pytest.mark.shared

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"jtsc": "segmentation_WBC", "all_idb2": "ALL_IDB2", "bloodseg": "BloodSeg"}
BY_HAND = {"jtsc": [("157", "158"), ("166", "171")],
           "all_idb2": [("Im134_0", "Im245_0"), ("Im028_1", "Im031_1"), ("Im138_0", "Im146_0")]}
SEEDS = range(5)


def _known_pairs(name: str) -> list[tuple[str, str]]:
    shipped = json.loads((ROOT / "leukolib" / "reference" / "duplicates.json").read_text())
    pairs = [(m["a"], m["b"]) for m in shipped["results"]["datasets"][name]["matched"]]
    return sorted(set(pairs) | set(BY_HAND.get(name, [])))


@pytest.fixture(scope="module", params=sorted(FOLDERS))
def grouped(request, shared_data):
    name = request.param
    ds = load_dataset(name, shared_data / FOLDERS[name])
    thumbs, prints = image_thumbnails(ds)
    near = thumbnail_groups(thumbs, prints)
    pairs = [(ds.ids.index(a), ds.ids.index(b)) for a, b in _known_pairs(name)]
    return name, ds, prints, near, pairs


def _split_pairs(pairs, parts) -> int:
    """How many pairs have their two images in different parts."""
    side = {}
    for k, part in enumerate(parts):
        side.update(dict.fromkeys(np.asarray(part).tolist(), k))
    return sum(side.get(a) != side.get(b) for a, b in pairs)


def test_the_detector_finds_the_pairs_found_by_hand(grouped):
    name, ds, _, near, pairs = grouped
    assert pairs and all(near[a] == near[b] for a, b in pairs), name


@pytest.mark.parametrize("n_folds", [2, 10])
def test_classifier_splits_keep_near_duplicates_together(grouped, n_folds):
    name, ds, prints, near, pairs = grouped
    labels = ds.labels
    leaks_without = 0
    for seed in SEEDS:
        sp = classifier_split(prints, labels, 0.1, n_folds, seed, near_duplicates=near)
        assert _split_pairs(pairs, [sp.test, sp.trainval]) == 0, (name, seed)
        for k, (train, val) in enumerate(sp.folds):
            assert _split_pairs(pairs, [train, val]) == 0, (name, seed, k)
        off = classifier_split(prints, labels, 0.1, n_folds, seed, near_duplicates=None)
        leaks_without += _split_pairs(pairs, [off.test, off.trainval]) + sum(
            _split_pairs(pairs, [t, v]) for t, v in off.folds)
    assert leaks_without > 0, "these pairs never straddle even without grouping: a weak test"


@pytest.mark.parametrize("n_folds", [5, 10])
def test_unet_folds_keep_near_duplicates_together(grouped, n_folds):
    name, ds, prints, near, pairs = grouped
    leaks_without = 0
    for seed in SEEDS:
        groups = split_groups(prints, ds.groups, near_duplicates=near)
        for f in kfold(len(ds), n_folds, seed, groups=groups, val_fraction=0.1):
            assert _split_pairs(pairs, [f.train, f.val, f.test]) == 0, (name, seed, f.index)
        off = split_groups(prints, ds.groups, near_duplicates=None)
        leaks_without += sum(_split_pairs(pairs, [f.train, f.val, f.test])
                             for f in kfold(len(ds), n_folds, seed, groups=off, val_fraction=0.1))
    assert leaks_without > 0


def test_the_classifiers_views_carry_the_detectors_groups(all_idb2_root):
    """What training splits on is what the detector finds (the real code path, not a copy)."""
    ds = load_dataset("all_idb2", all_idb2_root)
    data = build_views(ds, InputSpec("raw", 32, 36), progress=False)
    thumbs, prints = image_thumbnails(ds)
    assert np.array_equal(data.near_duplicates,
                          thumbnail_groups(thumbs, prints))
    assert data.thumbnails.shape == (len(ds), 64, 64)


def _audit_module():
    spec = importlib.util.spec_from_file_location("split_audit",
                                                  ROOT / "benchmarks" / "split_audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_shipped_split_is_audited_and_grouped_ones_are_clean(shared_data):
    """The committed audit is today's, and no result made with near-duplicate groups leaks."""
    from leukolib import reference

    fresh = json.loads(json.dumps(_audit_module().audit(shared_data)))
    assert fresh == reference.load("split_audit")["results"], \
        "run python benchmarks/split_audit.py and commit leukolib/reference/split_audit.json"
    for row in fresh["splits"]:
        if "near duplicates" in row["grouped_by"]:
            assert row["clean"], row
        else:  # made before the grouping: the book flags it (leukolib.reference.split_status)
            assert reference.split_status(row["file"])["clean"] == row["clean"]


def test_a_result_made_before_its_source_was_regenerated_is_judged_by_the_split_it_read(
        shared_data):
    """robustness.json predates segmentation.json's last run: the folds it read decide."""
    import subprocess

    audit = _audit_module()
    made = audit._made("robustness.json")[0]
    if subprocess.run(["git", "cat-file", "-e", str(made)], cwd=ROOT,
                      capture_output=True).returncode != 0:
        pytest.skip("no git history here (a shallow clone): the audit falls back on dates")
    if audit._descends("robustness.json", "segmentation.json:jtsc"):
        pytest.skip("robustness.json was made from today's segmentation.json: no older split")
    then = audit._source_then("robustness.json", "segmentation.json:jtsc")
    assert then["provenance"]["commit"] != audit._made("segmentation.json:jtsc")[0]
    assert audit._is_ancestor(then["provenance"]["commit"], made)
    assert audit._clean_then("robustness.json", "segmentation.json:jtsc", shared_data, {})
