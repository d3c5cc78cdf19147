"""The segmentation evaluation and report: one pass per sample, tables, statistics."""

from __future__ import annotations

import json
import zlib

import matplotlib
import numpy as np
import pandas as pd
import pytest

from leukolib.data import Dataset, Subset
from leukolib.data.synthetic import SyntheticDataset
from leukolib.metrics import SEGMENTATION_METRICS
from leukolib.segmentation.ensemble import EnsembleParams
from leukolib.segmentation.evaluate import (
    Evaluation,
    evaluate_segmentation,
    standard_methods,
)
from leukolib.segmentation.figures import failure_gallery
from leukolib.segmentation.generalization import HANDCRAFTED_ROW, generalization, matrix, modes
from leukolib.segmentation.handcrafted import segment_nucleus
from leukolib.segmentation.report import (
    fusion_diagnostics,
    iou_intervals,
    overall_table,
    paired_table,
    paper_table,
    save_report,
)
from leukolib.segmentation.training import train_unet
from leukolib.segmentation.unet import load_unet_run
from leukolib.stats import (
    bootstrap_ci,
    cluster_bootstrap_ci,
    holm,
    holm_paired,
    is_degenerate,
    mcnemar,
    outcomes_ci,
    paired_comparison,
    proportion_ci,
    stratified_bootstrap_ci,
    wilcoxon_p,
)
from leukolib.tables import styled, to_markdown

matplotlib.use("Agg")

TINY = {"profile": "smoke", "image_size": 32, "folds": 2, "epochs": 1, "progress": False}
NO_FALLBACK = {"fallback_iou": 0.0, "fallback_entropy": 0.0,  # the fusions alone, on every image
               "gate_entropy": 0.0}
ALTERNATIVES = {"OR": EnsembleParams("or", **NO_FALLBACK),
                "SOFT": EnsembleParams("soft", **NO_FALLBACK)}
METHODS = ["HM", "DEEP", "ENSEMBLE", "OR", "SOFT"]


class FakeDeep:
    """A U-Net stand-in: the truth, blurred by a noisy probability; counts its calls."""

    mode = "fold-average"
    reason = "a fake"

    def __init__(self, seed: int = 0) -> None:
        self.calls: list[str] = []
        self.seed = seed

    def proba(self, sample):
        """The same map for the same sample, whenever asked (a test can recompute it)."""
        self.calls.append(sample.id)
        rng = np.random.default_rng([self.seed, zlib.crc32(sample.id.encode())])
        p = np.where(sample.nucleus, 0.8, 0.2) + rng.normal(0, 0.2, sample.nucleus.shape)
        return np.clip(p, 0, 1).astype(np.float32)


def renamed(base: Dataset, name: str) -> Subset:
    """The same samples under another dataset name."""
    view = Subset(base, range(len(base)))
    view.name = name
    return view


@pytest.fixture(scope="module")
def data() -> SyntheticDataset:
    return SyntheticDataset(n_images=6, size=64, seed=0)


@pytest.fixture(scope="module")
def fake_ev(data) -> Evaluation:
    return evaluate_segmentation(data, standard_methods(FakeDeep(),
                                                        EnsembleParams(**NO_FALLBACK),
                                                        alternatives=ALTERNATIVES),
                                 trained_on="synthetic", progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data):
    run_dir = tmp_path_factory.mktemp("report") / "run"
    train_unet(data, run_dir, seed=0, **TINY)
    return load_unet_run(run_dir, device="cpu")


# --------------------------------------------------------------------------- one pass


def test_one_handcrafted_and_one_unet_call_per_sample(data):
    deep, hm_calls = FakeDeep(), []

    def handcrafted(image):
        hm_calls.append(1)
        return segment_nucleus(image)

    ev = evaluate_segmentation(data, standard_methods(deep, alternatives=ALTERNATIVES,
                                                      handcrafted=handcrafted),
                               chunk=4, progress=False)
    assert sorted(deep.calls) == sorted(data.ids)  # each sample once
    assert len(hm_calls) == len(data)
    assert ev.info["synthetic"]["mode"] == "fold-average"


