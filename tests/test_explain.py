"""Explanation measures on real networks and smears: maps, nucleus share, faithfulness, sanity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from leukolib.data import load_dataset
from leukolib.explain import (
    METHODS,
    compute_cams,
    deletion_insertion,
    energy_share,
    explain_batch,
    explain_page,
    faithfulness_scores,
    localization_scores,
    pointing_game,
    randomized_copy,
    road_scores,
    sanity_check,
    sanity_summary,
)
from leukolib.explain.cams import cam_classes, resolve_methods
from leukolib.explain.sanity import rank_correlation
from leukolib.explain.summary import compare_inputs, recommend_method, summarize


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet50(num_classes=3).eval()


@pytest.fixture(scope="module")
def smears():
    """Six synthetic smears at 64 px, normalised, with their exact nucleus and cell masks."""
    import cv2

    ds = load_dataset("synthetic", n_images=6, size=128, seed=3)
    imgs, nuc, cell = [], [], []
    for s in ds:
        imgs.append(cv2.resize(s.image, (64, 64), interpolation=cv2.INTER_AREA))
        nuc.append(cv2.resize(s.nucleus.astype(np.uint8), (64, 64)) > 0)
        cell.append(cv2.resize((s.nucleus | s.cytoplasm).astype(np.uint8), (64, 64)) > 0)
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (x - mean) / std, np.stack(imgs), np.stack(nuc), np.stack(cell)


def test_maps_are_pytorch_grad_cams_to_the_bit(net, smears):
    x = smears[0]
    batch = compute_cams(net, x, "all", targets=[0, 1, 2, 0, 1, 2], batch_size=4)
    assert batch.logits.shape == (6, 3) and batch.targets.tolist() == [0, 1, 2, 0, 1, 2]
    for name, cls in cam_classes().items():
        with cls(model=net, target_layers=[net.layer4[-1]]) as cam:
            ref = cam(x, [ClassifierOutputTarget(t) for t in batch.targets])
        np.testing.assert_array_equal(batch.cams[name], ref, err_msg=name)
        assert batch.cams[name].shape == (6, 64, 64)
        assert 0 <= batch.cams[name].min() and batch.cams[name].max() <= 1


def test_maps_leave_the_model_as_they_found_it(net, smears):
    x = smears[0][:2]
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in net.named_parameters()}
    frozen = net.fc.weight.requires_grad_(False)
    try:
        with torch.no_grad():  # works inside a caller's no_grad block too
            a = compute_cams(net, x, ["gradcam"]).cams["gradcam"]
        assert not net.fc.weight.requires_grad and net.conv1.weight.requires_grad
    finally:
        frozen.requires_grad_(True)
    assert not net.layer4[-1]._forward_hooks and not net.layer4[-1]._backward_hooks
    for n, p in net.named_parameters():  # no parameter gradient was touched
        assert (p.grad is None) if grads[n] is None else torch.equal(p.grad, grads[n]), n
    b = compute_cams(net, x, ["gradcam"]).cams["gradcam"]
    np.testing.assert_array_equal(a, b)  # deterministic on the CPU


@pytest.mark.parametrize("head, act", [("linear", "relu"), ("linear", "mish"),
                                       ("medium", "relu"), ("medium", "mish")])
def test_three_of_the_four_maps_coincide_on_resnet(smears, head, act):
    """After layer4 comes global average pooling: the gradient is flat over the grid whatever
    the head (a nonlinear Medium head, Mish) does with the pooled features, so Grad-CAM,
    HiResCAM and XGrad-CAM weigh the same activations the same way, on all eight networks."""
    from leukolib.classification.models import build_classifier

    torch.manual_seed(0)
    model = build_classifier(3, head, act, arch="resnet18").eval()
    c = compute_cams(model, smears[0][:3], "all").cams
    np.testing.assert_allclose(c["hirescam"], c["gradcam"], atol=1e-5)
    np.testing.assert_allclose(c["xgradcam"], c["gradcam"], atol=1e-4)
    assert np.abs(c["gradcam++"] - c["gradcam"]).max() > 0.05


def test_method_names_and_targets(net, smears):
    assert resolve_methods(["xgradcam", "gradcam"]) == ("gradcam", "xgradcam")
    with pytest.raises(ValueError, match="unknown CAM method"):
        resolve_methods("eigencam")
    x = smears[0][:3]
    a = compute_cams(net, x, "gradcam", targets=2)
    b = compute_cams(net, x, "gradcam", targets=0)
    assert a.targets.tolist() == [2, 2, 2]
    assert not np.allclose(a.cams["gradcam"], b.cams["gradcam"])
    with pytest.raises(ValueError, match="layer4"):
        compute_cams(nn.Sequential(nn.Conv2d(3, 2, 3)), x)


def test_energy_share_and_pointing_game():
    cam = np.zeros((2, 4, 4))
    cam[0, 0, 0], cam[0, 3, 3] = 1.0, 3.0
    mask = np.zeros((2, 4, 4), bool)
    mask[:, 2:, 2:] = True
    share = energy_share(cam, mask)
    assert share[0] == pytest.approx(0.75) and np.isnan(share[1])  # an empty map has no share
    point = pointing_game(cam, mask)
    assert point[0] == 1.0 and np.isnan(point[1])
    flat = np.ones((1, 4, 4))
    assert energy_share(flat, mask[:1])[0] == pytest.approx(mask[0].mean())  # chance level
    with pytest.raises(ValueError, match="same shape"):
        energy_share(cam, mask[:, :2])


def test_localization_on_smears_uses_exact_masks(net, smears):
    x, _, nuc, cell = smears
    batch = compute_cams(net, x, ["gradcam", "gradcam++"])
    assert batch.grid == (2, 2)  # 64 px / 32
    f = localization_scores(batch.cams, nuc, cell, [f"s{i}" for i in range(6)], batch.grid)
    assert len(f) == 12 and set(f["method"]) == {"gradcam", "gradcam++"}
    ok = f.dropna(subset=["energy_nucleus"])
    assert (ok["energy_nucleus"] <= ok["energy_cell"] + 1e-9).all()  # the nucleus is in the cell
    assert (f["area_nucleus"] < f["area_cell"]).all()
    # the nucleus smoothed to the layer's 2 x 2 grid scores above a flat map, far below 1
    assert (f["grid_nucleus"] > f["area_nucleus"]).all() and (f["grid_nucleus"] < 0.5).all()
    # no map of the grid, the smoothed nucleus included, beats the best one-cell map
    assert (f["best_nucleus"] >= f["grid_nucleus"] - 1e-9).all()
    assert (ok["energy_nucleus"] <= ok["best_nucleus"] + 1e-6).all()


def _disc(size: int = 112, radius: float = 30) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    return ((yy - c) ** 2 + (xx - c) ** 2 < radius ** 2)[None]


@pytest.mark.parametrize("radius", [12, 20, 30, 40, 50])
def test_no_map_of_the_grid_beats_the_best_share(radius):
    from pytorch_grad_cam.utils.image import scale_cam_image

    from leukolib.explain.localization import cell_shares, grid_best_share, grid_smoothed_mask

    disc, grid = _disc(112, radius), (4, 4)
    best = grid_best_share(disc, grid)[0]
    # every one-cell map, made as a CAM is made (pytorch-grad-cam's scaling and resize)
    one_cell = np.eye(16, dtype=np.float32).reshape(16, 4, 4)
    shares = energy_share(scale_cam_image(one_cell, (112, 112)), np.repeat(disc, 16, 0))
    assert shares.max() <= best + 1e-9
    assert shares.max() == pytest.approx(best, abs=1e-6)  # and one of them reaches it
    np.testing.assert_allclose(shares.reshape(4, 4), cell_shares(disc, grid)[0], atol=1e-6)
    # nor does any other non-negative map of the grid
    coarse = np.random.default_rng(radius).random((200, 4, 4)).astype(np.float32) ** 4
    mixed = energy_share(scale_cam_image(coarse, (112, 112)), np.repeat(disc, 200, 0))
    assert np.nanmax(mixed) <= best + 1e-9
    smoothed = energy_share(grid_smoothed_mask(disc, grid), disc)[0]
    assert np.isnan(smoothed) or smoothed <= best + 1e-9
    assert best >= disc.mean()  # never below a flat map


def test_a_one_cell_map_beats_the_smoothed_nucleus():
    from leukolib.explain.localization import grid_best_share, grid_smoothed_mask

    disc = _disc(112, 30)
    smoothed = energy_share(grid_smoothed_mask(disc, (4, 4)), disc)[0]
    best = grid_best_share(disc, (4, 4))[0]
    assert smoothed == pytest.approx(0.698, abs=1e-3) and best == pytest.approx(0.723, abs=1e-3)
    f = localization_scores({"a": grid_smoothed_mask(disc, (4, 4))}, disc, grid=(4, 4))
    assert f.loc[0, "best_nucleus"] == pytest.approx(best)
    assert f.loc[0, "grid_nucleus"] == pytest.approx(smoothed)


class RegionModel(nn.Module):
    """Class 1's logit is the mean brightness of a fixed region: evidence we know."""

    def __init__(self, region: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("region", torch.from_numpy(region.astype(np.float32)))
        self.scale = nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = (x.mean(1) * self.region).sum((1, 2)) / self.region.sum()
        return torch.stack([torch.zeros_like(inside), self.scale * (inside - 1.25)], dim=1)


def test_faithfulness_rewards_the_map_of_the_true_evidence():
    region = np.zeros((32, 32), bool)
    region[4:14, 6:16] = True
    model = RegionModel(region).eval()
    x = torch.full((3, 3, 32, 32), 0.5)
    x[:, :, 4:14, 6:16] = 1.5  # bright evidence: class 1
    right = np.repeat(region[None].astype(np.float32), 3, 0)
    wrong = 1 - right
    targets = [1, 1, 1]
    d_right, i_right = deletion_insertion(model, x, right, targets, steps=8)
    d_wrong, i_wrong = deletion_insertion(model, x, wrong, targets, steps=8)
    assert (d_right.mean(1) < d_wrong.mean(1) - 0.1).all()
    assert (i_right.mean(1) > i_wrong.mean(1) + 0.1).all()
    r_right = road_scores(model, x, right, targets, (20, 60), seed=0)
    r_wrong = road_scores(model, x, wrong, targets, (20, 60), seed=0)
    assert (r_right["road_combined"] > r_wrong["road_combined"]).all()
    again = road_scores(model, x, right, targets, (20, 60), seed=0)
    np.testing.assert_array_equal(again["road_morf"], r_right["road_morf"])  # seeded noise
    scores, curves = faithfulness_scores(model, x, {"right": right, "wrong": wrong}, targets,
                                         percentiles=(20, 60), steps=4)
    assert set(scores["method"]) == {"right", "wrong", "random"}
    twin, _ = faithfulness_scores(model, x, {"a": right, "b": right + 1e-4}, targets,
                                  percentiles=(20,), steps=2, reference=False)
    cols = ["road_combined", "deletion_auc", "insertion_auc"]  # one map, scored once
    np.testing.assert_array_equal(twin[twin.method == "a"][cols], twin[twin.method == "b"][cols])
    assert set(curves["curve"]) == {"deletion", "insertion"} and len(curves) == 3 * 2 * 5


def test_random_maps_live_on_the_cams_grid_and_vary(net, smears):
    from leukolib.explain.faithfulness import map_grid, random_maps

    x48 = torch.nn.functional.interpolate(smears[0][:3], size=(48, 48), mode="bilinear")
    batch = compute_cams(net, x48, ["gradcam", "gradcam++"])
    assert batch.grid == (2, 2)  # layer4 at 48 px: 2 x 2 cells, not 48 // 32 = 1
    assert map_grid(list(batch.cams.values())) == batch.grid  # read off the maps alike
    maps = random_maps(6, (48, 48), batch.grid, seed=0)
    assert (maps.reshape(6, -1).std(axis=1) > 0.05).all()  # no map is flat
    assert map_grid(maps) == batch.grid
    assert not np.allclose(maps[:3], maps[3:])  # independent draws differ
    np.testing.assert_array_equal(maps, random_maps(6, (48, 48), (2, 2), seed=0))  # seeded
    assert not np.array_equal(maps, random_maps(6, (48, 48), (2, 2), seed=1))
    # at 112 px layer4 has 4 x 4 cells: the random map too (not 112 // 32 = 3)
    assert map_grid(random_maps(2, (112, 112), (4, 4), seed=0)) == (4, 4)
    assert map_grid(random_maps(2, (56, 64), (2, 3), seed=0)) == (2, 3)


def test_the_random_reference_averages_its_draws():
    from leukolib.explain.faithfulness import RANDOM_MAP, curve_auc, random_maps

    region = np.zeros((32, 32), bool)
    region[4:14, 6:16] = True
    model = RegionModel(region).eval()
    x = torch.full((2, 3, 32, 32), 0.5)
    x[:, :, 4:14, 6:16] = 1.5
    targets = [1, 1]
    cam = random_maps(2, (32, 32), (4, 4), seed=9)
    scores, curves = faithfulness_scores(model, x, {"cam": cam}, targets, percentiles=(20, 60),
                                         steps=4, seed=2, n_draws=3)
    rand = scores[scores["method"] == RANDOM_MAP]
    assert rand["draws"].tolist() == [3, 3]
    assert (scores[scores["method"] == "cam"]["draws"] == 1).all()
    # the same numbers by hand: three draws on the maps' 4 x 4 grid, each scored, averaged
    draws = random_maps(3 * 2, (32, 32), (4, 4), seed=2).reshape(3, 2, 32, 32)
    road = [road_scores(model, x, d, targets, (20, 60), seed=2)["road_combined"] for d in draws]
    dele = [deletion_insertion(model, x, d, targets, steps=4)[0] for d in draws]
    np.testing.assert_allclose(rand["road_combined"], np.mean(road, axis=0), atol=1e-12)
    np.testing.assert_allclose(rand["deletion_auc"], curve_auc(np.mean(dele, axis=0)),
                               atol=1e-12)
    assert np.ptp(road, axis=0).max() > 0  # the draws differ: one would be luck
    mean = curves[(curves["method"] == RANDOM_MAP) & (curves["curve"] == "deletion")]
    np.testing.assert_allclose(mean["probability"], np.mean(dele, axis=(0, 1)), atol=1e-12)
    again, _ = faithfulness_scores(model, x, {"cam": cam}, targets, percentiles=(20, 60),
                                   steps=4, seed=2, n_draws=3, grid=(4, 4))
    pd.testing.assert_frame_equal(again, scores)  # the grid given is the grid read off
    with pytest.raises(ValueError, match="n_draws"):
        faithfulness_scores(model, x, {"cam": cam}, targets, n_draws=0)


@pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")  # the library's own
def test_road_is_pytorch_grad_cams(net, smears):
    from pytorch_grad_cam.metrics.road import (
        ROADLeastRelevantFirstAverage,
        ROADMostRelevantFirstAverage,
    )
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    from leukolib.explain.faithfulness import random_maps

    x, targets = smears[0][:3], [0, 1, 2]
    cams = random_maps(3, (64, 64), 2, seed=1)
    ours = road_scores(net, x, cams, targets, (20, 60), seed=5)
    torch.manual_seed(5)  # the library draws its noise from the global generator
    wrapped = [ClassifierOutputSoftmaxTarget(t) for t in targets]
    morf = ROADMostRelevantFirstAverage([20, 60])(x, cams, wrapped, net)
    lerf = ROADLeastRelevantFirstAverage([20, 60])(x, cams, wrapped, net)
    np.testing.assert_allclose(ours["road_morf"], morf, atol=1e-6)
    np.testing.assert_allclose(ours["road_lerf"], lerf, atol=1e-6)


def test_randomization_check(net, smears):
    x = smears[0][:4]
    rand = randomized_copy(net, ["fc"], seed=1)
    assert not torch.equal(rand.fc.weight, net.fc.weight)
    assert torch.equal(rand.layer4[0].conv1.weight, net.layer4[0].conv1.weight)
    same = randomized_copy(net, [], seed=1)  # nothing randomized: the same maps
    a, b = (compute_cams(m, x, "gradcam++", [0, 1, 2, 0]).cams["gradcam++"] for m in (net, same))
    assert np.allclose(rank_correlation(a, b), 1.0)
    full = sanity_check(net, x, [0, 1, 2, 0], "gradcam++", seed=1)
    assert set(full["randomized"]) == {"all"} and len(full) == 4
    assert np.nanmax(np.abs(full["spearman"])) <= 1
    cascade = sanity_check(net, x, [0, 1, 2, 0], ["gradcam++"], cascade=True)
    assert list(dict.fromkeys(cascade["randomized"])) == ["fc", "layer4", "layer3", "layer2",
                                                         "layer1", "all"]
    with pytest.raises(ValueError, match="no block"):
        randomized_copy(net, ["layer9"])


def test_rank_correlation_and_verdict():
    a = np.arange(16, dtype=float).reshape(1, 4, 4)
    flat = np.zeros((1, 4, 4))
    assert rank_correlation(a, a)[0] == pytest.approx(1.0)
    assert rank_correlation(a, flat)[0] == 0.0 and np.isnan(rank_correlation(flat, flat)[0])
    rng = np.random.default_rng(0)
    f = pd.DataFrame({"id": list(range(40)) * 2, "method": ["good"] * 40 + ["bad"] * 40,
                      "randomized": "all",
                      "spearman": np.r_[rng.normal(0.05, 0.1, 40), rng.normal(0.9, 0.05, 40)]})
    s = sanity_summary(f, n_boot=500)
    assert bool(s.loc["good", "passes"]) and not bool(s.loc["bad", "passes"])


def test_summaries_pair_images_and_pick_a_passing_method():
    per = pd.DataFrame({
        "model": ["segmented-relu-linear"] * 4 + ["raw-relu-linear"] * 4,
        "method": ["gradcam"] * 8, "id": ["a", "b", "c", "d"] * 2,
        "energy_nucleus": [0.9, 0.8, 0.85, 0.95, 0.2, 0.3, 0.25, 0.1]})
    c = compare_inputs(per, "energy_nucleus", n_boot=500)
    assert c.loc[0, "difference"] == pytest.approx(0.6625) and c.loc[0, "n"] == 4
    s = summarize(per, ["model"], ["energy_nucleus"], n_boot=500)
    assert s["n"].tolist() == [4, 4] and (s["ci_low"] <= s["mean"]).all()
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(30)]
    faith = pd.concat([pd.DataFrame({"model": "m", "id": ids, "method": m,
                                     "road_combined": rng.normal(mu, 0.05, 30)})
                       for m, mu in (("gradcam", 0.2), ("gradcam++", 0.3), ("random", 0.0))])
    sanity = pd.DataFrame({"model": "m", "method": ["gradcam", "gradcam++"],
                           "passes": [True, False]})
    assert recommend_method(faith, n_boot=500)["method"] == "gradcam++"
    assert recommend_method(faith, sanity, n_boot=500)["method"] == "gradcam"
    chance = faith.assign(road_combined=np.where(faith["method"] == "random", 0.5,
                                                 faith["road_combined"]))
    r = recommend_method(chance, n_boot=500)  # no map beats a random one: none recommended
    assert r["method"] is None and r["beat_random"] == []


