"""How the logits of the test images cluster by class: the paper's Dist/SD ratio, and beyond.

The paper (its Table 8 and Figure 7) ranks its classifiers by how well the
logits of the test images separate by class. Its procedure, as implemented
here: (1) the test logits of one model, one row per image, are projected on
their first two principal components (:class:`sklearn.decomposition.PCA`,
fit on that model's logits); (2) each class is a cluster of points with a
centroid; (3) ``dist_<a>_<b>`` is the distance between the centroids of
classes ``a`` and ``b``, ``dist_total`` their sum over pairs; (4) ``sd_<c>``
is the spread of class ``c``'s cluster, ``sd_total`` the root of the sum of
their squares; (5) ``ratio_dist_sd = P * dist_total / sd_total``, computed
before rounding.

What the paper leaves open, and what leukolib chose
---------------------------------------------------
*The arithmetic.* The text gives no formula; the printed Table 8 does:
``dist_total`` is the sum of its three distances, ``sd_total`` is
``sqrt(sd_l1^2 + sd_l2^2 + sd_l3^2)`` and the ratio is ``3 * dist_total /
sd_total`` (the text's "weighted ratio of 3-1"). :func:`dist_sd_ratio`
recomputes it from the printed components (the tests check the four rows).

*Any number of classes.* The 3 is read as the number of centroid pairs,
``P = C (C - 1) / 2`` (3 for the paper's three FAB classes, 1 for a
two-class set such as ALL-IDB2, 10 for five classes). The paper's ratio then
grows with the number of classes, so leukolib also reports a
``normalized_ratio``: the mean centroid distance over the root-mean-square
cluster spread, ``(dist_total / P) / (sd_total / sqrt(C))``, which does not
depend on ``C`` (for three classes it is the paper's ratio divided by
``3 sqrt(3)``). Within one test split either ratio ranks models.

*The spread of one cluster* (``spread="total"``, the default) is
``sqrt(var_PC1 + var_PC2)``: the root-mean-square distance of the cluster's
points from their centroid, with the sample variance (``ddof=1``, the
convention of every summary of this book). Three reasons: it is unchanged by
a rotation or reflection of the plane, as the centroid distances are, so the
ratio depends on the point cloud and not on the arbitrary orientation and
signs of the principal axes; it combines the two axes by the same rule as
the paper's ``sd_total`` combines the clusters (a root of summed squares),
so ``sd_total`` is the root of the summed variances of every cluster along
every axis; and it is in the units of the distances. ``spread="mean"``
(the mean of the two axes' SDs) and ``spread="pc1"`` (the first axis only)
are other readings of the paper, available to check that a ranking does not
hinge on the choice.

Beside the paper's ratio, two standard measures a reviewer asks for, from
scikit-learn on the same two-dimensional points: the silhouette score (in
[-1, 1], higher is better separated) and the Davies-Bouldin index (>= 0,
lower is better). :func:`cluster_intervals` gives stratified bootstrap
intervals of all three (the PCA refit on every resample) and
:func:`compare_ratios` a paired bootstrap of the ratio difference of two
models on the same images: with a test split of a few dozen images, the
paper's ranking needs them.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> labels = np.repeat([0, 1, 2], 20)
>>> logits = np.eye(3)[labels] * 6 + rng.normal(0, 1, (60, 3))
>>> a = analyze_logits(logits, labels, ("L1", "L2", "L3"))
>>> a.n_pairs, round(a.ratio, 1) > 10, a.row()["dist_total"] == sum(a.distances.values())
(3, True, True)
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "SPREADS",
    "ClusterAnalysis",
    "analyze_logits",
    "analyze_runs",
    "cluster_intervals",
    "cluster_spread",
    "compare_ratios",
    "dist_sd_ratio",
    "paper_table8",
    "plot_clusters",
    "project_logits",
    "run_test_logits",
    "separation_scores",
    "table8",
]

#: How the spread of one cluster combines its two principal axes (see the module notes).
SPREADS: tuple[str, ...] = ("total", "mean", "pc1")


def _key(name: str) -> str:
    """Column suffix of a class: ``"L1"`` -> ``"l1"``, ``"Blast cell"`` -> ``"blast_cell"``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_") or "class"


