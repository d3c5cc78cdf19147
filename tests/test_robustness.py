"""Corruptions, sweeps and their tables: seeded, graded, paired, and honest about the pipeline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from leukolib.data import load_dataset
from leukolib.robustness.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    CorruptedDataset,
    corrupt,
    corrupt_images,
    paper_corrupt,
    paper_transform,
    severity_levels,
)
from leukolib.robustness.report import (
    accuracy_curves,
    compare_degradation,
    compare_segmentation,
    retained_accuracy,
    save_report,
    segmentation_curves,
    table7,
    table7_beside_paper,
)
from leukolib.robustness.sweeps import Pipeline, classifier_sweep, paper_setting, segmentation_sweep
from leukolib.segmentation import segment_nucleus


@pytest.fixture(scope="module")
def smears():
    return load_dataset("synthetic", n_images=36, size=96, seed=0)


def _features(images, masks):
    out = []
    for i, im in enumerate(images):
        m = masks[i] if masks is not None else np.ones(im.shape[:2], bool)
        inside = im[m] if m.any() else np.zeros((1, 3))
        out.append([m.mean(), *(inside.mean(0) / 255), *(inside.std(0) / 255)])
    return np.array(out)


@pytest.fixture(scope="module")
def pipelines(smears):
    """Two real classifiers (logistic regressions) trained on 24 smears, tested on 12."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = [smears[i] for i in range(24)]
    ims, y = [s.image for s in train], [s.label for s in train]
    masks = [segment_nucleus(im) for im in ims]
    seen: dict[str, list] = {"masks": [], "images": []}

    def fit(use_masks):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        clf.fit(_features(ims, masks if use_masks else None), y)

        def predict(images, m):
            seen["masks"].append(m)
            seen["images"].append(list(images))
            return clf.decision_function(_features(images, m))

        return predict

    seg = Pipeline("segmented-lr", fit(True), lambda images: [segment_nucleus(i) for i in images],
                   "handcrafted")
    raw = Pipeline("raw-lr", fit(False))
    test = [smears[i] for i in range(24, 36)]
    return seg, raw, test, seen


# ------------------------------------------------------------------ corruptions


def test_corruptions_are_seeded_per_image_and_severity_zero_is_clean(smears):
    im = smears[0].image
    for name in CORRUPTIONS:
        assert corrupt(im, name, 0) is im
        a = corrupt(im, name, 3, seed=1, key="a")
        assert (a == corrupt(im, name, 3, seed=1, key="a")).all(), name
        assert a.dtype == np.uint8 and a.shape == im.shape
    noisy = [corrupt(im, "gaussian_noise", 2, seed=1, key=k) for k in ("a", "b")]
    assert (noisy[0] != noisy[1]).any()
    assert (corrupt(im, "gaussian_noise", 2, seed=2, key="a") != noisy[0]).any()
    # the order of the images does not matter, only their ids
    ims = [smears[i].image for i in range(3)]
    fwd = corrupt_images(ims, "jpeg", 5, 0, ["x", "y", "z"])
    back = corrupt_images(ims[::-1], "jpeg", 5, 0, ["z", "y", "x"])
    assert all((f == b).all() for f, b in zip(fwd, back[::-1], strict=True))


def test_every_corruption_grows_with_its_severity():
    """Mean absolute change of the pixels, over 6 smears of 256 px, rises with the severity."""
    ims = [s.image.astype(float) for s in load_dataset("synthetic", n_images=6, size=256, seed=1)]
    for name in CORRUPTIONS:
        change = [np.mean([np.abs(corrupt(im.astype(np.uint8), name, s, 0, i) - im).mean()
                           for i, im in enumerate(ims)]) for s in SEVERITIES]
        assert all(np.diff(change) > 0), (name, np.round(change, 2))


def test_blur_sizes_scale_with_the_image_and_bad_names_are_refused():
    mb, df = CORRUPTIONS["motion_blur"], CORRUPTIONS["defocus_blur"]
    assert mb.parameter(5, (256, 256)) == 17 and mb.parameter(5, (128, 200)) == 9
    assert mb.parameter(1, (64, 64)) == 3 and mb.parameter(3, (640, 480)) % 2 == 1
    assert df.parameter(5, (512, 512)) == 12 and df.parameter(1, (64, 64)) == 1
    assert CORRUPTIONS["jpeg"].parameter(5, (64, 64)) == 7
    with pytest.raises(ValueError, match="unknown corruption 'fog'"):
        corrupt(np.zeros((8, 8, 3), np.uint8), "fog", 1)
    with pytest.raises(ValueError, match="severity 6"):
        corrupt(np.zeros((8, 8, 3), np.uint8), "jpeg", 6)
    assert severity_levels(5) == SEVERITIES and severity_levels(2) == (1, 5)


