"""The Unified Focal Loss against values computed by hand from the formulas."""

import math

import pytest
import torch

from leukolib.segmentation.losses import UnifiedFocalLoss, unified_focal_terms

LOGITS = [[[2.0, -1.0], [0.5, -3.0]], [[-0.2, 1.5], [0.0, 4.0]]]
TARGET = [[[1, 0], [1, 0]], [[0, 0], [1, 1]]]


def _sigmoid(z):
    return 1.0 / (1.0 + math.exp(-z))


def _by_hand(logits, target, lam, delta, gamma, eps=1e-7):
    """Eq. (9)-(11) written out pixel by pixel in plain Python."""
    focal_terms, tversky_terms = [], []
    for zs, ys in zip(logits, target, strict=True):
        pixels = [
            (_sigmoid(z), y)
            for zr, yr in zip(zs, ys, strict=True)
            for z, y in zip(zr, yr, strict=True)
        ]
        for p, y in pixels:
            # nucleus: delta-weighted CE; background: (1 - p_t)^gamma = p^gamma suppression
            focal_terms.append(
                -delta * y * math.log(p) - (1 - delta) * (1 - y) * p**gamma * math.log(1 - p)
            )
        tp = sum(y * p for p, y in pixels)
        fn = sum(y * (1 - p) for p, y in pixels)
        fp = sum((1 - y) * p for p, y in pixels)
        tn = sum((1 - y) * (1 - p) for p, y in pixels)
        mti_fore = (tp + eps) / (tp + delta * fn + (1 - delta) * fp + eps)
        # background class: its TP are the true negatives, its FN the nucleus FP ...
        mti_back = (tn + eps) / (tn + delta * fp + (1 - delta) * fn + eps)
        tversky_terms += [1 - mti_back, (1 - mti_fore) ** (1 - gamma)]
    maf = sum(focal_terms) / len(focal_terms)
    maft = sum(tversky_terms) / len(tversky_terms)
    return maf, maft, lam * maf + (1 - lam) * maft


@pytest.mark.parametrize(
    "lam, delta, gamma", [(0.5, 0.6, 0.5), (0.2, 0.7, 0.75), (1.0, 0.5, 0.0), (0.0, 0.6, 0.3)]
)
def test_matches_hand_computation(lam, delta, gamma):
    z = torch.tensor(LOGITS, dtype=torch.float64).unsqueeze(1)
    y = torch.tensor(TARGET).unsqueeze(1)
    maf, maft, total = _by_hand(LOGITS, TARGET, lam, delta, gamma)
    got_maf, got_maft = unified_focal_terms(z, y, delta, gamma)
    assert got_maf.item() == pytest.approx(maf, rel=1e-5)
    assert got_maft.item() == pytest.approx(maft, rel=1e-5)
    got = UnifiedFocalLoss(lam, delta, gamma)(z, y)
    assert got.item() == pytest.approx(total, rel=1e-5)


def test_one_image_2x2_literal_value():
    # One 2x2 image, defaults (lam 0.5, delta 0.6, gamma 0.5): the number itself.
    z = torch.tensor([[[[2.0, -1.0], [0.5, -3.0]]]])
    y = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    expected = _by_hand([LOGITS[0]], [TARGET[0]], 0.5, 0.6, 0.5)[2]
    assert UnifiedFocalLoss()(z, y).item() == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.217926, abs=1e-5)


def test_target_without_channel_axis_and_bool():
    z = torch.tensor(LOGITS).unsqueeze(1)
    y = torch.tensor(TARGET, dtype=torch.bool)
    assert UnifiedFocalLoss()(z, y).item() == pytest.approx(
        UnifiedFocalLoss()(z, y.unsqueeze(1).float()).item()
    )


def test_gradients_finite_even_when_saturated():
    z = torch.tensor([[[[200.0, -200.0], [30.0, -90.0]]]], requires_grad=True)
    y = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    loss = UnifiedFocalLoss()(z, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad).all()
    z2 = torch.randn(2, 1, 8, 8, requires_grad=True)
    y2 = (torch.rand(2, 1, 8, 8) > 0.7).float()
    UnifiedFocalLoss(0.3, 0.7, 0.9)(z2, y2).backward()
    assert torch.isfinite(z2.grad).all() and z2.grad.abs().sum() > 0


def test_perfect_prediction_is_near_zero_and_wrong_is_large():
    y = torch.zeros(2, 1, 6, 6)
    y[:, :, 1:4, 2:5] = 1
    loss = UnifiedFocalLoss()
    assert loss(30 * (2 * y - 1), y).item() < 1e-3
    assert loss(-30 * (2 * y - 1), y).item() > 1.0
    # and it decreases as the prediction improves
    values = [loss(s * (2 * y - 1), y).item() for s in (-2.0, 0.0, 2.0, 8.0)]
    assert values == sorted(values, reverse=True)


def test_bad_parameters_and_shapes():
    with pytest.raises(ValueError):
        UnifiedFocalLoss(delta=1.5)
    with pytest.raises(ValueError):
        UnifiedFocalLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))


def test_cross_check_with_monai_on_probabilities():
    """MONAI's terms, fed probabilities, agree with ours (its focal term is half from 1.6)."""
    from monai.losses.unified_focal_loss import AsymmetricFocalLoss, AsymmetricFocalTverskyLoss

    z = torch.tensor(LOGITS, dtype=torch.float64).unsqueeze(1)
    y = torch.tensor(TARGET, dtype=torch.float64).unsqueeze(1)
    p = torch.sigmoid(z)
    p2, y2 = torch.cat([1 - p, p], 1), torch.cat([1 - y, y], 1)
    maf, maft = unified_focal_terms(z, y, 0.6, 0.5)
    monai_ft = AsymmetricFocalTverskyLoss(delta=0.6, gamma=0.5)(p2, y2)
    monai_f = AsymmetricFocalLoss(delta=0.6, gamma=0.5)(p2, y2)
    assert maft.item() == pytest.approx(monai_ft.item(), rel=1e-5)
    # MONAI 1.6 averages the two class terms of a pixel; 1.3 to 1.5 sum them, as we do.
    import monai
    from packaging.version import Version

    factor = 2 if Version(monai.__version__).release >= (1, 6) else 1
    assert maf.item() == pytest.approx(factor * monai_f.item(), rel=1e-5)