def test_per_image_table_has_every_method_and_sample(fake_ev, data):
    p = fake_ev.per_image
    assert list(p.columns) == ["dataset", "id", "method", "trained_on", "mode",
                               *SEGMENTATION_METRICS, "mask_repaired"]
    assert set(zip(p["id"], p["method"], strict=True)) == {(i, m) for i in data.ids
                                                            for m in METHODS}
    assert (p.loc[p["method"] == "HM", "mode"] == "no training").all()
    assert fake_ev.methods == METHODS
    assert len(fake_ev.agreement) == len(data)
    total = fake_ev.agreement.filter(like="hm").sum(axis=1)  # the eight counts partition pixels
    assert (total == 64 * 64).all()


def test_fallback_rates_read_both_measures_off_the_agreement_table(fake_ev, data):
    from leukolib.segmentation.ensemble import agreement, uncertainty
    from leukolib.segmentation.report import fallback_rates

    a = fake_ev.agreement.set_index("id")
    deep, ious = FakeDeep(), {}
    for sample in data:  # each image's two measures, recomputed from its masks
        hm, p = segment_nucleus(sample.image), deep.proba(sample)
        assert a.loc[sample.id, "uncertainty"] == pytest.approx(uncertainty(hm, p), abs=1e-6)
        ious[sample.id] = agreement(hm, p)
    u = float(a["uncertainty"].median())
    x = float(np.median(list(ious.values())))
    rules = {"never": EnsembleParams(**NO_FALLBACK),
             "always": EnsembleParams(fallback_iou=0.999, fallback_entropy=0.0, gate_entropy=0.0),
             "unsure": EnsembleParams(fallback_iou=0.0, fallback_entropy=u, gate_entropy=0.0),
             "apart": EnsembleParams(fallback_iou=x, fallback_entropy=0.0, gate_entropy=0.0)}
    r = fallback_rates(fake_ev, rules)
    assert r.loc["synthetic", "never"] == 0.0 and r.loc["synthetic", "always"] == 1.0
    assert r.loc["synthetic", "unsure"] == pytest.approx((a["uncertainty"] > u).mean())
    assert r.loc["synthetic", "apart"] == pytest.approx(np.mean([v < x for v in ious.values()]))
    assert int(r.loc["synthetic", "n"]) == len(a)
    # the rates count what the ensemble does: HM alone exactly where the rule says so
    ev = evaluate_segmentation(data, standard_methods(deep, rules["unsure"]),
                               trained_on="synthetic", progress=False)
    per = ev.per_image.pivot(index="id", columns="method", values="iou")
    kept = a["uncertainty"] > u
    assert kept.any() and (~kept).any()
    assert (per.loc[kept[kept].index, "ENSEMBLE"] == per.loc[kept[kept].index, "HM"]).all()
    assert (per.loc[kept[~kept].index, "ENSEMBLE"] != per.loc[kept[~kept].index, "HM"]).any()
    with pytest.raises(ValueError, match="cuts DEEP at 0.3"):
        fallback_rates(fake_ev, {"other cut": EnsembleParams(threshold=0.3)})
    with pytest.raises(ValueError, match="did not record"):
        fallback_rates(Evaluation(fake_ev.per_image, fake_ev.agreement.drop(
            columns="uncertainty"), info=fake_ev.info), {"unsure": rules["unsure"]})


