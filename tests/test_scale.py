"""Segmentation at the image's own scale: diameters, the scale rule, tiles, runs, the fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leukolib.data.base import Subset
from leukolib.data.synthetic import SyntheticDataset
from leukolib.segmentation import MethodError, get_method
from leukolib.segmentation.ensemble import EnsembleParams, agreement, falls_back, fuse
from leukolib.segmentation.scale import (
    DIAMETER_SOURCES,
    ScaleSpec,
    choose_diameter,
    median_diameter,
    nucleus_diameter,
    nucleus_diameters,
)
from leukolib.segmentation.training import train_unet
from leukolib.segmentation.unet import load_unet_run, predict_proba_at_scale
from leukolib.selection import choose

TINY = {"profile": "smoke", "image_size": 32, "folds": 2, "epochs": 1, "progress": False}


def disc(shape, centre, radius) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


# ----------------------------------------------------------------------------- diameters


def test_diameters_of_discs_lobes_and_separate_nuclei():
    assert nucleus_diameter(disc((200, 300), (100, 150), 30)) == pytest.approx(60, abs=1)
    assert nucleus_diameter(np.zeros((20, 20), bool)) is None
    lobes = disc((100, 100), (50, 40), 10) | disc((100, 100), (50, 62), 10)  # 2 px apart
    assert len(nucleus_diameters(lobes)) == 1
    two = disc((300, 300), (60, 60), 20) | disc((300, 300), (220, 220), 30)  # far apart
    assert sorted(nucleus_diameters(two).round()) == [40, 60]
    assert median_diameter([disc((99, 99), (50, 50), r) for r in (10, 20, 30)]) == \
        pytest.approx(40, abs=1)
    with pytest.raises(ValueError, match="no nucleus"):
        median_diameter([np.zeros((9, 9), bool)])


def test_the_target_is_a_rule_of_the_patch_and_the_factor_is_bounded():
    assert ScaleSpec.for_patch(128).target_diameter == 48
    spec = ScaleSpec(target_diameter=48, patch_size=128)
    assert spec.factor(126) == pytest.approx(48 / 126)
    assert spec.factor(0.5) == 8.0 and spec.factor(1e6) == 1 / 8
    with pytest.raises(ValueError):
        spec.factor(0)
    with pytest.raises(ValueError):
        ScaleSpec(mode="cube")
    with pytest.raises(ValueError):
        ScaleSpec(patch_size=100)
    # a run written before the scale was recorded resized to its square
    old = ScaleSpec.from_config({"image_size": 128})
    assert (old.mode, old.patch_size) == ("square", 128)
    assert ScaleSpec.from_config({"scale": spec.to_dict(), "image_size": 128}) == spec


def test_the_diameter_comes_from_the_user_then_the_handcrafted_mask_then_the_run():
    image = np.zeros((50, 50, 3), np.uint8)
    mask = disc((50, 50), (25, 25), 10)
    assert choose_diameter(image, 33.0, lambda _: mask, 70.0) == (33.0, DIAMETER_SOURCES[0])
    d, src = choose_diameter(image, None, lambda _: mask, 70.0)
    assert src == DIAMETER_SOURCES[2] and d == pytest.approx(20, abs=1)
    empty = np.zeros((50, 50), bool)
    assert choose_diameter(image, None, lambda _: empty, 70.0) == (70.0, DIAMETER_SOURCES[3])
    with pytest.raises(ValueError, match="no nucleus diameter"):
        choose_diameter(image, None, lambda _: empty, None)
    with pytest.raises(ValueError, match="positive"):
        choose_diameter(image, -3.0)


# ----------------------------------------------------------------------------- tiles


class RedIsNucleus(torch.nn.Module):
    """Logits from the red channel: a 'network' whose right answer is known at any scale."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 40


@pytest.mark.parametrize("shape, radius, factor", [((480, 640), 60, 0.4), ((120, 120), 22, 1.1),
                                                   ((257, 257), 50, 0.48), ((30, 70), 8, 3.0)])