def project_logits(logits: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The logits on their first principal components (PCA fit on these logits).

    Parameters
    ----------
    logits : array_like, shape (N, C)
    n_components : int

    Returns
    -------
    coords : ndarray, shape (N, n_components)
    explained : ndarray, shape (n_components,)
        Share of the logits' variance along each component.

    Raises
    ------
    ValueError
        With fewer than two images, or fewer logits than components.
    """
    from sklearn.decomposition import PCA

    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < n_components:
        raise ValueError(f"logits of shape {x.shape}: need (N >= 2, C >= {n_components})")
    pca = PCA(n_components=n_components, svd_solver="full").fit(x)
    return pca.transform(x), pca.explained_variance_ratio_


def cluster_spread(points: np.ndarray, spread: str = "total") -> float:
    """The spread of one cluster of 2-D points (NaN with fewer than two points).

    Examples
    --------
    >>> p = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    >>> round(cluster_spread(p), 4), round(cluster_spread(p, "mean"), 4)
    (1.633, 1.1547)
    """
    p = np.asarray(points, dtype=np.float64)
    if spread not in SPREADS:
        raise ValueError(f"unknown spread {spread!r}; choose one of {', '.join(SPREADS)}")
    if p.shape[0] < 2:
        return float("nan")
    var = p.var(axis=0, ddof=1)
    if spread == "total":
        return float(np.sqrt(var.sum()))
    if spread == "mean":
        return float(np.sqrt(var).mean())
    return float(np.sqrt(var[0]))


def dist_sd_ratio(distances: Sequence[float], sds: Sequence[float]) -> tuple[float, float, float]:
    """The paper's ``dist_total``, ``sd_total`` and ratio from the pairwise distances and SDs.

    ``dist_total = sum(distances)``, ``sd_total = sqrt(sum(sd ** 2))`` and
    ``ratio = P * dist_total / sd_total`` with ``P = len(distances)`` pairs.

    Examples
    --------
    The first row of the paper's Table 8 (printed: 25.65, 2.99, 25.78):

    >>> d, s, r = dist_sd_ratio([10.12, 8.22, 7.31], [2.05, 0.68, 2.06])
    >>> round(d, 2), round(s, 2), round(r, 2)
    (25.65, 2.98, 25.78)
    """
    dist = float(np.sum(distances))
    sd = float(np.sqrt(np.sum(np.square(sds))))
    ratio = len(distances) * dist / sd if sd > 0 else float("nan")
    return dist, sd, ratio


def separation_scores(coords: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Silhouette score and Davies-Bouldin index (scikit-learn); NaN where undefined."""
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    y = np.asarray(labels)
    k = np.unique(y).size
    if not 2 <= k <= len(y) - 1:
        return {"silhouette": float("nan"), "davies_bouldin": float("nan")}
    return {"silhouette": float(silhouette_score(coords, y)),
            "davies_bouldin": float(davies_bouldin_score(coords, y))}


@dataclass(frozen=True)
class ClusterAnalysis:
    """The cluster analysis of one model's logits.

    Attributes
    ----------
    model : str
    class_names : tuple of str
    labels : ndarray (N,)
        True class of every image.
    coords : ndarray (N, 2)
        The logits on their first two principal components.
    explained : ndarray (2,)
        Variance share of each component.
    centroids : ndarray (C, 2)
        NaN for a class absent from the split.
    distances : dict
        ``"dist_<a>_<b>"`` -> centroid distance, for every pair of classes.
    sds : dict
        ``"sd_<c>"`` -> spread of the cluster of class ``c``.
    dist_total, sd_total, ratio, normalized_ratio : float
    silhouette, davies_bouldin : float
    spread : str
        How one cluster's spread was measured (:data:`SPREADS`).
    """

    model: str
    class_names: tuple[str, ...]
    labels: np.ndarray
    coords: np.ndarray
    explained: np.ndarray
    centroids: np.ndarray
    distances: dict[str, float]
    sds: dict[str, float]
    dist_total: float
    sd_total: float
    ratio: float
    normalized_ratio: float
    silhouette: float
    davies_bouldin: float
    spread: str = "total"

    @property
    def n_pairs(self) -> int:
        """Number of centroid pairs, ``C (C - 1) / 2``."""
        return len(self.distances)

    def row(self) -> dict[str, float]:
        """The Table 8 columns (distances, total, SDs, total, ratio) and the extra measures."""
        return {**self.distances, "dist_total": self.dist_total, **self.sds,
                "sd_total": self.sd_total, "ratio_dist_sd": self.ratio,
                "normalized_ratio": self.normalized_ratio, "silhouette": self.silhouette,
                "davies_bouldin": self.davies_bouldin, "n_images": int(len(self.labels))}


def _stats(coords: np.ndarray, y: np.ndarray, n_classes: int, spread: str):
    centroids = np.full((n_classes, coords.shape[1]), np.nan)
    sds = np.full(n_classes, np.nan)
    for c in range(n_classes):
        members = coords[y == c]
        if len(members):
            centroids[c] = members.mean(axis=0)
        sds[c] = cluster_spread(members, spread)
    pairs = list(itertools.combinations(range(n_classes), 2))
    dists = [float(np.linalg.norm(centroids[a] - centroids[b])) for a, b in pairs]
    return centroids, pairs, dists, sds


def analyze_logits(
    logits: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str] | None = None,
    spread: str = "total",
    model: str = "",
) -> ClusterAnalysis:
    """The paper's cluster analysis of one model's test logits, and the standard measures.

    Parameters
    ----------
    logits : array_like, shape (N, C)
    labels : array_like of int, shape (N,)
        True classes.
    class_names : sequence of str, optional
        Default: ``"0"``, ``"1"`` ... (one per logit).
    spread : str
        One of :data:`SPREADS` (see the module notes).
    model : str
        Name kept with the result.

    Returns
    -------
    ClusterAnalysis
        A class absent from ``labels`` gives NaN distances and a NaN ratio
        (a test split too small to hold every class).
    """
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if x.ndim != 2 or len(y) != len(x):
        raise ValueError(f"logits {x.shape} and labels {y.shape} do not align")
    names = tuple(class_names) if class_names is not None else tuple(map(str, range(x.shape[1])))
    if len(names) < 2:
        raise ValueError(f"need at least two classes, got {names}")
    coords, explained = project_logits(x)
    centroids, pairs, dists, sds = _stats(coords, y, len(names), spread)
    keys = [_key(n) for n in names]
    dist_total, sd_total, ratio = dist_sd_ratio(dists, sds)
    normalized = (dist_total / len(pairs)) / (sd_total / math.sqrt(len(names)))
    return ClusterAnalysis(
        model=model, class_names=names, labels=y, coords=coords, explained=explained,
        centroids=centroids,
        distances={f"dist_{keys[a]}_{keys[b]}": d for (a, b), d in zip(pairs, dists, strict=True)},
        sds={f"sd_{k}": float(s) for k, s in zip(keys, sds, strict=True)},
        dist_total=dist_total, sd_total=sd_total, ratio=ratio,
        normalized_ratio=float(normalized) if np.isfinite(normalized) else float("nan"),
        spread=spread, **separation_scores(coords, y))


