"""The segmentation evaluation report: one pass per sample, tables, statistics, generalization."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

from leukolib.data import Dataset, Subset
from leukolib.data.synthetic import SyntheticDataset
from leukolib.metrics import SEGMENTATION_METRICS, summarize
from leukolib.segmentation.handcrafted import segment_nucleus
from leukolib.segmentation.report import (
    HANDCRAFTED_ROW,
    METHODS,
    SegmentationReport,
    bootstrap_ci,
    evaluate_methods,
    failure_gallery,
    generalization,
    markdown_table,
    mean_ci,
    paired_comparison,
    paper_table,
    summarize_per_image,
    wilcoxon_p,
)
from leukolib.segmentation.training import train_unet
from leukolib.segmentation.unet import load_unet_run

matplotlib.use("Agg")

TINY = {"profile": "smoke", "image_size": 32, "folds": 2, "epochs": 1, "progress": False}


class FakeDeep:
    """A U-Net stand-in: the truth, blurred by a noisy probability; counts its calls."""

    mode = "fold-average"
    reason = "a fake"
    threshold = 0.5

    def __init__(self, seed: int = 0) -> None:
        self.calls: list[str] = []
        self.rng = np.random.default_rng(seed)

    def proba(self, sample):
        self.calls.append(sample.id)
        p = np.where(sample.nucleus, 0.8, 0.2) + self.rng.normal(0, 0.2, sample.nucleus.shape)
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
def fake_report(data) -> SegmentationReport:
    return evaluate_methods(data, FakeDeep(), progress=False)


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

    rep = evaluate_methods(data, deep, handcrafted=handcrafted, chunk=4, progress=False)
    assert sorted(deep.calls) == sorted(data.ids)  # each sample once
    assert len(hm_calls) == len(data)
    assert rep.info["synthetic"]["mode"] == "fold-average"


def test_per_image_table_has_every_method_and_sample(fake_report, data):
    p = fake_report.per_image
    assert list(p.columns) == [
        "dataset",
        "id",
        "method",
        "trained_on",
        "mode",
        *SEGMENTATION_METRICS,
    ]
    assert len(p) == len(data) * len(METHODS)
    assert set(zip(p["id"], p["method"], strict=True)) == {
        (i, m) for i in data.ids for m in METHODS
    }
    assert (p.loc[p["method"] == "HM", "mode"] == "no training").all()
    assert fake_report.methods == list(METHODS)
    assert len(fake_report.agreement) == len(data)
    # The eight agreement counts partition every image's pixels.
    total = fake_report.agreement.filter(like="hm").sum(axis=1)
    assert (total == 64 * 64).all()


def test_run_is_batched_by_fold_and_matches_the_out_of_fold_record(tiny_run, data):
    seen: list[int] = []
    original = tiny_run.predict_many

    def counting(images, fold=None, batch_size=16):
        seen.extend([fold] * len(images))
        return original(images, fold, batch_size)

    tiny_run.predict_many = counting
    try:
        rep = evaluate_methods(data, tiny_run, progress=False)
    finally:
        del tiny_run.predict_many
    assert len(seen) == len(data) and None not in seen  # one out-of-fold map per sample
    deep = rep.per_image[rep.per_image["method"] == "DEEP"].set_index("id")
    assert set(deep["mode"]) == {"out-of-fold"}
    for row in tiny_run.per_image:  # the same numbers as the training's own OOF evaluation
        assert deep.loc[row["id"], "iou"] == pytest.approx(row["iou"], abs=1e-3)


# --------------------------------------------------------------------------- tables


def test_summary_matches_leukolib_summarize(fake_report):
    s = fake_report.summary()
    assert len(s) == len(METHODS) * len(SEGMENTATION_METRICS)
    for method in METHODS:
        rows = fake_report.per_image[fake_report.per_image["method"] == method].to_dict("records")
        ref = summarize(rows)
        got = s[s["method"] == method].set_index("metric")
        for m in SEGMENTATION_METRICS:
            assert got.loc[m, "mean"] == pytest.approx(ref[m]["mean"])
            assert got.loc[m, "std"] == pytest.approx(ref[m]["std"])
    wide = fake_report.summary_wide()
    assert list(wide.columns) == list(SEGMENTATION_METRICS)
    assert list(wide.index.get_level_values("method")) == list(METHODS)


def _summary(dataset: str, ious: dict[str, float]) -> pd.DataFrame:
    rows = []
    for k, (method, iou) in enumerate(ious.items()):
        for m in SEGMENTATION_METRICS:
            mean = iou if m == "iou" else 0.9 + 0.01 * k
            rows.append(
                {
                    "dataset": dataset,
                    "method": method,
                    "metric": m,
                    "mean": mean,
                    "std": 0.05,
                    "n": 10,
                }
            )
    return pd.DataFrame(rows)


def test_paper_table_marks_the_best_and_shows_na():
    t = paper_table(_summary("jtsc", {"HM": 0.90, "DEEP": 0.91, "ENSEMBLE": 0.95}), "jtsc")
    assert t.loc["ENSEMBLE", "iou"] == "**0.950 ± 0.050**"
    assert t.loc["paper ENSEMBLE (Table 2)", "iou"] == "0.926"  # transcribed, no std
    assert (t.loc["paper HM"] == "n/a").all()  # Tables 2-4 are mostly missing
    assert (t.loc["competitors (Table 4)"] == "n/a").all()
    assert t.loc["ENSEMBLE", "acc"].startswith("**")  # the best of the acc column (0.92)
    assert not t.loc["HM", "acc"].startswith("**")
    # Below the paper: its number gets the mark.
    t = paper_table(_summary("jtsc", {"HM": 0.90, "ENSEMBLE": 0.92}), "jtsc")
    assert t.loc["paper ENSEMBLE (Table 2)", "iou"] == "**0.926**"
    assert t.loc["ENSEMBLE", "iou"] == "0.920 ± 0.050"
    # Ties at the shown precision are all marked; unknown datasets are all n/a on the paper side.
    t = paper_table(_summary("synthetic", {"HM": 0.9001, "DEEP": 0.9002}), "synthetic")
    assert t.loc["HM", "iou"].startswith("**") and t.loc["DEEP", "iou"].startswith("**")
    assert (t.loc[[r for r in t.index if r.startswith("paper")]] == "n/a").all().all()


def test_overall_table_and_markdown(fake_report):
    o = fake_report.overall_table()
    assert o.loc["paper ENSEMBLE", "synthetic"] == "n/a"
    assert o.loc["paper ENSEMBLE", "mean"].startswith("0.917")
    md = markdown_table(o)
    assert md.splitlines()[0].startswith("| method |") and "n/a" in md


# --------------------------------------------------------------------------- statistics


def test_bootstrap_ci_is_seeded_and_contains_the_mean():
    d = np.random.default_rng(1).normal(0.01, 0.03, 80)
    lo, hi = bootstrap_ci(d, n_boot=2000, seed=3)
    assert (lo, hi) == bootstrap_ci(d, n_boot=2000, seed=3)
    assert (lo, hi) != bootstrap_ci(d, n_boot=2000, seed=4)
    assert lo < d.mean() < hi
    assert np.isnan(bootstrap_ci([], seed=0)[0])


def test_wilcoxon_p_in_unit_interval():
    rng = np.random.default_rng(0)
    assert 0.0 <= wilcoxon_p(rng.normal(0, 1, 30)) <= 1.0
    assert wilcoxon_p(rng.normal(1, 0.1, 30)) < 1e-3
    assert wilcoxon_p(np.zeros(10)) == 1.0


def test_paired_comparison(fake_report):
    p = paired_comparison(fake_report.per_image, n_boot=500, seed=0)
    assert list(p["comparison"][:2]) == ["ENSEMBLE - DEEP", "ENSEMBLE - HM"]
    assert p["comparison"].iloc[2].startswith("best fusion (ENSEMBLE")
    assert ((p["wilcoxon_p"] >= 0) & (p["wilcoxon_p"] <= 1)).all()
    assert ((p["ci_low"] <= p["mean_diff"]) & (p["mean_diff"] <= p["ci_high"])).all()
    assert (p["wins"] + p["losses"] + p["ties"] == p["n"]).all()
    again = paired_comparison(fake_report.per_image, n_boot=500, seed=0)
    pd.testing.assert_frame_equal(p, again)
    c = mean_ci(fake_report.per_image, n_boot=500)
    assert len(c) == len(METHODS) and c["paper_in_ci"].isna().all()


def test_writers(fake_report, tmp_path):
    paths = fake_report.save(tmp_path)
    names = {p.name for p in paths}
    assert {"per_image.csv", "summary.csv", "paired.csv", "segmentation_report.json"} <= names
    record = json.loads((tmp_path / "segmentation_report.json").read_text())
    assert record["summary"]["synthetic"]["ENSEMBLE"]["iou"]["n"] == 6
    assert record["paper_tables"]["synthetic"]["paper HM"]["iou"] == "n/a"
    back = pd.read_csv(tmp_path / "per_image.csv", dtype={"id": str})
    assert len(back) == len(fake_report.per_image)
    assert "| paper HM | n/a |" in (tmp_path / "segmentation_report.md").read_text()
    other = renamed(SyntheticDataset(n_images=3, size=64, seed=5), "other")
    both = SegmentationReport.concat(
        [fake_report, evaluate_methods(other, FakeDeep(), progress=False)]
    )
    assert both.datasets == ["synthetic", "other"]
    with pytest.raises(ValueError, match="more than one"):
        SegmentationReport.concat([fake_report, fake_report])


# --------------------------------------------------------------------------- generalization


def test_generalization_matrix(tiny_run, data):
    other = renamed(SyntheticDataset(n_images=3, size=64, seed=9), "other")
    own = evaluate_methods(data, tiny_run, progress=False)
    gen = generalization(
        [tiny_run], {"synthetic": data, "other": other}, reports=[own], progress=False
    )
    m = gen.matrix()
    assert m.shape == (2, 2)
    assert list(m.index) == ["synthetic", HANDCRAFTED_ROW]
    assert m.notna().all().all()
    modes = gen.modes()
    assert modes.loc["synthetic", "synthetic"] == "out-of-fold"
    assert modes.loc["synthetic", "other"] == "fold-average"
    # The diagonal is the report's own out-of-fold evaluation.
    deep = own.per_image[own.per_image["method"] == "DEEP"]["iou"].mean()
    assert m.loc["synthetic", "synthetic"] == pytest.approx(deep)
    hm = own.per_image[own.per_image["method"] == "HM"]["iou"].mean()
    assert m.loc[HANDCRAFTED_ROW, "synthetic"] == pytest.approx(hm)


def test_failure_gallery(fake_report, data):
    fig = failure_gallery(fake_report, data, FakeDeep(), n_worst=1)
    n_rows = len({a.get_title() for a in fig.axes[::4] if a.get_title()})
    assert len(fig.axes) % 4 == 0 and 1 <= n_rows <= 3  # image + HM, DEEP, ENSEMBLE per row
    assert "iou" in fig.axes[1].get_title()


def test_summarize_per_image_single_image():
    p = pd.DataFrame([{"dataset": "d", "method": "HM", **dict.fromkeys(SEGMENTATION_METRICS, 0.5)}])
    s = summarize_per_image(p)
    assert (s["std"] == 0).all() and (s["n"] == 1).all()