def test_the_set_gate_gives_a_whole_set_its_handcrafted_rows(fake_ev, data):
    from leukolib.segmentation.ensemble import EnsembleSegmenter, fuse, uncertainty
    from leukolib.segmentation.evaluate import apply_set_gate, set_entropies
    from leukolib.segmentation.selection import gate_candidates, gate_scores

    median = float(np.median(fake_ev.agreement["uncertainty"]))  # 6 images: all of them read
    assert set_entropies(fake_ev).loc[("synthetic", "synthetic")] == pytest.approx(median)
    never = {"fallback_iou": 0.0, "fallback_entropy": 0.0}
    below = EnsembleParams(gate_entropy=median / 2, **never)
    above = EnsembleParams(gate_entropy=min(0.99, median * 2), **never)
    per = fake_ev.per_image.pivot(index="id", columns="method", values="iou")
    gated = apply_set_gate(fake_ev, below).per_image.pivot(index="id", columns="method",
                                                           values="iou")
    pd.testing.assert_series_equal(gated["ENSEMBLE"], per["HM"], check_names=False)
    pd.testing.assert_series_equal(gated["OR"], per["OR"])  # other rules keep their rows
    assert (per["ENSEMBLE"] != per["HM"]).any()  # so the gate did change something
    kept = apply_set_gate(fake_ev, above)
    pd.testing.assert_frame_equal(kept.per_image, fake_ev.per_image)
    assert kept.info["synthetic"]["set_gate"]["synthetic"]["gated"] is False
    assert apply_set_gate(fake_ev, EnsembleParams(**NO_FALLBACK)) is fake_ev  # no gate
    # the selection scores every candidate from the same pass; "never" is the ensemble itself
    scores = gate_scores(fake_ev, gate_candidates(EnsembleParams(**NO_FALLBACK)))
    assert list(scores.index)[0] == "0" and list(scores.columns) == ["synthetic"]
    assert scores.loc["0", "synthetic"] == pytest.approx(per["ENSEMBLE"].mean())
    # evaluating with a gated rule gives the same rows; the segmenter decides the same way
    ev = evaluate_segmentation(data, standard_methods(FakeDeep(), below), trained_on="synthetic",
                               progress=False)
    pd.testing.assert_series_equal(
        ev.per_image.pivot(index="id", columns="method", values="iou")["ENSEMBLE"], per["HM"],
        check_names=False)
    seg = EnsembleSegmenter(FakeDeep(), params=below)
    assert seg.calibrate(data) is True and seg.set_entropy == pytest.approx(median)
    for s in data:
        assert (seg(s) == segment_nucleus(s.image)).all()
    assert EnsembleSegmenter(FakeDeep(), params=above).calibrate(data) is False
    # without calibration, an image is a set of one: its own entropy decides
    for params in (below, above):
        alone = EnsembleSegmenter(FakeDeep(), params=params)
        for s in data:
            hm, p = segment_nucleus(s.image), FakeDeep().proba(s)
            want = hm if uncertainty(hm, p) > params.gate_entropy else fuse(hm, p, params)
            assert (alone(s) == want).all()


def test_run_is_batched_by_fold_and_matches_the_out_of_fold_record(tiny_run, data):
    seen: list = []
    original = tiny_run.predict_many

    def counting(images, folds=None, batch_size=16, **kwargs):
        seen.extend([folds] * len(images))
        return original(images, folds, batch_size, **kwargs)

    tiny_run.predict_many = counting
    try:
        ev = evaluate_segmentation(data, standard_methods(tiny_run.predictor_for(data)),
                                   progress=False)
    finally:
        del tiny_run.predict_many
    assert len(seen) == len(data) and None not in seen  # one out-of-fold map per sample
    deep = ev.per_image[ev.per_image["method"] == "DEEP"].set_index("id")
    assert set(deep["mode"]) == {"out-of-fold"}
    for row in tiny_run.per_image:  # the same numbers as the training's own OOF evaluation
        assert deep.loc[row["id"], "iou"] == pytest.approx(row["iou"], abs=1e-3)


# --------------------------------------------------------------------------- tables


def test_summary_is_mean_and_sample_std(fake_ev):
    s = fake_ev.summary()
    p = fake_ev.per_image
    hm = p[p["method"] == "HM"]["iou"]
    row = s.loc[("synthetic", "synthetic", "HM")]
    assert row["iou"] == pytest.approx(hm.mean()) and row["iou_std"] == pytest.approx(hm.std())
    assert row["n"] == 6


def test_paper_table_has_ours_and_the_papers_rows():
    per = pd.DataFrame({"dataset": "jtsc", "id": ["a", "b"], "method": "ENSEMBLE",
                        "trained_on": "jtsc", "mode": "out-of-fold", "acc": 0.99, "pre": 0.9,
                        "rec": 0.9, "spec": 0.99, "dsc": 0.95, "iou": [0.90, 0.96],
                        "mask_repaired": 0})
    t = paper_table(Evaluation(per, pd.DataFrame()), "jtsc")
    assert t.iloc[0][["source", "method", "n_images"]].tolist() == ["leukolib", "ENSEMBLE", 2]
    assert t.iloc[0]["iou"] == pytest.approx(0.93)
    paper_rows = t[t["source"] != "leukolib"]
    assert "ENSEMBLE" in set(paper_rows["method"])  # Table 2/4's proposed ensemble, 0.926
    assert paper_rows.set_index("method").loc["ENSEMBLE", "iou"] == pytest.approx(0.926)
    assert any(m.startswith("LDAS-NET [17]") for m in paper_rows["method"])  # a competitor
    assert np.isnan(paper_rows.set_index("method").loc["Mayala & Haugsoen [15]", "acc"])
    html = styled(t.set_index(["source", "method"])).to_html()
    assert "<table" in html and "n/a" in html and "font-weight: bold" in html
    md = to_markdown(t.set_index("method"), best=["iou"])
    assert "**0.931**" in md  # LDAS-NET's 0.931 beats our 0.93 and the paper's 0.926


