"""Test-time mirroring: each view mapped back, the average, the run's and the CLI's choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leukolib.data.synthetic import SyntheticDataset
from leukolib.segmentation import MethodError, get_method, methods_for
from leukolib.segmentation.scale import ScaleSpec
from leukolib.segmentation.training import train_unet
from leukolib.segmentation.tta import TTA, VIEW_SETS, VIEWS, check_tta, mirrored
from leukolib.segmentation.unet import load_unet_run, predict_proba, predict_proba_at_scale


@pytest.fixture(scope="module")
def scale_run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tta") / "run"
    train_unet(SyntheticDataset(n_images=6, size=64, seed=0), run_dir, seed=0, profile="smoke",
               image_size=32, folds=2, epochs=1, progress=False)
    return run_dir


class LeftEdge(torch.nn.Module):
    """Not mirror-symmetric: marks pixels whose left neighbour is darker (a rising edge)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x[:, :1]
        d = torch.zeros_like(g)
        d[..., 1:] = g[..., 1:] - g[..., :-1]
        return torch.sigmoid(d * 50)


class RedIsNucleus(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, :1] - 0.5) * 40


def test_views_are_mapped_back_before_they_are_averaged():
    x = torch.zeros(1, 1, 6, 8)
    x[..., 3:] = 1.0  # a rising edge between columns 2 and 3
    net = LeftEdge()
    one, four = net(x), mirrored(net, "flips")(x)
    assert one[0, 0, :, 3].min() > 0.99  # one view sees the rising edge at column 3
    # Mirrored left-right, the edge falls and the net answers sigmoid(-50) at column 2, mapped
    # back; without the mapping back the dark pixel would land elsewhere. The four views (two of
    # them mirrored left-right) then average, column by column, to:
    row = [0.5, 0.5, 0.25, 0.75, 0.5, 0.5, 0.5, 0.5]
    assert torch.allclose(four[0, 0], torch.tensor(row).expand(6, 8), atol=1e-6)
    assert four.shape == x.shape
    # each view's answer is mapped back before the average: per view, against a reference
    views = [(), (-1,), (-2,), (-2, -1)]
    ref = sum(torch.flip(net(torch.flip(x, a)), a) if a else net(x) for a in views) / 4
    assert torch.allclose(four, ref)


def test_one_view_is_the_network_itself_and_names_are_checked():
    net = LeftEdge()
    assert mirrored(net, "none") is net
    assert VIEW_SETS[0] == "none" and len(VIEWS["flips"]) == 4
    with pytest.raises(ValueError, match="known: none, flips"):
        check_tta("d4")


def test_mirroring_keeps_the_right_answer_of_a_symmetric_network_at_any_scale():
    yy, xx = np.mgrid[:120, :160]
    truth = (yy - 60) ** 2 + (xx - 50) ** 2 <= 30 ** 2
    image = np.zeros((120, 160, 3), np.uint8)
    image[truth, 0] = 255
    spec = ScaleSpec(target_diameter=12, patch_size=32, overlap=0.25)
    nets = [RedIsNucleus().eval()]
    a = predict_proba_at_scale(nets, image, 0.4, spec)
    b = predict_proba_at_scale(nets, image, 0.4, spec, tta="flips")
    assert np.abs(a - b).max() < 1e-4  # the red channel has no direction
    c = predict_proba(nets, [image], 32, tta="flips")[0]
    assert np.abs(c - predict_proba(nets, [image], 32)[0]).max() < 1e-4


def test_a_run_uses_the_library_views_unless_told(scale_run_dir):
    run = load_unet_run(scale_run_dir)
    assert run.tta == TTA
    assert load_unet_run(scale_run_dir, tta="flips").tta == "flips"
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        load_unet_run(scale_run_dir, tta="rotations")
    # the method asked for other views gets them; the caller's run keeps its own
    other = "flips" if TTA == "none" else "none"
    seg = get_method("unet", model=run, tta=other)
    assert seg.run.tta == other and run.tta == TTA
    with pytest.raises(MethodError, match="unknown test-time augmentation"):
        get_method("unet", model=run, tta="rotations")
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        run.tta = "rotations"  # the attribute is checked too
    ens = methods_for("ensemble", scale_run_dir, tta="flips")
    assert ens.info["tta"] == "flips" and ens.deep.run.tta == "flips"
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    p1 = load_unet_run(scale_run_dir, tta="none").predict_proba(image)
    p4 = load_unet_run(scale_run_dir, tta="flips").predict_proba(image)
    assert p1.shape == p4.shape == (40, 56) and not np.allclose(p1, p4)
