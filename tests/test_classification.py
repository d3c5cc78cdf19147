"""The classifiers: networks, inputs, augmentation, splits, weights (no training here).

Training, runs, baselines and the command line are in ``test_classification_runs.py``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from leukolib.classification.augment import Augmenter
from leukolib.classification.inputs import InputSpec, crop_box, network_view, to_tensor
from leukolib.classification.masks import MaskSource, SegmenterError, SegmenterSpec
from leukolib.classification.models import (
    PretrainedWeightsWarning,
    WeightsError,
    build_classifier,
    count_activations,
    load_backbone,
)
from leukolib.classification.splits import classifier_split
from leukolib.classification.views import build_views
from leukolib.classification.weights import resolve_weights
from leukolib.data import load_dataset


@pytest.mark.parametrize("head,act", [("linear", "relu"), ("medium", "mish")])
def test_the_papers_networks(head, act):
    m = build_classifier(5, head=head, act=act)
    other = {"relu": "mish", "mish": "relu"}[act]
    counts = count_activations(m)
    assert counts[other] == 0 and counts[act] >= 17  # stem + 16 bottlenecks (+ head)
    fc = m.fc if head == "linear" else m.fc[-1]
    assert (fc.in_features if head == "linear" else m.fc[0].in_features) == 2048
    assert fc.out_features == 5
    if head == "medium":
        assert [mod.out_features for mod in m.fc if isinstance(mod, torch.nn.Linear)] == \
            [1024, 512, 5]
        assert isinstance(m.fc[1], torch.nn.Mish)
    assert m.layer4[-1].conv3.out_channels == 2048  # the CAM target layer
    assert m.weights_source == "random"
    assert m.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def test_unknown_choices_and_too_few_classes():
    with pytest.raises(ValueError, match="unknown head"):
        build_classifier(3, head="large")
    with pytest.raises(ValueError, match="unknown activation"):
        build_classifier(3, act="gelu")
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_classifier(1)


def test_weights_from_a_file_load_every_layer_but_the_head(tmp_path):
    src = build_classifier(3)
    path = tmp_path / "backbone.pt"
    torch.save(src.state_dict(), path)
    m = build_classifier(7, weights=path, act="mish")
    assert torch.equal(m.conv1.weight, src.conv1.weight)
    assert torch.equal(m.layer4[-1].conv3.weight, src.layer4[-1].conv3.weight)
    assert m.fc.out_features == 7 and m.weights_source.startswith("file:backbone.pt:")
    with pytest.raises(WeightsError, match="not found"):
        build_classifier(3, weights=tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        build_classifier(3, weights=tmp_path / "junk.pt")


def test_imagenet_weights_missing_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    model = build_classifier(3)
    with pytest.raises(WeightsError, match=r"resnet50-11ad3fa6\.pth into"):
        load_backbone(model, "imagenet", required=True, download=False)
    with pytest.warns(PretrainedWeightsWarning, match="random initialisation"):
        assert load_backbone(model, "imagenet", download=False) == "random"
    # the run profiles: paper requires them, cpu tries them, smoke never does
    with pytest.raises(WeightsError, match="not available"):
        resolve_weights("profile", "paper", download=False)
    with pytest.warns(PretrainedWeightsWarning):
        assert resolve_weights("profile", "cpu", download=False) == ("random", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_weights("profile", "smoke", download=False) == ("random", None)
    with pytest.raises(WeightsError, match="requires ImageNet"):
        resolve_weights(None, "paper")


def _cell(h=60, w=80):
    img = np.full((h, w, 3), 210, np.uint8)
    img[::7] = 90  # background texture
    m = np.zeros((h, w), bool)
    m[20:36, 50:70] = True
    img[m] = (120, 40, 160)
    return img, m


def test_segmented_view_keeps_only_the_nucleus():
    from scipy.ndimage import binary_dilation

    img, m = _cell()
    v = network_view(img, m, InputSpec("segmented", 32, 32))
    assert v.image.shape == (32, 32, 3) and v.image.dtype == np.uint8
    assert np.array_equal(v.mask, v.warp(m))
    near = binary_dilation(v.mask, iterations=2)  # shrinking blends the outline with black
    assert v.image[~near].max() == 0
    assert np.abs(v.image[v.mask].astype(int) - [120, 40, 160]).max() < 40
    raw = network_view(img, m, InputSpec("raw", 32, 32))
    assert raw.image[~near].max() > 0 and np.array_equal(raw.mask, v.mask)


def test_crop_box_and_warp_agree():
    img, m = _cell()
    box = crop_box(m, 0.25)
    assert box == (13, 43, 45, 75)  # a square: the 20 px box side * 1.5
    v = network_view(img, m, InputSpec("raw", 24, 24, crop=0.25))
    assert np.array_equal(v.mask, v.warp(m)) and v.mask.mean() > 0.3  # the nucleus fills it
    edge = np.zeros_like(m)
    edge[59, 79] = True  # a pixel outside the crop never shows
    assert not v.warp(edge).any()
    empty = network_view(img, np.zeros_like(m), InputSpec("raw", 24, 24, crop=0.25))
    assert empty.box == (0, 60, 0, 80)  # no nucleus: the whole image


def test_fields_are_cropped_with_their_scale_kept():
    from leukolib.classification.inputs import default_crop

    assert default_crop("synthetic") == default_crop("bloodseg") == (0.25, 0.375)
    assert default_crop("all_idb2") == default_crop("jtsc") == (None, 0.0)
    img = np.zeros((128, 128, 3), np.uint8)
    small, large = np.zeros((128, 128), bool), np.zeros((128, 128), bool)
    small[60:66, 60:66] = True
    large[50:80, 50:80] = True
    spec = InputSpec("segmented", 48, 48, crop=0.25, crop_min=0.375)
    a, b = network_view(img, small, spec), network_view(img, large, spec)
    assert a.box[1] - a.box[0] == b.box[1] - b.box[0] == 48  # one window: the scale is kept
    assert a.mask.sum() == 36 and b.mask.sum() == 900


def test_gray_view_and_bad_inputs():
    img, m = _cell()
    g = network_view(img, m, InputSpec("raw", 16, 16, color="gray")).image
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 1], g[..., 2])
    with pytest.raises(ValueError, match="needs a nucleus mask"):
        network_view(img, None, InputSpec("segmented", 16, 16))
    with pytest.raises(ValueError, match="RGB uint8"):
        network_view(img.astype(np.float32), m, InputSpec("raw", 16, 16))
    with pytest.raises(ValueError, match="differ in size"):
        network_view(img, m[:10], InputSpec("segmented", 16, 16))
    with pytest.raises(ValueError, match="unknown input"):
        InputSpec("masked", 16, 16)
    x = to_tensor(np.full((1, 4, 4, 3), 255, np.uint8))
    assert x.shape == (1, 3, 4, 4) and torch.allclose(x[0, :, 0, 0], torch.tensor(
        [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]))


def test_augmentation_remasks_and_is_seeded():
    img, m = _cell(64, 64)
    v = network_view(img, m, InputSpec("segmented", 64, 64))
    a, b = Augmenter(True, seed=3), Augmenter(True, seed=3)
    outs = [a(v.image, v.mask) for _ in range(12)]
    assert all(np.array_equal(o, b(v.image, v.mask)) for o in outs)  # same seed, same draws
    assert any(not np.array_equal(o, outs[0]) for o in outs[1:])
    a.reseed(3)
    assert np.array_equal(a(v.image, v.mask), outs[0])
    for o in outs:  # geometric transforms move the nucleus, but never reveal the background
        assert (o.sum(2) > 0).sum() <= v.mask.sum() + 2


def test_split_groups_duplicates_and_keeps_the_test_apart():
    prints = [f"p{i}" for i in range(60)]
    prints[7] = prints[3]  # a duplicate pair
    labels = np.arange(60) % 3
    near = np.arange(60)
    near[11] = near[5]  # a near-duplicate pair: other pixels, one cell
    s = classifier_split(prints, labels, 0.1, 3, seed=0, near_duplicates=near)
    assert s.grouping["by"] == ["identical pixels", "near duplicates"]
    assert len(np.intersect1d(s.trainval, s.test)) == 0
    assert len(s.trainval) + len(s.test) == 60
    assert (3 in s.test) == (7 in s.test)
    for train, val in s.folds:
        assert len(np.intersect1d(train, val)) == 0 and len(np.intersect1d(val, s.test)) == 0
        assert (3 in val) == (7 in val) and (5 in val) == (11 in val)
    assert (5 in s.test) == (11 in s.test)
    assert sorted(np.bincount(labels[s.test]).tolist()) == [2, 2, 2]
    again = classifier_split(prints, labels, 0.1, 3, seed=0, near_duplicates=near)
    assert np.array_equal(again.test, s.test)


def test_mask_source_caches_on_disk(tmp_path, monkeypatch):
    import leukolib.classification.masks as masks_module

    ds = load_dataset("synthetic", n_images=3, size=96, seed=0)
    src = MaskSource("handcrafted", tmp_path)
    masks = [src.mask(s) for s in ds]
    files = sorted((tmp_path / "handcrafted").glob("*/*.png"))  # <key>/<version>/<print>.png
    assert len(files) == 3 and files[0].parent == src.cache_dir
    again = MaskSource("handcrafted", tmp_path)
    again._compute = None  # a second source reads the cache: it never segments
    assert all(np.array_equal(a, again.mask(s)) for a, s in zip(masks, ds, strict=True))
    # another version of the segmenter (a changed default, another release) reads none of it
    monkeypatch.setattr(masks_module, "_segmenter_version", lambda: "changed")
    assert MaskSource("handcrafted", tmp_path).cache_dir != src.cache_dir
    oracle = MaskSource("oracle")
    assert np.array_equal(oracle.mask(ds[0]), ds[0].nucleus)
    with pytest.raises(SegmenterError, match="needs ground-truth masks"):
        oracle.mask(ds[1].image)  # an image without ground truth
    with pytest.raises(SegmenterError, match="needs a U-Net run"):
        SegmenterSpec("ensemble")


def test_views_share_one_pass():
    ds = load_dataset("synthetic", n_images=4, size=96, seed=1)
    specs = {"s": InputSpec("segmented", 32, 36), "r": InputSpec("raw", 32, 36)}
    data = build_views(ds, specs, MaskSource("oracle"), progress=False)
    assert data.views["s"].shape == data.views["r"].shape == (4, 32, 32, 3)
    assert data.masks["r"] is not None  # raw views carry the mask too, for figures
    from scipy.ndimage import binary_dilation

    near = np.stack([binary_dilation(m, iterations=2) for m in data.masks["s"]])
    assert (data.views["s"][~near] == 0).all()
    assert data.labels.tolist() == ds.labels.tolist() and len(set(data.fingerprints)) == 4


def test_shortcut_gap_is_the_difference_of_the_drops_with_an_interval():
    import pandas as pd

    from leukolib.classification.experiments import _gap_records, shortcut_gaps, shortcut_verdict

    rng = np.random.default_rng(0)
    keys, tests = ["segmented-relu-linear", "raw-relu-linear"], [1.0, 0.0, -1.0]
    rates = {("segmented-relu-linear", 1.0): 0.9, ("raw-relu-linear", 1.0): 1.0,
             ("segmented-relu-linear", 0.0): 0.85, ("raw-relu-linear", 0.0): 0.7,
             ("segmented-relu-linear", -1.0): 0.8, ("raw-relu-linear", -1.0): 0.2}
    correct = {k: rng.random(120) < p for k, p in rates.items()}
    acc = {k: float(v.mean()) for k, v in correct.items()}
    drop = {k: {s: acc[k, 1.0] - acc[k, s] for s in tests[1:]} for k in keys}
    gaps = _gap_records(correct, drop, keys, tests, seed=0)
    assert [g["shortcut"] for g in gaps] == [0.0, -1.0]
    for g in gaps:
        s = g["shortcut"]
        assert g["raw minus segmented"] == pytest.approx(drop[keys[1]][s] - drop[keys[0]][s])
        assert g["CI low"] < g["raw minus segmented"] < g["CI high"]
    assert gaps[1]["CI low"] > 0.4  # a reversed cue that fools only the raw model is clear
    assert gaps == _gap_records(correct, drop, keys, tests, seed=0)  # seeded
    # other smears in every test set: resampled apart, the same estimate
    apart = _gap_records(correct, drop, keys, tests, seed=0, paired=False)
    for a, g in zip(apart, gaps, strict=True):
        assert a["raw minus segmented"] == pytest.approx(g["raw minus segmented"])
        assert a["CI low"] < a["raw minus segmented"] < a["CI high"]
    # the same smears, where a cell the segmented model gets right under one background it
    # gets right under all: pairing removes that shared variation, the interval narrows
    same = {k: correct["segmented-relu-linear", 1.0] if k[0].startswith("segmented") else v
            for k, v in correct.items()}
    acc_same = {k: float(v.mean()) for k, v in same.items()}
    drop_same = {k: {s: acc_same[k, 1.0] - acc_same[k, s] for s in tests[1:]} for k in keys}
    width = [g["CI high"] - g["CI low"] for g in _gap_records(same, drop_same, keys, tests, 0)]
    width_apart = [g["CI high"] - g["CI low"]
                   for g in _gap_records(same, drop_same, keys, tests, 0, paired=False)]
    assert all(w <= wa for w, wa in zip(width, width_apart, strict=True))
    # with a tenth of the smears the same gaps are far less certain
    few = {k: v[:12] for k, v in correct.items()}
    wide = _gap_records(few, drop, keys, tests, seed=0)
    assert wide[0]["CI high"] - wide[0]["CI low"] > 2 * (gaps[0]["CI high"] - gaps[0]["CI low"])
    frame = pd.DataFrame([{"model": k, "shortcut": s, "accuracy": acc[k, s]}
                          for s in tests for k in keys])
    frame.attrs.update(drop=drop, gap=gaps)
    assert list(shortcut_gaps(frame)["shortcut"]) == [0.0, -1.0]
    assert "95 % CI" in shortcut_verdict(frame) and "at least 15" in shortcut_verdict(frame)
    assert _gap_records(correct, drop, keys[:1], tests, seed=0) == []