def test_overall_table_and_intervals(fake_ev):
    o = overall_table(fake_ev)
    assert list(o.index[:5]) == METHODS and o.index[-1].startswith("paper ENSEMBLE")
    assert o.loc[o.index[-1], "mean"] == pytest.approx(0.917)  # Table 2's six-dataset average
    ci = iou_intervals(fake_ev, n_boot=500)
    assert (ci["ci_low"] <= ci["mean"]).all() and (ci["mean"] <= ci["ci_high"]).all()


def test_statistics():
    lo, hi = bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.9], seed=0)
    assert lo < 0.38 < hi and bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.9], seed=0) == (lo, hi)
    assert 0.0 < wilcoxon_p([0.1, -0.2, 0.3, 0.25, 0.1]) <= 1.0 and wilcoxon_p([0, 0]) == 1.0
    r = paired_comparison(np.linspace(0.8, 0.9, 30), np.linspace(0.7, 0.8, 30), names=("a", "b"))
    assert r["verdict"] == "a better" and r["wins"] == 30
    m = mcnemar([0] * 40, [0] * 30 + [1] * 10, [1] * 40)
    assert (m["a_right_b_wrong"], m["a_wrong_b_right"], m["test"]) == (30, 0, "chi-square, "
                                                                        "continuity-corrected")
    assert m["p"] < 1e-6


def test_a_proportion_gets_its_exact_interval_never_one_of_zero_width():
    # 26 of 26: Clopper-Pearson's lower bound is 0.025 ** (1 / 26) = 0.868, not 1
    lo, hi = proportion_ci(26, 26)
    assert lo == pytest.approx(0.025 ** (1 / 26)) and round(lo, 3) == 0.868 and hi == 1.0
    assert proportion_ci(0, 26)[0] == 0.0
    assert proportion_ci(0, 26)[1] == pytest.approx(1 - 0.025 ** (1 / 26))
    # Clopper-Pearson's bounds are quantiles of beta distributions
    from scipy.stats import beta

    lo, hi = proportion_ci(22, 26)
    assert lo == pytest.approx(beta.ppf(0.025, 22, 5)) and hi == pytest.approx(
        beta.ppf(0.975, 23, 4))
    assert outcomes_ci([1.0] * 26 + [np.nan]) == proportion_ci(26, 26)
    assert np.isnan(proportion_ci(0, 0)).all()
    with pytest.raises(ValueError, match="0 or 1"):
        outcomes_ci([0.5, 1.0])


def test_a_degenerate_bootstrap_is_flagged_not_printed():
    assert is_degenerate([0.5, 0.5]) and is_degenerate([0.7]) and not is_degenerate([0.5, 0.6])
    assert np.isnan(bootstrap_ci([0.5, 0.5])).all()  # was (0.5, 0.5): an interval of zero width
    assert np.isnan(bootstrap_ci([1.0] * 26)).all() and np.isnan(bootstrap_ci([0.3])).all()
    assert np.isnan(cluster_bootstrap_ci([0.5] * 4, ["a", "a", "b", "b"])).all()
    # every resample the same statistic: no interval from the stratified bootstrap either
    ci = stratified_bootstrap_ci(lambda i: 0.0, [0, 0, 1, 1], n_boot=50)
    assert np.isnan(ci).all()
    # all differences zero: no interval, no winner; all equal and large: the test decides
    r = paired_comparison([0.5] * 10, [0.5] * 10)
    assert r["degenerate"] and np.isnan([r["ci_low"], r["ci_high"]]).all()
    assert r["verdict"] == "no significant difference"
    r = paired_comparison([1.0] * 10, [0.0] * 10, names=("a", "b"))
    assert r["degenerate"] and r["verdict"] == "a better" and r["wilcoxon_p"] < 0.01


