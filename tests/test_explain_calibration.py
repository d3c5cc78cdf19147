"""Calibration and the paper's Table A3 layout: ECE, temperature scaling, probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from leukolib import paper
from leukolib.explain import (
    calibration_summary,
    ece_floor,
    expected_calibration_error,
    fit_temperature,
    fold_probabilities,
    fold_temperatures,
    paper_table_a3,
    pick_images,
    probability_table,
    reliability_table,
)
from leukolib.explain.cams import softmax


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from their own softmax: calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.5, (n, 3))
    y = (softmax(z).cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return z, y


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    z, y = _calibrated(5000, 0)
    assert expected_calibration_error(softmax(z), y) < 0.03
    assert expected_calibration_error(softmax(4 * z), y) > 0.1
    t = reliability_table(softmax(z), y, n_bins=10)
    assert t["n"].sum() == 5000 and len(t) == 10
    assert (t.dropna()["gap"] < 0.1).all()


def test_temperature_fitted_on_held_out_logits_halves_the_test_ece():
    z_fit, y_fit = _calibrated(2000, 1)
    z_test, y_test = _calibrated(600, 2)
    s = calibration_summary(4 * z_fit, y_fit, 4 * z_test, y_test, n_boot=300)
    assert s["temperature"] == pytest.approx(4, rel=0.15)
    assert s["ece_after"] <= s["ece_before"] / 2
    assert s["nll_after"] < s["nll_before"] and s["brier_after"] < s["brier_before"]
    lo, hi = s["ece_before_ci"]
    assert lo <= s["ece_before"] <= hi
    folds = np.stack([4 * z_test, 4 * z_test])  # (F, N, C): averaged, as a run's test logits
    assert calibration_summary(4 * z_fit, y_fit, folds, y_test, n_boot=100)["accuracy"] == \
        s["accuracy"]


def _two_folds(scale: float = 4.0):
    """Fold 3 calibrated, fold 7 ``scale`` times over-confident: held-out and test logits."""
    z_fit, y_fit = _calibrated(2000, 11)
    z_test, y_test = _calibrated(1500, 12)
    folds = np.repeat([3, 7], 1000)
    fit = np.where(folds[:, None] == 7, scale * z_fit, z_fit)
    return fit, y_fit, folds, np.stack([z_test, scale * z_test]), y_test


def test_each_fold_is_scaled_by_its_own_temperature_before_the_average():
    fit, y_fit, folds, test, y_test = _two_folds()
    s = calibration_summary(fit, y_fit, test, y_test, n_boot=50, n_draws=100, fit_folds=folds)
    t = s["temperatures"]
    assert t[0] == pytest.approx(1, rel=0.15) and t[1] == pytest.approx(4, rel=0.15)
    assert s["temperature"] == pytest.approx(np.sqrt(t[0] * t[1]))  # the table's one number
    assert s["n_fit_per_fold"] == [1000, 1000] and "T_k" in s["rule"]
    # what is evaluated: mean_k softmax(z_k / T_k); the second fold's 4 z / 4 is z again
    after = fold_probabilities(test, t)
    np.testing.assert_allclose(after, np.mean([softmax(test[0], t[0]), softmax(test[1], t[1])],
                                              axis=0))
    assert s["ece_after"] == pytest.approx(expected_calibration_error(after, y_test))
    assert s["ece_after"] == pytest.approx(expected_calibration_error(softmax(test[0]), y_test),
                                           abs=0.02)
    before = fold_probabilities(test)
    assert s["ece_before"] == pytest.approx(expected_calibration_error(before, y_test))
    assert s["ece_after"] < s["ece_before"] / 2 and s["nll_after"] < s["nll_before"]
    # the temperatures follow the rows of the test logits
    flipped = calibration_summary(fit, y_fit, test[::-1], y_test, n_boot=20, n_draws=20,
                                  fit_folds=folds, fold_order=[7, 3])
    assert flipped["temperatures"] == t[::-1] and flipped["ece_after"] == pytest.approx(
        s["ece_after"])
    np.testing.assert_allclose(fold_temperatures(fit, y_fit, folds, [7, 3]), t[::-1])
    with pytest.raises(ValueError, match="held out no image"):
        fold_temperatures(fit, y_fit, folds, [3, 5])
    with pytest.raises(ValueError, match="2 fold temperatures for 3"):
        calibration_summary(fit, y_fit, np.concatenate([test, test[:1]]), y_test, n_boot=5,
                            n_draws=5, fit_folds=folds)


def test_calibrate_run_fits_each_fold_on_the_images_it_held_out():
    from types import SimpleNamespace

    from leukolib.explain.report import calibrate_run

    fit, y_fit, folds, test, y_test = _two_folds()
    ids = np.array([f"im{i}" for i in range(len(y_fit))])
    saved = {"test_logits": test.astype(np.float32), "test_labels": y_test, "oof_ids": ids,
             "oof_labels": y_fit, "oof_logits": fit.astype(np.float32)}
    # an older run: the fold of each held-out image only in the record's val_ids
    record = {"folds": [{"fold": k, "val_ids": ids[folds == k].tolist()} for k in (7, 3)]}
    run = SimpleNamespace(key="m", record=record, saved_logits=lambda: saved)
    c = calibrate_run(run, n_boot=20, seed=0)
    newer = calibrate_run(SimpleNamespace(key="m", record=record,
                                          saved_logits=lambda: {**saved, "oof_folds": folds}),
                          n_boot=20, seed=0)
    assert c["temperatures"] == newer["temperatures"]
    assert c["temperatures"][0] == pytest.approx(1, rel=0.15)
    assert c["temperatures"][1] == pytest.approx(4, rel=0.15)
    after = fold_probabilities(test, c["temperatures"])
    rel = reliability_table(after, y_test)
    np.testing.assert_array_equal(c["reliability_after"]["n"], rel["n"])
    assert c["ece_after"] == pytest.approx(expected_calibration_error(after, y_test))
    np.testing.assert_array_equal(c["reliability_before"]["n"],
                                  reliability_table(fold_probabilities(test), y_test)["n"])


def test_the_floor_of_ece_tells_noise_from_miscalibration():
    # 26 calibrated images: ECE near 0.1, no evidence against "calibrated"
    z, y = _calibrated(26, 4)
    r = ece_floor(softmax(z), y, n_draws=500)
    assert 0.04 < r["floor"] < 0.25 and r["floor"] <= r["floor_q95"]
    assert r["p"] > 0.05
    assert r == ece_floor(softmax(z), y, n_draws=500)  # seeded
    # the floor falls with the number of images; over-confidence is detected on enough of them
    z, y = _calibrated(1000, 5)
    big = ece_floor(softmax(z), y, n_draws=200)
    assert big["floor"] < r["floor"] / 2
    assert ece_floor(softmax(4 * z), y, n_draws=200)["p"] < 0.01
    s = calibration_summary(z, y, z[:26], y[:26], n_boot=50, n_draws=300)
    assert {"ece_before_floor", "ece_before_p", "ece_after_floor", "ece_after_p"} <= set(s)
    # halving an ECE that is already at its floor: rarely seen even for a perfect model
    assert 0 <= s["halving_chance"] < 0.5
    # an ECE that cannot be computed is no evidence of anything
    nan = ece_floor(np.full((3, 2), np.nan), np.array([0, 1, 0]), n_draws=10, target=0.1)
    assert np.isnan(nan["p"]) and np.isnan(nan["p_target"])
    with pytest.raises(ValueError, match="3 rows of probabilities but 2 labels"):
        ece_floor(softmax(z[:3]), y[:2])


def test_temperature_never_changes_a_prediction():
    z, y = _calibrated(300, 3)
    t = fit_temperature(0.3 * z, y)  # under-confident: T < 1 sharpens
    assert t < 1
    assert (softmax(0.3 * z, t).argmax(1) == softmax(0.3 * z).argmax(1)).all()
    with pytest.raises(ValueError, match="no logits"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0, int))


def test_table_a3_layout_on_images_every_model_gets_right():
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    good = np.eye(3)[y] * 0.7 + 0.1
    bad = good.copy()
    bad[1] = [0.1, 0.8, 0.1]  # model b misclassifies image 1
    probs = {"a": good, "b": bad}
    chosen = pick_images(y, probs, per_class=2, seed=0)
    assert 1 not in chosen and len(chosen) == 6
    t = probability_table([f"im{i}" for i in range(8)], y, ["L1", "L2", "L3"], probs, chosen)
    assert list(t.columns) == ["class", "image", "a", "b"]
    assert t.iloc[-1]["class"] == "Average" and t.iloc[-1]["a"] == pytest.approx(0.8)


def test_paper_table_a3_in_leukolib_names():
    t = paper_table_a3()
    assert list(t.columns) == ["class", "image", "segmented-mish-linear", "raw-mish-linear",
                               "segmented-mish-medium", "raw-mish-medium"]
    assert t.iloc[-1]["raw-mish-linear"] == pytest.approx(0.565)
    r = paper.reported(table="A3", method="raw-mish-linear", metric="proba:average")
    assert float(r["value"].item()) == t.iloc[-1]["raw-mish-linear"]


@pytest.mark.parametrize("name", ["explain_all_idb2_cpu", "explain_jtsc_cpu"])
def test_the_shipped_real_data_explanations_render_as_tables(name):
    from leukolib.explain.committed import SHIPPED_METRICS, committed_explanations

    c = committed_explanations(name)
    assert c is not None, f"leukolib/reference/{name}.json is not shipped"
    assert "benchmarks/explain_report.py" in c["source"] and "test images" in c["summary"]
    r = c["results"]
    assert {row["metric"] for row in r["localization"]} <= set(SHIPPED_METRICS)
    cal = c["tables"]["calibration on the test split"]
    assert len(cal) == 8 and {"p before", "floor after", "p after"} <= set(cal.columns)
    energy = c["tables"]["energy share on the nucleus (layer4)"]
    assert energy.shape == (8, 2) and energy.map(lambda v: "[" in v).all().all()
    assert list(energy.columns) == ["gradcam", "gradcam++"]  # the three that coincide: one
    # the summary's numbers are the tables' numbers
    h = r["headline"]
    assert f"{h['segmented_share_min']:.2f} to {h['segmented_share_max']:.2f}" in c["summary"]


def test_shipped_keeps_what_the_book_shows():
    from leukolib.explain.committed import shipped

    rows = [{"model": "m", "method": "gradcam", "metric": m, "mean": 0.5, "ci_low": 0.4,
             "ci_high": 0.6, "n": 3} for m in ("energy_nucleus", "energy_cell", "grid_nucleus")]
    out = shipped({"dataset": "d", "localization": rows, "faithfulness_by_model": [1, 2],
                   "finer_layer": {"layer": "layer2", "localization": rows, "headline": {}}})
    assert [r["metric"] for r in out["localization"]] == ["energy_nucleus", "grid_nucleus"]
    assert "faithfulness_by_model" not in out and out["finer_layer"]["layer"] == "layer2"
    assert len(out["finer_layer"]["localization"]) == 2
