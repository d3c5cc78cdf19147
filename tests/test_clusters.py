"""The logit cluster analysis: the paper's Table 8 arithmetic, its generalization, the measures."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from leukolib import paper
from leukolib.explain.clusters import (
    SPREADS,
    analyze_logits,
    cluster_intervals,
    cluster_spread,
    compare_ratios,
    dist_sd_ratio,
    paper_table8,
    plot_clusters,
    project_logits,
    table8,
)
from leukolib.stats import stratified_bootstrap_ci

DISTS = ["dist_l1_l2", "dist_l2_l3", "dist_l1_l3"]
SDS = ["sd_l1", "sd_l2", "sd_l3"]


def _blobs(n_per_class=20, n_classes=3, scale=6.0, noise=1.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    logits = np.eye(n_classes)[labels] * scale + rng.normal(0, noise, (len(labels), n_classes))
    return logits, labels


def _ratio_range(row) -> tuple[float, float]:
    """The ratio over every value the printed (2-decimal) distances and SDs may have stood for."""
    lo, hi = math.inf, -math.inf
    for signs in itertools.product((-1, 1), repeat=6):
        d = [row[c] + s * 0.005 for c, s in zip(DISTS, signs[:3], strict=True)]
        sd = [row[c] + s * 0.005 for c, s in zip(SDS, signs[3:], strict=True)]
        r = dist_sd_ratio(d, sd)[2]
        lo, hi = min(lo, r), max(hi, r)
    return lo - 0.005, hi + 0.005  # and the printed ratio's own rounding


@pytest.mark.parametrize("row", [0, 1, 2, 3], ids=lambda r: f"row{r + 1}")
def test_the_paper_table8_is_recomputed_from_its_printed_components(row):
    r = paper.table("8").iloc[row]
    dist, sd, ratio = dist_sd_ratio([r[c] for c in DISTS], [r[c] for c in SDS])
    assert dist == pytest.approx(r["dist_total"], abs=0.015)  # three cells rounded to 0.005
    assert sd == pytest.approx(r["sd_total"], abs=0.01)
    lo, hi = _ratio_range(r)
    assert lo <= r["ratio_dist_sd"] <= hi, (row, ratio, lo, hi)
    # the paper's own ratio, recomputed: 3 * dist / sd (not dist / sd, nor dist / 3 sd)
    assert abs(ratio - r["ratio_dist_sd"]) < 0.05
    assert abs(ratio / 3 - r["ratio_dist_sd"]) > 5


def test_the_definitions_for_any_number_of_classes():
    for c in (2, 3, 5):
        logits, labels = _blobs(n_classes=c, seed=c)
        names = [f"C{k}" for k in range(c)]
        a = analyze_logits(logits, labels, names)
        pairs = c * (c - 1) // 2
        assert a.n_pairs == pairs
        assert a.dist_total == pytest.approx(sum(a.distances.values()))
        assert a.sd_total == pytest.approx(math.sqrt(sum(s**2 for s in a.sds.values())))
        assert a.ratio == pytest.approx(pairs * a.dist_total / a.sd_total)
        assert a.normalized_ratio == pytest.approx(
            (a.dist_total / pairs) / (a.sd_total / math.sqrt(c)))
        # each distance is between the class means of the projected points
        d01 = np.linalg.norm(a.coords[labels == 0].mean(0) - a.coords[labels == 1].mean(0))
        assert a.distances["dist_c0_c1"] == pytest.approx(d01)
    three = analyze_logits(*_blobs(), ("L1", "L2", "L3"))
    assert list(three.row())[:4] == ["dist_l1_l2", "dist_l1_l3", "dist_l2_l3", "dist_total"]
    assert three.normalized_ratio == pytest.approx(three.ratio / (3 * math.sqrt(3)))


def test_the_cluster_spread_is_the_rms_distance_to_the_centroid_and_rotation_free():
    rng = np.random.default_rng(1)
    p = rng.normal(0, [3.0, 0.5], (500, 2))
    rms = np.sqrt(((p - p.mean(0)) ** 2).sum(1).sum() / (len(p) - 1))
    assert cluster_spread(p) == pytest.approx(rms)
    t = np.deg2rad(40)
    rot = p @ np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    assert cluster_spread(rot) == pytest.approx(cluster_spread(p))
    assert cluster_spread(rot, "pc1") != pytest.approx(cluster_spread(p, "pc1"), rel=0.05)
    assert math.isnan(cluster_spread(p[:1]))
    with pytest.raises(ValueError, match="unknown spread"):
        cluster_spread(p, "max")
    assert set(SPREADS) == {"total", "mean", "pc1"}


def test_the_ratio_ignores_the_logit_scale_and_shift_and_the_image_order():
    logits, labels = _blobs(seed=3)
    a = analyze_logits(logits, labels)
    b = analyze_logits(logits * 7.5 + 2.0, labels)  # softmax-invariant shift, a temperature
    perm = np.random.default_rng(0).permutation(len(labels))
    c = analyze_logits(logits[perm], labels[perm])
    for other in (b, c):
        assert other.ratio == pytest.approx(a.ratio)
        assert other.silhouette == pytest.approx(a.silhouette)
        assert other.davies_bouldin == pytest.approx(a.davies_bouldin)


def test_separated_clusters_score_better_than_mixed_ones():
    good = analyze_logits(*_blobs(scale=8, seed=4))
    weak = analyze_logits(*_blobs(scale=1.5, seed=4))
    assert good.ratio > 3 * weak.ratio
    assert good.silhouette > 0.6 > weak.silhouette
    assert good.davies_bouldin < 0.6 < weak.davies_bouldin


def test_real_classifier_logits_cluster_by_class_and_shuffled_labels_do_not():
    """A logistic regression trained on synthetic smears' nucleus size and colours."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from leukolib.data import load_dataset

    ds = load_dataset("synthetic", n_images=90, size=96, seed=0)
    feats = np.array([[s.nucleus.mean(), *s.image[s.nucleus].mean(0), *s.image[s.cytoplasm].mean(0)]
                      for s in ds])
    y = ds.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(feats[tr], y[tr])
    assert clf.score(feats[te], y[te]) > 0.6
    logits = clf.decision_function(feats[te])
    real = analyze_logits(logits, y[te], ds.class_names)
    shuffled = analyze_logits(logits, np.random.default_rng(0).permutation(y[te]),
                              ds.class_names)
    assert real.ratio > 3 * shuffled.ratio
    assert real.silhouette > shuffled.silhouette + 0.2


def test_a_class_missing_from_the_split_gives_nan_not_an_error():
    logits, labels = _blobs()
    keep = labels != 2
    a = analyze_logits(logits[keep], labels[keep], ("L1", "L2", "L3"))
    assert math.isnan(a.ratio) and math.isnan(a.distances["dist_l1_l3"])
    assert np.isfinite(a.distances["dist_l1_l2"])
    with pytest.raises(ValueError):
        analyze_logits(logits[:1], labels[:1])


def test_bootstrap_intervals_are_seeded_and_hold_the_estimate():
    logits, labels = _blobs(scale=3, seed=5)
    a = analyze_logits(logits, labels)
    ci = cluster_intervals(logits, labels, n_boot=300, seed=1)
    assert ci == cluster_intervals(logits, labels, n_boot=300, seed=1)
    assert ci != cluster_intervals(logits, labels, n_boot=300, seed=2)
    for key, value in (("ratio_dist_sd", a.ratio), ("silhouette", a.silhouette),
                       ("davies_bouldin", a.davies_bouldin)):
        lo, hi = ci[key]
        assert lo < value < hi, key


def test_paired_ratio_comparison_tells_a_better_model():
    good, labels = _blobs(scale=6, seed=6)
    weak, _ = _blobs(scale=2, seed=7)
    r = compare_ratios(good, weak, labels, n_boot=300, seed=0)
    assert r["diff"] == pytest.approx(r["ratio_a"] - r["ratio_b"])
    assert r["ci_low"] > 0
    same = compare_ratios(good, good, labels, n_boot=100)
    # the same model twice: every resample gives 0, a degenerate bootstrap, so no interval
    assert same["diff"] == 0 and np.isnan(same["ci_low"]) and np.isnan(same["ci_high"])


def test_stratified_bootstrap_keeps_every_class():
    strata = np.array([0] * 3 + [1] * 10)
    seen = []

    def stat(idx):
        seen.append(np.bincount(strata[idx], minlength=2))
        return [float(idx.mean()), float("nan")]

    ci = stratified_bootstrap_ci(stat, strata, n_boot=50, seed=0)
    assert ci.shape == (2, 2) and np.isfinite(ci[0]).all() and np.isnan(ci[1]).all()
    assert all((c == [3, 10]).all() for c in seen)


def test_table8_and_the_paper_beside_it():
    analyses = {k: analyze_logits(*_blobs(scale=s, seed=i), ("L1", "L2", "L3"), model=k)
                for i, (k, s) in enumerate([("segmented-mish-medium", 6), ("raw-relu-linear", 2)])}
    t = table8(analyses)
    assert list(t.index) == list(analyses) and t.index.name == "model"
    assert set(DISTS + SDS + ["dist_total", "sd_total", "ratio_dist_sd"]) <= set(t.columns)
    both = paper_table8(t)
    theirs = both[both["source"] != "leukolib"]
    assert len(theirs) == 4 and set(both["source"]) == {"leukolib", "paper (Table 8)"}
    row = theirs[theirs["model"] == "segmented-mish-medium"].iloc[0]
    assert row["ratio_dist_sd"] == 25.78
    assert row["normalized_ratio"] == pytest.approx(25.78 / (3 * math.sqrt(3)))
    assert np.isnan(row["silhouette"])  # the paper gives none: n/a, never a guess
    assert isinstance(both, pd.DataFrame)


def test_figure7_has_one_panel_per_model():
    import matplotlib

    matplotlib.use("Agg")
    analyses = {f"m{i}": analyze_logits(*_blobs(seed=i), ("L1", "L2", "L3")) for i in range(3)}
    fig = plot_clusters(analyses, ncols=2)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 3
    assert "Dist/SD" in shown[0].get_title() and shown[0].get_xlabel().startswith("PC1")


def test_projection_keeps_the_distances_of_two_class_logits():
    logits, labels = _blobs(n_classes=2, seed=8)
    coords, explained = project_logits(logits)
    assert explained.sum() == pytest.approx(1.0)
    d = np.linalg.norm(logits[0] - logits[1])
    assert np.linalg.norm(coords[0] - coords[1]) == pytest.approx(d)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_bootstrap_fast_path_agrees_with_scikit_learn(seed):
    from leukolib.explain.clusters import _scores

    logits, labels = _blobs(n_per_class=7, scale=2, seed=seed)
    idx = np.random.default_rng(seed).choice(len(labels), len(labels))  # repeats, as resamples
    a = analyze_logits(logits[idx], labels[idx])
    fast = _scores(logits[idx], labels[idx], 3, "total")
    assert fast == pytest.approx([a.ratio, a.silhouette, a.davies_bouldin], rel=1e-9)