def test_the_paper_noise_is_albumentations_1x_variance_10_in_grey_levels():
    """GaussNoise(var_limit=10) of 1.x: an SD of at most sqrt(10) = 3.2 grey levels."""
    import albumentations as A

    flat = np.full((128, 128, 3), 128, np.uint8)
    sds = []
    for seed in range(40):
        t = paper_transform(seed, p=1.0)
        noise = [s for s in t.transforms if isinstance(s, A.GaussNoise)][0]
        lo, hi = noise.std_range
        assert lo == hi <= math.sqrt(10) / 255 + 1e-12
        sds.append(lo * 255)
        out = t(image=flat)["image"].astype(float)
        # the flat image stays flat under blur, the factor shifts its mean: only noise remains
        assert out.std() <= math.sqrt(10) + 0.5
    # 1.x draws the variance uniformly in (0, 10): the SD's mean is 2/3 sqrt(10) = 2.1
    assert np.mean(sds) == pytest.approx(2 / 3 * math.sqrt(10), abs=0.35)
    steps = [type(s).__name__ for s in paper_transform(0).transforms]
    assert steps == ["MotionBlur", "MultiplicativeNoise", "GaussNoise"]
    assert all(s.p == 0.5 for s in paper_transform(0).transforms)


def test_the_paper_augmentation_moves_the_mask_with_the_image(smears):
    from leukolib.classification.augment import training_transforms

    moved = 0
    for i in range(8):
        s = smears[i]
        img, mask = paper_corrupt(s.image, s.nucleus, seed=0, key=s.id, p=1.0,
                                  augmentation=training_transforms(seed=i, p=0.5))
        assert mask.dtype == bool and mask.shape == img.shape[:2]
        moved += not (mask == s.nucleus).all()
        # the nucleus is the darkest, bluest part: the moved mask still covers it
        dark = img.astype(float).mean(2) < np.percentile(img.mean(2), 100 * (1 - mask.mean()))
        assert (dark & mask).sum() / max(mask.sum(), 1) > 0.6
    assert moved > 0


def test_a_corrupted_dataset_changes_only_the_pixels(smears):
    view = CorruptedDataset(smears, "defocus_blur", 4, seed=3)
    assert view.ids == smears.ids and (view.labels == smears.labels).all()
    a, b = view[2], smears[2]
    assert (a.nucleus == b.nucleus).all() and a.label == b.label and a.id == b.id
    assert (a.image == corrupt(b.image, "defocus_blur", 4, 3, b.id)).all()
    assert (CorruptedDataset(smears, "none", 0)[2].image == b.image).all()
    with pytest.raises(ValueError):
        CorruptedDataset(smears, "jpeg", 9)


# ---------------------------------------------------------------------- sweeps


def test_classifier_sweep_rows_ways_and_masks(pipelines):
    seg, raw, test, seen = pipelines
    ims, y, ids = [s.image for s in test], [s.label for s in test], [s.id for s in test]
    seen["masks"].clear()
    seen["images"].clear()
    pi = classifier_sweep([seg, raw], ims, y, ids, ["gaussian_noise", "jpeg"], (1, 5), seed=0,
                          progress=False)
    n = len(test)
    # clean: seg + raw; per level: seg before, seg after, raw
    assert len(pi) == 2 * n + 4 * 3 * n
    assert set(pi[pi["model"] == "raw-lr"]["way"]) == {"raw"}
    assert set(pi[pi["model"] == "segmented-lr"]["way"]) == {"clean", "before", "after"}
    clean_masks = [segment_nucleus(im) for im in ims]
    # the call order: clean (seg, raw), then per level seg before, seg after, raw
    before, after = seen["masks"][2 + 3 * 3], seen["masks"][3 + 3 * 3]  # 4th level: jpeg 5
    assert all((a == c).all() for a, c in zip(after, clean_masks, strict=True))
    bad = corrupt_images(ims, "jpeg", 5, 0, ids)
    assert all((b == segment_nucleus(x)).all() for b, x in zip(before, bad, strict=True))
    assert any((b != c).any() for b, c in zip(before, clean_masks, strict=True))
    # same seed, same table; the clean rows are the plain predictions
    again = classifier_sweep([seg, raw], ims, y, ids, ["gaussian_noise", "jpeg"], (1, 5), seed=0,
                             progress=False)
    pd.testing.assert_frame_equal(pi, again)
    clean_pred = seg.predict(ims, clean_masks).argmax(1)
    got = pi[(pi["model"] == "segmented-lr") & (pi["severity"] == 0)]["pred"].to_numpy()
    assert (got == clean_pred).all()


def test_paper_setting_gives_every_model_the_same_corrupted_images(pipelines):
    from leukolib.classification.augment import training_transforms

    seg, raw, test, seen = pipelines
    ims, y, ids = [s.image for s in test], [s.label for s in test], [s.id for s in test]
    seen["images"].clear()
    pp = paper_setting([seg, raw], ims, y, ids, seed=0, augmentation=training_transforms)
    before, after, raw_images = seen["images"][2:5]
    for a, b, c in zip(before, after, raw_images, strict=True):
        assert (a == b).all() and (a == c).all()
    assert any((a != im).any() for a, im in zip(before, ims, strict=True))
    t7 = table7(pp, ("L1", "L2", "L3"))
    assert list(t7.index) == [("segmented-lr", "before"), ("segmented-lr", "after"),
                              ("raw-lr", "raw")]
    from sklearn.metrics import precision_recall_fscore_support

    g = pp[(pp["model"] == "raw-lr") & (pp["corruption"] == "paper")]
    p, r, f, _ = precision_recall_fscore_support(g["label"], g["pred"], average="weighted",
                                                 labels=[0, 1, 2], zero_division=0)
    row = t7.loc[("raw-lr", "raw")]
    assert (row["pre"], row["rec"], row["f1"]) == pytest.approx((p, r, f))
    assert row["rec"] == pytest.approx(row["acc"])  # weighted recall is the accuracy
    beside = table7_beside_paper(t7)
    assert beside["source"].tolist() == ["leukolib"] * 2 + ["paper (Table 7)"] * 4