def test_tiles_and_resampling_give_back_the_image_at_its_own_size(shape, radius, factor):
    truth = disc(shape, (shape[0] // 2 + 3, shape[1] // 3), radius)
    image = np.zeros((*shape, 3), np.uint8)
    image[truth, 0] = 255
    spec = ScaleSpec(target_diameter=12, patch_size=32, overlap=0.25)
    p = predict_proba_at_scale([RedIsNucleus().eval()], image, factor, spec)
    assert p.shape == shape
    pred = p >= 0.5
    iou = (pred & truth).sum() / (pred | truth).sum()
    assert iou > 0.9, iou  # tiles blend, pad and map back where the nucleus is


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory):
    data = SyntheticDataset(n_images=6, size=64, seed=0)
    run_dir = tmp_path_factory.mktemp("scale") / "run"
    record = train_unet(data, run_dir, seed=0, **TINY)
    return data, run_dir, record


def test_a_run_records_its_scale_and_each_fold_measures_its_own(scale_run):
    data, run_dir, record = scale_run
    spec = record["config"]["scale"]
    assert spec["mode"] == "diameter" and spec["patch_size"] == 32 and \
        spec["target_diameter"] == 12
    diam = {s.id: nucleus_diameter(s.nucleus) for s in data}
    for f in record["folds"]:
        own = np.median([diam[i] for i in [*f["train_ids"], *f["val_ids"]]])
        assert f["scale"]["median_diameter"] == pytest.approx(own)  # never the test fold's
        assert f["scale"]["factor"] == pytest.approx(12 / own)
    assert record["dataset"]["median_nucleus_diameter"] == pytest.approx(
        np.median(list(diam.values())))
    assert {r["scale_source"] for r in record["oof"]["per_image"]} <= set(DIAMETER_SOURCES)


def test_the_same_cell_at_twice_the_size_gets_the_same_mask(scale_run):
    data, run_dir, _ = scale_run
    run = load_unet_run(run_dir, device="cpu")
    image = SyntheticDataset(n_images=1, size=64, seed=7)[0].image
    big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
    d = 20.0
    small_p = run.predict_proba(image, diameter=d)
    big_p = run.predict_proba(big, diameter=2 * d)
    assert big_p.shape == (128, 128)
    down = big_p.reshape(64, 2, 64, 2).mean(axis=(1, 3))
    assert np.corrcoef(small_p.ravel(), down.ravel())[0, 1] > 0.95
    # a single new image gets its own handcrafted estimate, and the output says so
    _, source = run.predict_proba_with_source(image)
    assert source in DIAMETER_SOURCES[2:]


def test_a_set_of_images_is_segmented_at_one_scale_estimated_once(scale_run, tmp_path, capsys):
    from leukolib.cli import main
    from leukolib.cli.common import write_png
    from leukolib.segmentation.evaluate import evaluate_segmentation, standard_methods
    from leukolib.segmentation.scale import estimate_diameter

    data, run_dir, record = scale_run
    run = load_unet_run(run_dir, device="cpu")
    pred = run.predictor_for(data)
    d, n = estimate_diameter(data)
    assert pred.diameter == pytest.approx(d) and n == len(data)
    assert pred.diameter_source == DIAMETER_SOURCES[1] and "median of the handcrafted" in \
        pred.reason
    ev = evaluate_segmentation(data, standard_methods(pred), progress=False)
    assert ev.info[data.name]["scale_sources"] == {DIAMETER_SOURCES[1]: len(data)}
    # training scored its test folds the same way: the evaluation reproduces the run's rows
    deep = ev.per_image[ev.per_image["method"] == "DEEP"].set_index("id")["iou"]
    for row in record["oof"]["per_image"]:
        assert row["scale_source"] == DIAMETER_SOURCES[1]
        assert deep[row["id"]] == pytest.approx(row["iou"], abs=1e-3)
    for f in record["folds"]:
        assert f["scale"]["test_diameter"] == pytest.approx(d)
    # the command line estimates the scale of a folder once, and says so
    folder = tmp_path / "in"
    folder.mkdir()
    for s in data:
        write_png(folder / f"{s.id}.png", s.image)
    assert main(["segment", str(folder), "--method", "unet", "--model", str(run_dir),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"nucleus diameter {d:.1f} px, the median of the handcrafted masks of {n}" in err
    assert f"{len(data)} image(s) by {DIAMETER_SOURCES[1]}" in err


def test_square_mode_is_the_papers_resize_and_old_runs_read_as_square(tmp_path):
    data = SyntheticDataset(n_images=6, size=64, seed=0)
    record = train_unet(data, tmp_path / "sq", seed=0, scale="square", **TINY)
    assert record["config"]["scale"]["mode"] == "square"
    run = load_unet_run(tmp_path / "sq", device="cpu")
    assert run.predict_proba_with_source(data[0].image)[1] == "square resize"
    # a run.json written before the scale was recorded
    path = tmp_path / "sq" / "run.json"
    rec = json.loads(path.read_text())
    del rec["config"]["scale"]
    path.write_text(json.dumps(rec))
    assert load_unet_run(tmp_path / "sq", device="cpu").scale.mode == "square"


def test_segment_diameter_option_reaches_the_predictor(scale_run):
    data, run_dir, _ = scale_run
    seg = get_method("ensemble", model=run_dir, diameter=18.0)
    mask = seg(data[0])
    assert mask.shape == data[0].image.shape[:2]
    assert seg.deep.scale_sources == {"given": 1}
    with pytest.raises(MethodError, match="positive"):
        get_method("unet", model=run_dir, diameter=-1)
    sub = Subset(data, range(3))
    assert get_method("unet", model=run_dir, dataset=sub).mode == "out-of-fold"


# ----------------------------------------------------------------------------- fallback


def test_the_ensemble_keeps_the_handcrafted_mask_where_the_unet_disagrees():
    hm = disc((64, 64), (32, 32), 12)
    elsewhere = disc((64, 64), (10, 50), 8).astype(float)  # the U-Net sees another object
    near = disc((64, 64), (32, 33), 12).astype(float)
    assert agreement(hm, elsewhere) == 0.0 and agreement(hm, near) > 0.8
    never = EnsembleParams(fallback_iou=0.0, fallback_entropy=0.0)
    guarded = EnsembleParams(fallback_iou=0.5, fallback_entropy=0.0)
    assert not fuse(hm, elsewhere, never).any()  # AND alone loses the nucleus
    assert (fuse(hm, elsewhere, guarded) == hm).all() and falls_back(hm, elsewhere, guarded)
    assert (fuse(hm, near, guarded) == fuse(hm, near, never)).all()
    assert not falls_back(hm, elsewhere, never)
    assert "handcrafted alone where IoU(HM, DEEP) < 0.5" in guarded.label()
    with pytest.raises(ValueError):
        EnsembleParams(fallback_iou=1.0)


def test_the_ensemble_keeps_the_handcrafted_mask_where_the_unet_is_unsure():
    from leukolib.segmentation.ensemble import uncertainty

    hm = disc((64, 64), (32, 32), 12)
    inside = disc((64, 64), (32, 32), 8)
    sure = np.where(inside, 0.99, 0.01)  # a confident U-Net that draws the nucleus too small
    unsure = np.where(inside, 0.55, 0.3)  # the same mask, drawn by a network out of its domain
    assert (unsure >= 0.5).sum() == (sure >= 0.5).sum()  # the masks, and so the IoU, are equal
    assert uncertainty(hm, sure) < 0.1 < 0.9 < uncertainty(hm, unsure)
    unsure_rule = EnsembleParams(fallback_iou=0.0, fallback_entropy=0.5)
    assert not falls_back(hm, sure, unsure_rule) and falls_back(hm, unsure, unsure_rule)
    assert (fuse(hm, unsure, unsure_rule) == hm).all()
    assert (fuse(hm, sure, unsure_rule) == (hm & inside)).all()
    assert "entropy > 0.5 bit" in unsure_rule.label()
    assert uncertainty(np.zeros((8, 8), bool), np.zeros((8, 8))) == 0.0
    with pytest.raises(ValueError, match="fallback_entropy"):
        EnsembleParams(fallback_entropy=1.0)


def test_every_fallback_candidate_scores_what_the_ensemble_would_do():
    # the candidates share one fusion per image: each must still equal fuse() with its own rule
    from leukolib.segmentation.selection import candidate_rules, fallback_candidates

    rng = np.random.default_rng(0)
    hm = disc((48, 48), (24, 24), 10)
    probas = [np.where(disc((48, 48), (24, 25), 9), 0.97, 0.02),
              np.clip(rng.normal(0.45, 0.2, (48, 48)), 0, 1),
              np.where(disc((48, 48), (5, 40), 6), 0.9, 0.05)]
    rules = candidate_rules()
    for name, params in fallback_candidates().items():
        for p in probas:
            assert (rules[f"fallback {name}"](hm, p) == fuse(hm, p, params)).all(), name


def test_the_no_harm_rule_chooses_a_safety_switch_the_consistent_rule_cannot():
    import pandas as pd

    scores = pd.DataFrame({"jtsc": [0.92, 0.92, 0.92], "bloodseg -> jtsc": [0.43, 0.88, 0.90],
                           "all_idb2": [0.93, 0.9295, 0.90]},
                          index=["0", "0.5", "0.7"])
    assert choose(scores, "0").chosen == "0"
    c = choose(scores, "0", criterion="no-harm")
    assert c.chosen == "0.5"  # 0.7 gains more on average but loses 0.03 on ALL-IDB2
    assert "lost on none" in c.reason


# ----------------------------------------------------------------------------- classifier crop


@pytest.mark.shared
def test_crop_auto_measures_fields_and_cell_crops_of_an_unknown_folder(shared_data):
    from leukolib.classification.inputs import auto_crop, resolve_crop
    from leukolib.data import load_dataset

    fields = Subset(load_dataset("bloodseg", shared_data / "BloodSeg"), range(16))
    crop, crop_min, why = auto_crop(fields)
    assert crop == 0.0 and 0.5 < crop_min < 0.9 and why.startswith("fields")
    # the window shows the nucleus at 3/8 of its side, as the U-Net's scale rule does
    cells = Subset(load_dataset("jtsc", shared_data / "segmentation_WBC"), range(40))
    assert auto_crop(cells)[:2] == (None, 0.0)
    assert resolve_crop(cells)[2].startswith("jtsc: a known dataset of cell crops")
    renamed = Subset(fields.dataset, range(16))
    renamed.name = "imagefolder"
    assert resolve_crop(renamed)[0] == 0.0


def test_gray_world_input_equalises_the_channel_means_and_is_recorded(tmp_path):
    from leukolib.segmentation.augment import unet_input

    rng = np.random.default_rng(0)
    yellow = np.clip(rng.normal((230, 220, 120), 10, (40, 50, 3)), 0, 255).astype(np.uint8)
    x = unet_input(yellow, "gray-world")
    means = x.mean(dim=(1, 2))
    assert float(means.max() - means.min()) < 0.01  # a yellow background becomes gray
    assert torch.equal(unet_input(yellow, "rgb"), unet_input(yellow))
    with pytest.raises(ValueError):
        unet_input(yellow, "lab")
    data = SyntheticDataset(n_images=6, size=64, seed=0)
    rec = train_unet(data, tmp_path / "gw", seed=0, colour="gray-world", **TINY)
    assert rec["config"]["scale"]["colour"] == "gray-world"
    run = load_unet_run(tmp_path / "gw", device="cpu")
    assert run.scale.colour == "gray-world" and "gray-world" in repr(run)
    assert ScaleSpec.from_config({"scale": {k: v for k, v in ScaleSpec().to_dict().items()
                                            if k != "colour"}}).colour == "rgb"