def _scores(x: np.ndarray, y: np.ndarray, n_classes: int, spread: str) -> list[float]:
    """Ratio, silhouette and Davies-Bouldin in plain NumPy: the bootstrap's thousands of resamples.

    The same definitions as :func:`analyze_logits` (scikit-learn's PCA and
    scores, whose input checks cost more than the arithmetic at this size;
    the tests check that both agree).
    """
    xc = x - x.mean(axis=0)
    coords = xc @ np.linalg.svd(xc, full_matrices=False)[2][:2].T
    centroids, _, dists, sds = _stats(coords, y, n_classes, spread)
    ratio = dist_sd_ratio(dists, sds)[2]
    present = [c for c in range(n_classes) if np.any(y == c)]
    if not 2 <= len(present) <= len(y) - 1:
        return [ratio, float("nan"), float("nan")]
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    member = np.stack([y == c for c in present])  # (K, N)
    sizes = member.sum(axis=1)
    mean_to = (d @ member.T) / sizes  # (N, K): mean distance to each cluster
    own = np.searchsorted(present, y)
    n_own = sizes[own]
    a = np.where(n_own > 1, mean_to[np.arange(len(y)), own] * n_own / np.maximum(n_own - 1, 1),
                 0.0)
    mean_to[np.arange(len(y)), own] = np.inf
    b = mean_to.min(axis=1)
    sil = np.where(n_own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    cen = centroids[present]
    scatter = np.array([np.linalg.norm(coords[m] - c, axis=1).mean()
                        for m, c in zip(member, cen, strict=True)])
    between = np.linalg.norm(cen[:, None] - cen[None], axis=-1)
    if np.allclose(scatter, 0) or np.allclose(between, 0):
        return [ratio, float(sil.mean()), 0.0]
    between[between == 0] = np.inf
    r = (scatter[:, None] + scatter[None]) / between
    return [ratio, float(sil.mean()), float(r.max(axis=1).mean())]


def _resampled(x: np.ndarray, y: np.ndarray, n_classes: int, spread: str,
               idx: np.ndarray) -> list[float]:
    return _scores(x[idx], y[idx], n_classes, spread)


def cluster_intervals(
    logits: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str] | None = None,
    spread: str = "total",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Bootstrap intervals of the ratio, the silhouette and the Davies-Bouldin index.

    Images are resampled with replacement within each class
    (:func:`leukolib.stats.stratified_bootstrap_ci`) and the whole analysis,
    PCA included, is redone on every resample.

    Returns
    -------
    dict
        ``{"ratio_dist_sd": (lo, hi), "silhouette": ..., "davies_bouldin": ...}``.
    """
    from leukolib.stats import stratified_bootstrap_ci

    x, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    k = len(class_names) if class_names is not None else x.shape[1]
    out = stratified_bootstrap_ci(lambda i: _resampled(x, y, k, spread, i), y, n_boot, ci, seed)
    return {k: (float(lo), float(hi))
            for k, (lo, hi) in zip(("ratio_dist_sd", "silhouette", "davies_bouldin"), out,
                                   strict=True)}


def compare_ratios(
    logits_a: np.ndarray,
    logits_b: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    spread: str = "total",
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """Paired bootstrap of the ratio difference of two models on the same test images.

    Returns
    -------
    dict
        ``ratio_a, ratio_b, diff`` (a - b) and the interval ``ci_low, ci_high``
        of the difference (the same resampled images for both models); the
        ranking of the two is supported when the interval excludes 0.
    """
    from leukolib.stats import stratified_bootstrap_ci

    a, b = np.asarray(logits_a, float), np.asarray(logits_b, float)
    y = np.asarray(labels, dtype=np.int64)
    k = a.shape[1]

    def diff(i: np.ndarray) -> float:
        return _resampled(a, y, k, spread, i)[0] - _resampled(b, y, k, spread, i)[0]

    ra, rb = analyze_logits(a, y, spread=spread).ratio, analyze_logits(b, y, spread=spread).ratio
    lo, hi = stratified_bootstrap_ci(diff, y, n_boot, ci, seed)[0]
    return {"ratio_a": ra, "ratio_b": rb, "diff": ra - rb, "ci_low": float(lo),
            "ci_high": float(hi)}


def table8(analyses: Mapping[str, ClusterAnalysis]) -> pd.DataFrame:
    """Our Table 8: one row per model (index ``model``), the paper's columns first."""
    frame = pd.DataFrame({k: a.row() for k, a in analyses.items()}).T
    frame.index.name = "model"
    return frame.astype({"n_images": int})


def paper_table8(ours: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Our Table 8 and the paper's (:func:`leukolib.paper.reported`) in one table.

    Parameters
    ----------
    ours : DataFrame
        :func:`table8`.
    columns : sequence of str, optional
        Default: ``dist_total, sd_total, ratio_dist_sd``, the columns every
        dataset shares with the paper's three FAB classes, then ours.
    """
    from leukolib import paper
    from leukolib.tables import beside_paper

    cols = list(columns or ["dist_total", "sd_total", "ratio_dist_sd", "normalized_ratio",
                            "silhouette", "davies_bouldin"])
    theirs = paper.reported(table="8")
    out = beside_paper(ours, theirs, cols, label="model")
    # the paper's normalized ratio follows from its ratio (three classes, three pairs)
    is_paper = out["source"] != "leukolib"
    if "normalized_ratio" in cols:
        out.loc[is_paper, "normalized_ratio"] = out.loc[is_paper, "ratio_dist_sd"] / (
            3 * math.sqrt(3))
    return out


def run_test_logits(run: Any, folds: str | int = "best") -> tuple[np.ndarray, np.ndarray]:
    """The test-split logits a classifier run saved, and their labels (nothing is recomputed).

    Parameters
    ----------
    run : ClassifierRun
        A run of :mod:`leukolib.classification` (``saved_logits()``,
        ``best_fold``).
    folds : ``"best"``, ``"mean"`` or int
        The best fold's model (selected on its validation score, the model the
        paper evaluates on its test split), the average of every fold's
        logits, or one fold.
    """
    saved = run.saved_logits()
    stack = np.asarray(saved["test_logits"], dtype=np.float64)  # (F, N, C)
    if folds == "mean":
        logits = stack.mean(axis=0)
    else:
        logits = stack[int(run.best_fold) if folds == "best" else int(folds)]
    return logits, np.asarray(saved["test_labels"], dtype=np.int64)


def analyze_runs(
    runs: Mapping[str, Any], folds: str | int = "best", spread: str = "total"
) -> dict[str, ClusterAnalysis]:
    """:func:`analyze_logits` of the saved test logits of every run (name -> run)."""
    out = {}
    for name, run in runs.items():
        logits, labels = run_test_logits(run, folds)
        out[name] = analyze_logits(logits, labels, run.class_names, spread, model=name)
    return out


def plot_clusters(
    analyses: Mapping[str, ClusterAnalysis], ncols: int = 2, size: float = 3.2
) -> Figure:
    """The paper's Figure 7: each model's test logits on their first two principal components.

    One panel per model, points coloured by true class, each centroid a
    black-edged cross and a circle of radius the cluster's spread around it;
    the title gives the Dist/SD ratio and the silhouette score.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Circle

    items = list(analyses.items())
    ncols = max(1, min(ncols, len(items)))
    nrows = math.ceil(len(items) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel()[len(items):]:
        ax.set_visible(False)
    for ax, (name, a) in zip(axes.ravel(), items, strict=False):
        names = np.asarray(a.class_names)[a.labels]
        palette = dict(zip(a.class_names, sns.color_palette("colorblind", len(a.class_names)),
                           strict=True))
        first = ax is axes.flat[0]
        sns.scatterplot(x=a.coords[:, 0], y=a.coords[:, 1], hue=names, hue_order=a.class_names,
                        palette=palette, s=22, alpha=0.75, ax=ax, legend="auto" if first else False)
        for c, (cname, sd) in enumerate(zip(a.class_names, a.sds.values(), strict=True)):
            if np.all(np.isfinite(a.centroids[c])):
                ax.plot(*a.centroids[c], marker="X", ms=10, color=palette[cname], mec="black")
                if np.isfinite(sd):
                    ax.add_patch(Circle(a.centroids[c], sd, fill=False, ls="--", lw=1,
                                        color=palette[cname]))
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"{name}\nDist/SD {a.ratio:.2f}, silhouette {a.silhouette:.2f}", fontsize=9)
        ax.set_xlabel(f"PC1 ({a.explained[0]:.0%})", fontsize=8)
        ax.set_ylabel(f"PC2 ({a.explained[1]:.0%})", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig
