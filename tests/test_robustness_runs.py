"""Clusters and robustness on real classifier runs (two of the grid, trained at smoke size)."""

from __future__ import annotations

import numpy as np
import pytest

from leukolib.data import Subset, profile_dataset


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    from leukolib.classification import load_classifier_run, train_grid

    ds = profile_dataset("synthetic", None, "smoke", 0, stage="classification")
    out = tmp_path_factory.mktemp("classifiers")
    keys = ["segmented-relu-linear", "raw-relu-linear"]
    train_grid(ds, out, profile="smoke", seed=0, keys=keys, progress=False)
    return ds, {k: load_classifier_run(out / k, device="cpu") for k in keys}


def test_the_test_split_is_found_by_id_and_checked_by_pixels(grid):
    from leukolib.robustness.sweeps import test_samples

    ds, runs = grid
    run = runs["raw-relu-linear"]
    samples = test_samples(run, ds)
    saved = run.saved_logits()
    assert [s.id for s in samples] == [str(i) for i in saved["test_ids"]]
    assert [s.label for s in samples] == saved["test_labels"].tolist()
    other = profile_dataset("synthetic", None, "smoke", 1, stage="classification")
    with pytest.raises(ValueError, match="other pixels"):
        test_samples(run, other)
    with pytest.raises(ValueError, match="not in dataset"):
        test_samples(run, Subset(ds, [0]))


def test_a_pipeline_recomputes_the_saved_test_logits(grid):
    from leukolib.robustness.sweeps import run_pipeline, test_samples

    ds, runs = grid
    for key, run in runs.items():
        samples = test_samples(run, ds)
        p = run_pipeline(run, folds="best")
        assert p.uses_mask == run.spec.needs_mask  # segmented, or a raw crop around the nucleus
        assert p.uses_mask or not key.startswith("segmented")
        masks = p.segment([s.image for s in samples]) if p.uses_mask else None
        logits = p.predict([s.image for s in samples], masks)
        saved = run.saved_logits()["test_logits"][run.best_fold]
        np.testing.assert_allclose(logits, saved, rtol=1e-4, atol=1e-4)


def test_clusters_and_sweeps_on_the_runs(grid):
    from leukolib.explain.clusters import analyze_runs, run_test_logits, table8
    from leukolib.robustness.report import accuracy_curves, pick_models, table7
    from leukolib.robustness.sweeps import (
        classifier_sweep,
        paper_setting,
        run_pipeline,
        test_samples,
    )

    ds, runs = grid
    analyses = analyze_runs(runs)
    t8 = table8(analyses)
    assert list(t8.index) == list(runs) and (t8["n_images"] == len(test_samples(
        runs["raw-relu-linear"], ds))).all()
    mean, labels = run_test_logits(runs["raw-relu-linear"], folds="mean")
    assert mean.shape == (len(labels), 3)
    assert pick_models(runs) == {"segmented": "segmented-relu-linear", "raw": "raw-relu-linear"}
    samples = test_samples(runs["raw-relu-linear"], ds)
    args = ([s.image for s in samples], [s.label for s in samples], [s.id for s in samples])
    pipes = [run_pipeline(r) for r in runs.values()]
    pi = classifier_sweep(pipes, *args, ["defocus_blur"], (5,), progress=False)
    curves = accuracy_curves(pi, n_boot=50)
    raw_ways = {"before", "after"} if pipes[1].uses_mask else {"raw"}
    assert set(curves[curves["model"] == "raw-relu-linear"]["way"]) == raw_ways
    assert set(curves[curves["model"] == "segmented-relu-linear"]["way"]) == {"before", "after"}
    pp = paper_setting(pipes, *args)
    t7 = table7(pp, ds.class_names)
    raw_row = ("raw-relu-linear", "after" if pipes[1].uses_mask else "raw")
    assert t7.loc[raw_row, "n"] == len(samples)
    # the clean accuracy of the best fold's model, as the run's own fold record says
    best = runs["raw-relu-linear"].best_fold
    fold = [f for f in runs["raw-relu-linear"].record["folds"] if f["fold"] == best][0]
    assert t7.loc[raw_row, "clean_acc"] == pytest.approx(
        fold["test"]["accuracy"])


def test_the_chapter_reports_and_the_claims(grid, tmp_path):
    from leukolib.robustness.experiments import claims, cluster_report, robustness_report

    ds, runs = grid
    cr = cluster_report(runs, n_boot=50)
    assert set(cr.tables) == {"table8", "beside_paper", "intervals", "spreads"}
    assert list(cr.interval_view().columns) == ["Dist/SD ratio", "silhouette", "Davies-Bouldin"]
    assert cr.comparison["a"] == "segmented-relu-linear" and cr.comparison["b"] == "raw-relu-linear"
    rr = robustness_report(runs, ds, "smoke", 0, corruptions=["jpeg"])
    assert rr.info["swept"] == ["segmented-relu-linear", "raw-relu-linear"]
    assert set(rr.degradation) == {"segmented_vs_raw", "after_vs_before"}
    verdicts = claims(cr, rr)
    assert len(verdicts) == 3
    assert set(verdicts["verdict"]) <= {"supported", "not supported", "n/a"}
    names = {p.name for p in [*cr.save(tmp_path), *rr.save(tmp_path)]}
    assert {"table8.csv", "table7.json", "curves.csv", "degradation_segmented_vs_raw.csv"} <= names