def test_pooled_models_are_resampled_by_image():
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, 20)  # what an image does to every model's score
    values = np.r_[image + rng.normal(0, 0.05, 20), image + rng.normal(0, 0.05, 20)]
    ids = np.r_[np.arange(20), np.arange(20)]
    lo, hi = cluster_bootstrap_ci(values, ids, n_boot=2000, seed=0)
    rows_lo, rows_hi = bootstrap_ci(values, n_boot=2000, seed=0)
    # rows counted as 40 independent images: too narrow; by image, near the 20 images' own
    img_lo, img_hi = bootstrap_ci(values.reshape(2, 20).mean(0), n_boot=2000, seed=0)
    assert hi - lo > 1.2 * (rows_hi - rows_lo)
    assert hi - lo == pytest.approx(img_hi - img_lo, rel=0.15)
    assert cluster_bootstrap_ci(values, ids, n_boot=2000, seed=0) == (lo, hi)
    # one row per image: the ordinary bootstrap
    assert cluster_bootstrap_ci(image, np.arange(20), seed=1) == bootstrap_ci(image, seed=1)
    r = paired_comparison(values, values - 0.1, clusters=ids)
    assert r["n"] == 20 and r["wins"] == 20


def test_a_table_of_verdicts_is_holm_adjusted():
    t = pd.DataFrame({"mean_diff": [0.2, 0.1, 0.1], "ci_low": [0.1, 0.02, -0.05],
                      "ci_high": [0.3, 0.2, 0.2], "wilcoxon_p": [0.001, 0.03, 0.2]})
    h = holm_paired(t, ("A", "B"))
    np.testing.assert_allclose(h["wilcoxon_p_holm"], [0.003, 0.06, 0.2])
    assert h["wilcoxon_p"].tolist() == [0.001, 0.03, 0.2]  # the raw p-values stay
    # the second row was significant alone (p = 0.03), not among three tests
    assert h["verdict"].tolist() == ["A better", "no significant difference",
                                     "no significant difference"]
    assert h.attrs["note"].startswith("p-values Holm-adjusted over the 3 tests of this table")
    assert "Holm-adjusted over the 3 tests" in styled(h, caption="x").to_html()
    # a row flagged degenerate stands at its difference; one without the flag (NaN) does not
    t["degenerate"] = [np.nan, np.nan, True]
    t.loc[1, ["ci_low", "wilcoxon_p"]] = [-0.05, 0.001]  # the interval holds 0: no winner
    t.loc[2, ["ci_low", "ci_high", "wilcoxon_p"]] = [np.nan, np.nan, 0.001]
    h = holm_paired(t, ("A", "B"))
    assert h["verdict"].tolist() == ["A better", "no significant difference", "A better"]


def test_paired_table_and_diagnostics(fake_ev):
    p = paired_table(fake_ev, n_boot=500)
    assert set(p["comparison"]) == {"ENSEMBLE - DEEP", "ENSEMBLE - HM"}
    assert (p["wilcoxon_p_holm"] >= p["wilcoxon_p"]).all() and "Holm" in p.attrs["note"]
    d = fusion_diagnostics(fake_ev)
    assert {"and_removes_fp", "and_removes_tp", "hm_rec", "deep_pre"} <= set(d.columns)


def test_save_report(fake_ev, tmp_path):
    paths = save_report(fake_ev, tmp_path, n_boot=200)
    assert (tmp_path / "segmentation_report.md").exists() and len(paths) > 6
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert {r["method"] for r in rows} == set(METHODS)


# --------------------------------------------------------------------------- generalization


def test_generalization_matrix(tiny_run, data):
    other = renamed(SyntheticDataset(n_images=3, size=64, seed=9), "other")
    ev = generalization({"synthetic": tiny_run}, {"synthetic": data, "other": other},
                        progress=False)
    m = matrix(ev)
    assert list(m.index) == ["synthetic", HANDCRAFTED_ROW] and list(m.columns) == ["synthetic",
                                                                                   "other"]
    md = modes(ev)
    assert md.loc["synthetic", "synthetic"] == "out-of-fold"
    assert md.loc["synthetic", "other"] == "fold-average"


def test_failure_gallery(fake_ev, data):
    methods = standard_methods(FakeDeep(), alternatives=ALTERNATIVES)
    fig = failure_gallery(fake_ev, data, methods, n_worst=1)
    assert len(fig.axes) >= 4