def test_page_and_batch_rows(net, smears):
    x, imgs, nuc, _ = smears
    out = explain_batch(net, x[:2], imgs[:2], nuc[:2], ["L1", "L2", "L3"], "all",
                        ["a.png", "b.png"])
    page, row = out[0]
    assert page.dtype == np.uint8 and page.shape[1] == 4 * 224 and page.shape[2] == 3
    assert {f"share_{m}" for m in METHODS} <= set(row) and row["predicted"] in ("L1", "L2", "L3")
    assert sum(row[f"p_{c}"] for c in ("L1", "L2", "L3")) == pytest.approx(1.0)
    small = explain_page(imgs[0], {"gradcam": np.zeros((64, 64))}, np.array([0.5, 0.5]),
                         ["a", "b"], panel=96)
    assert small.shape[1] == 3 * 96 and (small == 255).any()


def test_the_sanity_table_calls_a_pass_on_empty_maps_vacuous():
    import pandas as pd

    from leukolib.explain.summary import sanity_cells

    summary = pd.DataFrame({
        "model": ["a", "b", "c"], "method": ["gradcam"] * 3, "spearman": [0.0, 0.1, 0.2],
        "ci_low": [float("nan"), 0.0, 0.1], "ci_high": [float("nan"), 0.2, 0.3],
        "n": [30, 30, 4], "n_maps": [30, 30, 10], "n_empty": [30, 2, 6],
        "passes": [True, True, True]})
    cells = sanity_cells(summary)["gradcam"].tolist()
    assert cells[0] == "0.00 (no interval) vacuous pass: all 30 maps empty"
    assert cells[1].endswith("pass (2 of 30 maps empty)")
    assert cells[2].endswith("pass (6 of 10 maps empty)")  # not "all": 4 pairs had maps
