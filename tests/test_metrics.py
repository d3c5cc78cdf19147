"""Metrics against values computed by hand, empty masks included."""

from __future__ import annotations

import numpy as np
import pytest

from leukolib.metrics import (
    classification_metrics,
    confusion_counts,
    metrics_from_counts,
    segmentation_metrics,
    summarize,
)


def test_hand_computed_case():
    # 3x3 truth with 4 nucleus pixels; prediction hits 3, adds 2 false positives.
    truth = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 0]], bool)
    pred = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 0]], bool)
    assert confusion_counts(pred, truth).tolist() == [3, 2, 1, 3]  # TP FP FN TN
    m = segmentation_metrics(pred, truth)
    assert m["acc"] == pytest.approx(6 / 9)
    assert m["pre"] == pytest.approx(3 / 5)
    assert m["rec"] == pytest.approx(3 / 4)
    assert m["spec"] == pytest.approx(3 / 5)
    assert m["dsc"] == pytest.approx(6 / 9)
    assert m["iou"] == pytest.approx(3 / 6)


def test_dice_iou_identity_holds_on_random_masks():
    rng = np.random.default_rng(0)
    p = rng.random((5, 16, 16)) > 0.5
    t = rng.random((5, 16, 16)) > 0.4
    m = metrics_from_counts(confusion_counts(p, t))
    np.testing.assert_allclose(m["dsc"], 2 * m["iou"] / (1 + m["iou"]))


def test_both_empty_is_perfect():
    z = np.zeros((4, 4), bool)
    keys = ("acc", "pre", "rec", "spec", "dsc", "iou")
    assert segmentation_metrics(z, z) == dict.fromkeys(keys, 1.0)


def test_empty_prediction_of_a_nucleus_scores_zero():
    t = np.zeros((4, 4), bool)
    t[0, 0] = True
    m = segmentation_metrics(np.zeros_like(t), t)
    assert (m["pre"], m["rec"], m["dsc"], m["iou"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["spec"] == 1.0 and m["acc"] == pytest.approx(15 / 16)


def test_prediction_on_empty_truth_scores_zero():
    p = np.zeros((4, 4), bool)
    p[1, 1] = True
    m = segmentation_metrics(p, np.zeros_like(p))
    assert (m["pre"], m["rec"], m["dsc"], m["iou"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["spec"] == pytest.approx(15 / 16)


def test_full_masks_have_no_negatives():
    o = np.ones((3, 3), bool)
    assert segmentation_metrics(o, o)["spec"] == 1.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differs"):
        confusion_counts(np.zeros((2, 2)), np.zeros((2, 3)))


def test_summarize_mean_and_sample_std():
    s = summarize([{"iou": 0.5}, {"iou": 0.7}, {"iou": 0.9}], metrics=["iou"])
    assert s["iou"]["mean"] == pytest.approx(0.7)
    assert s["iou"]["std"] == pytest.approx(0.2)
    assert summarize([{"iou": 0.3}], metrics=["iou"])["iou"]["std"] == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_classification_metrics_by_hand():
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 2, 0]
    m = classification_metrics(y, p, ["L1", "L2", "L3"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # precision: L1 1/2, L2 2/3, L3 1/1; recall: 1/2, 1, 1/2
    assert m["precision"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["recall"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    f1 = [2 * a * b / (a + b) for a, b in [(1 / 2, 1 / 2), (2 / 3, 1), (1, 1 / 2)]]
    assert m["f1"] == pytest.approx(np.mean(f1))
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["L2"]["support"] == 2


def test_classification_keeps_absent_classes():
    m = classification_metrics([0, 0], [0, 0], ["a", "b", "c"])
    assert m["confusion"] == [[2, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert m["recall"] == pytest.approx(1 / 3)