def test_holm_controls_the_family_and_keeps_nan():
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.5])
    adj = holm(p)
    assert np.isnan(adj[1])
    np.testing.assert_allclose(adj[[0, 2, 3, 4]], [0.04, 0.09, 0.09, 0.5])
    assert (adj[np.isfinite(p)] >= p[np.isfinite(p)]).all()
    assert holm([]).shape == (0,)


def test_across_splits_chooses_on_validation_never_on_the_test_split():
    from leukolib.classification.report import across_splits

    def report(seed, rows):
        table = [{"model": m, "val acc (mean)": v, "test acc": t, "CI low": t - 0.1,
                  "CI high": min(1.0, t + 0.1)} for m, v, t in rows]
        return {"command": f"python benchmarks/classification_report.py --seed {seed}",
                "grid": {"n_test": 26, "table": table},
                "baselines": {"color": {"test_acc": 1.0}}}

    t = across_splits([
        report(0, [("segmented-relu-linear", 0.93, 0.88), ("raw-relu-linear", 0.87, 0.96)]),
        report(4, [("segmented-relu-linear", 0.90, 0.92), ("raw-relu-linear", 0.95, 0.85)])])
    assert t.index.tolist() == [0, 4]
    assert t["best by validation"].tolist() == ["segmented-relu-linear", "raw-relu-linear"]
    assert t["its test acc"].tolist() == [0.88, 0.85]
    assert t["highest test acc of the eight"].tolist() == [0.96, 0.92]
    assert t["best raw (test acc)"].tolist() == [0.96, 0.85]
    assert (t["color baseline (test acc)"] == 1.0).all()

    # reports that record their configuration name it; two settings are not two splits
    def trained(seed, epochs):
        r = report(seed, [("raw-relu-linear", 0.9, 0.9)])
        r["grid"]["config"] = {"folds": 2, "epochs": epochs}
        return r

    t = across_splits([trained(0, 15), trained(1, 15)])
    assert t["setting"].tolist() == ["2 folds x 15 epochs"] * 2
    with pytest.raises(ValueError, match=r"several settings \(2 folds x 15 epochs, 2 folds x 30"):
        across_splits([trained(0, 15), trained(1, 30)])


def test_the_shipped_splits_render_with_their_source():
    from leukolib.classification.report import committed_splits

    s = committed_splits("classification_all_idb2_cpu_splits")
    assert s is not None, "leukolib/reference/classification_all_idb2_cpu_splits.json not shipped"
    t = s["table"]
    assert len(t) >= 3 and t.index.is_unique
    assert (t["its test acc"] <= t["highest test acc of the eight"]).all()
    assert f"{t['its test acc'].min():.3f} to {t['its test acc'].max():.3f}" in s["text"]
    assert "benchmarks/classification_splits.py" in s["source"]


def _run(key, seed, epochs, val, last, test, ids=("a", "b", "c", "d")):
    return {"config": {"seed": seed, "dataset": {"name": "all_idb2"}, "profile": "cpu",
                       "folds": 2, "epochs": epochs, "batch_size": 16},
            "folds": [{"train_ids": ["x"] * 117, "history": [{"val_acc": 0.5}, {"val_acc": last}]}
                      for _ in range(2)],
            "test": {"ids": list(ids)},
            "summary": {"val_acc_mean": val, "test_acc": test, "test_acc_ci": [test - 0.1, 1.0]}}