def test_accuracy_curves_and_retained_accuracy_arithmetic():
    rows = []
    for i, (clean, s1, s2) in enumerate([(1, 1, 0), (1, 0, 0), (0, 1, 1), (1, 1, 1)]):
        rows += [{"model": "m", "way": "raw", "corruption": "none", "severity": 0, "id": str(i),
                  "label": 0, "pred": 0, "correct": bool(clean)},
                 {"model": "m", "way": "raw", "corruption": "jpeg", "severity": 1, "id": str(i),
                  "label": 0, "pred": 0, "correct": bool(s1)},
                 {"model": "m", "way": "raw", "corruption": "jpeg", "severity": 2, "id": str(i),
                  "label": 0, "pred": 0, "correct": bool(s2)}]
    pi = pd.DataFrame(rows)
    c = accuracy_curves(pi, n_boot=100)
    assert c["severity"].tolist() == [0, 1, 2]
    assert c["accuracy"].tolist() == pytest.approx([0.75, 0.75, 0.5])
    assert (c["accuracy_low"] <= c["accuracy"]).all()
    assert (c["accuracy"] <= c["accuracy_high"]).all()
    r = retained_accuracy(pi).set_index("id")["retained"]
    assert r.tolist() == pytest.approx([-0.5, -1.0, 1.0, 0.0])
    other = pi.assign(model="n", correct=pi["correct"] | (pi["severity"] == 0))
    both = pd.concat([pi, other])
    cmp = compare_degradation(both, ("m", "raw"), ("n", "raw"), n_boot=100)
    assert list(cmp.index) == ["jpeg", "all"] and cmp.loc["jpeg", "n"] == 4


@pytest.fixture(scope="module")
def tiny_unet(tmp_path_factory, smears):
    from leukolib.data import Subset
    from leukolib.segmentation.training import train_unet
    from leukolib.segmentation.unet import load_unet_run

    data = Subset(smears, range(8))
    run_dir = tmp_path_factory.mktemp("unet") / "run"
    train_unet(data, run_dir, seed=0, profile="smoke", image_size=32, folds=2, epochs=1,
               progress=False)
    return data, load_unet_run(run_dir, device="cpu")


def test_segmentation_sweep_answers_out_of_fold_for_corrupted_images(tiny_unet):
    from leukolib.robustness.sweeps import _CleanFolds, _Recording

    data, unet = tiny_unet
    view = _Recording(data, "gaussian_noise", 5, 0)
    folds = [unet.folds_for(s.image) for s in data]
    assert all(f is not None and len(f) == 1 for f in folds)  # every image: its held-out fold
    adapter = _CleanFolds(unet, folds, view.source)
    for i in range(len(data)):
        bad = view[i].image
        assert unet.folds_for(bad) is None  # the run does not recognise the corrupted pixels
        assert adapter.folds_for(bad) == folds[i]  # the sweep does
    sp = segmentation_sweep(data, unet, ["gaussian_noise"], (1, 5), seed=0, progress=False)
    assert set(sp["method"]) == {"HM", "DEEP", "ENSEMBLE"}
    assert len(sp) == 3 * 3 * len(data)
    assert (sp["mode"][sp["method"] == "DEEP"] == "out-of-fold").all()
    curves = segmentation_curves(sp, n_boot=100)
    assert set(curves["severity"]) == {0, 1, 5}
    hm = curves[curves["method"] == "HM"].set_index("severity")["iou"]
    assert hm[5] < hm[0]  # the handcrafted threshold suffers from strong noise
    cmp = compare_segmentation(sp, "ENSEMBLE", "HM", n_boot=100)
    assert list(cmp.index) == ["none", "gaussian_noise"]


def test_segmentation_sweep_without_unet_scores_the_handcrafted_method(smears, tmp_path):
    from leukolib.data import Subset

    sp = segmentation_sweep(Subset(smears, range(4)), None, ["motion_blur"], (5,), progress=False)
    assert set(sp["method"]) == {"HM"} and set(sp["corruption"]) == {"none", "motion_blur"}
    files = save_report(tmp_path, {"seg": sp, "t7": sp.set_index(["corruption", "id"])})
    assert {f.name for f in files} == {"seg.csv", "seg.json", "t7.csv", "t7.json"}
    assert "corruption" in pd.read_csv(tmp_path / "t7.csv").columns