def test_settings_compare_on_the_same_splits_and_choose_on_validation(tmp_path, monkeypatch):
    from leukolib import reference
    from leukolib.classification.grid import grid_keys
    from leukolib.classification.report import across_settings, committed_settings

    keys = grid_keys()
    # the longer setting is given first; the profile's (30 epochs for 117 images) comes first
    longer = {k: _run(k, 0, 60, 0.95, 0.93, 0.85) for k in keys}
    longer[keys[2]] = _run(keys[2], 0, 60, 0.97, 0.90, 0.90)   # best validation ...
    longer[keys[5]] = _run(keys[5], 0, 60, 0.92, 0.91, 1.00)   # ... not the best test
    grids = [longer, {keys[0]: _run(keys[0], 11, 60, 0.90, 0.80, 0.7, ids="xy")},
             {k: _run(k, 0, 30, 0.90, 0.88, 0.88) for k in keys},
             {keys[0]: _run(keys[0], 11, 30, 0.85, 0.84, 0.8, ids="xy"),
              keys[1]: _run(keys[1], 2, 30, 0.85, 0.84, 0.8, ids="pq")}]
    frame = across_settings(grids)
    assert list(dict.fromkeys(frame["setting"])) == ["2 folds x 30 epochs (the cpu profile)",
                                                     "2 folds x 60 epochs"]
    assert len(frame) == 8 + 1 + 8 + 2 and (frame["val acc (last epoch)"] > 0.5).all()

    monkeypatch.setattr(reference, "_path", lambda name: tmp_path / f"{name}.json")
    reference.write("settings_test", {"rows": frame.to_dict(orient="records")},
                    "python benchmarks/classification_settings.py GRID", "cpu", folder=tmp_path)
    s = committed_settings("settings_test")
    # a column per seed, in the seeds' numeric order (11 after 2)
    assert list(s["table"].columns) == [
        "val acc (last epoch), seed 0", "val acc (last epoch), seed 2",
        "val acc (last epoch), seed 11", "test acc, seed 0", "test acc, seed 2",
        "test acc, seed 11"]
    # only splits where all eight were trained get a choice: the best validation, not test
    chosen = s["chosen"]
    assert chosen.index.tolist() == [("2 folds x 30 epochs (the cpu profile)", 0),
                                     ("2 folds x 60 epochs", 0)]
    assert chosen.loc[("2 folds x 60 epochs", 0), "best by validation"] == keys[2]
    assert chosen.loc[("2 folds x 60 epochs", 0), "its test acc"] == 0.90
    # last-epoch validation: +5 points for six models, +2 and +3 for two, -4 once: mean 31 / 9
    assert ("on the 9 (seed, model) pairs trained under both: validation accuracy at the last "
            "epoch higher for 8, lower for 1, a mean change of +3.4 points (-4.0 to +5.0)"
            in s["text"])
    assert "One test image of 2 is 50.0 points." in s["text"]


def test_settings_refuse_what_they_cannot_compare():
    from leukolib.classification.report import across_settings

    k = "raw-relu-linear"
    with pytest.raises(ValueError, match="another test split"):
        across_settings([{k: _run(k, 0, 15, 0.9, 0.9, 0.9)},
                         {k: _run(k, 0, 30, 0.9, 0.9, 0.9, ids="xyz")}])
    with pytest.raises(ValueError, match=r"trained twice.*raw-relu-linear \(seed 0\)"):
        across_settings([{k: _run(k, 0, 15, 0.9, 0.9, 0.9)}, {k: _run(k, 0, 15, 0.8, 0.8, 0.8)}])
    other = _run(k, 1, 15, 0.9, 0.9, 0.9)
    other["config"]["dataset"]["name"] = "jtsc"
    with pytest.raises(ValueError, match="several datasets"):
        across_settings([{k: _run(k, 0, 15, 0.9, 0.9, 0.9)}, {k: other}])


def test_the_shipped_settings_render_with_their_source():
    from leukolib.classification.report import committed_settings

    s = committed_settings("classification_all_idb2_cpu_settings")
    assert s is not None, "leukolib/reference/classification_all_idb2_cpu_settings.json not shipped"
    from leukolib.profiles import get_profile

    # the profile's setting comes first, and is the profile's now (117 training images a fold)
    c = get_profile("cpu").classification
    first = s["table"].index.get_level_values("setting")[0]
    epochs = c.epochs_for(117, 16, "all_idb2")
    assert first == f"{c.folds} folds x {epochs} epochs (the cpu profile)"
    assert len(s["chosen"]) >= 1 and s["text"].startswith("Against *")
    assert "benchmarks/classification_settings.py" in s["source"]


def test_settings_count_no_change_where_only_rounding_differs():
    from leukolib.classification.report import _settings_text, across_settings

    k = "raw-relu-linear"
    # float32 accuracies of the same 233 images out of 270, summed in another order
    text = _settings_text(across_settings([{k: _run(k, 0, 30, 0.9, 0.8629629612, 0.9)},
                                           {k: _run(k, 0, 31, 0.9, 0.862962991, 0.9)}]))
    assert "higher for 0, lower for 0, a mean change of +0.0 points" in text
