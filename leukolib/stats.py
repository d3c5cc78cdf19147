"""Statistics shared by every stage: intervals, paired tests, McNemar's test, Holm.

A results table of this book compares methods on the *same* images, so the
tests here are paired:

* :func:`proportion_ci`: the exact (Clopper-Pearson) interval of a proportion
  (an accuracy, a recall, the pointing game's hit rate) from its counts, and
  :func:`outcomes_ci` from per-image 0/1 outcomes; never of zero width;
* :func:`bootstrap_ci`: a bootstrap confidence interval of a mean
  (:func:`scipy.stats.bootstrap`, BCa, seeded), for per-image scores or
  paired per-image differences; :func:`cluster_bootstrap_ci` resamples whole
  images where the rows repeat them (several models on the same images). A
  bootstrap whose resamples all give the same value (every value equal) has
  no interval: both return NaN bounds (:func:`is_degenerate`), never
  ``(v, v)``;
* :func:`wilcoxon_p`: the Wilcoxon signed-rank test of paired differences;
* :func:`paired_comparison`: both, plus wins, losses, ties and a verdict
  (:func:`paired_verdict`);
* :func:`mcnemar`: McNemar's test of two classifiers on the same test images
  (exact binomial for fewer than 25 discordant images, else the
  continuity-corrected chi-square), and :func:`mcnemar_verdict`;
* :func:`holm`: Holm's step-down adjustment of p-values, for a family of
  tests (the rows of one table); :func:`holm_paired` adjusts a table of
  paired comparisons and decides its verdicts on the adjusted p-values, and
  :func:`holm_note` says so in words;
* :func:`stratified_bootstrap_ci`: percentile intervals of any statistic of a
  whole sample (a cluster score, a ratio), resampling units within strata
  (classes) so that every resample keeps every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALPHA",
    "bootstrap_ci",
    "cluster_bootstrap_ci",
    "evenly_spaced",
    "holm",
    "holm_note",
    "holm_paired",
    "is_degenerate",
    "mcnemar",
    "mcnemar_verdict",
    "outcomes_ci",
    "paired_comparison",
    "paired_verdict",
    "proportion_ci",
    "stratified_bootstrap_ci",
    "wilcoxon_p",
]

#: Significance level of every verdict (on Holm-adjusted p-values within a table).
ALPHA = 0.05


def proportion_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) confidence interval of a proportion ``k / n``.

    The interval of an accuracy, a per-class recall or the pointing game's
    hit rate: ``k`` successes among ``n`` independent trials (images). It
    is computed by :meth:`scipy.stats.binomtest`'s ``proportion_ci`` with
    ``method="exact"``, covers at least ``confidence`` for every true
    proportion, and is never of zero width: a perfect score of 26 images
    reaches down to 0.868.

    Parameters
    ----------
    k : int
        Successes, ``0 <= k <= n``.
    n : int
        Trials.
    confidence : float
        Coverage.

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(nan, nan)`` when ``n == 0``.

    Examples
    --------
    >>> [round(x, 3) for x in proportion_ci(26, 26)]
    [0.868, 1.0]
    >>> [round(x, 3) for x in proportion_ci(22, 26)]
    [0.651, 0.956]
    """
    from scipy.stats import binomtest

    if int(n) == 0:
        return float("nan"), float("nan")
    r = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="exact")
    return float(r.low), float(r.high)


def outcomes_ci(outcomes: Sequence[float] | np.ndarray,
                confidence: float = 0.95) -> tuple[float, float]:
    """:func:`proportion_ci` of per-unit 0/1 outcomes (right or wrong, hit or miss); NaN dropped.

    Raises
    ------
    ValueError
        For a value other than 0, 1 (or NaN): a mean of such values is no
        proportion (use :func:`bootstrap_ci`).

    Examples
    --------
    >>> [round(x, 3) for x in outcomes_ci([1, 1, 0, 1, float("nan")])]
    [0.194, 0.994]
    """
    v = np.asarray(outcomes, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not np.isin(v, (0.0, 1.0)).all():
        raise ValueError("outcomes must be 0 or 1 (NaN for none)")
    return proportion_ci(int(v.sum()), int(v.size), confidence)


def is_degenerate(values: Sequence[float] | np.ndarray) -> bool:
    """Whether a bootstrap of these values has no interval: fewer than two finite values, all equal.

    Every resample of such values gives the same mean, so the bootstrap
    says nothing about its uncertainty; :func:`bootstrap_ci` then returns
    NaN bounds instead of an interval of zero width.

    Examples
    --------
    >>> is_degenerate([0.5, 0.5, float("nan")]), is_degenerate([0.5, 0.6])
    (True, False)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return bool(v.size < 2 or np.ptp(v) == 0)


def _finite_interval(lo: float, hi: float) -> tuple[float, float]:
    """``(lo, hi)`` when it is a finite interval of positive width, else NaN bounds."""
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        return float(lo), float(hi)
    return float("nan"), float("nan")


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    statistic: Any = np.mean,
) -> tuple[float, float]:
    """Bootstrap confidence interval of a statistic (the mean by default), seeded.

    BCa (bias-corrected and accelerated) intervals from
    :func:`scipy.stats.bootstrap`; where BCa is undefined (e.g. a few distinct
    values) the percentile interval is used instead. For a proportion (0/1
    outcomes) use the exact :func:`proportion_ci`; where rows repeat a unit
    (an image scored by several models), :func:`cluster_bootstrap_ci`.

    Parameters
    ----------
    values : array_like
        Per-unit values (per image, or paired per-image differences); NaN
        values are dropped.
    n_boot : int
        Bootstrap resamples.
    ci : float
        Coverage.
    seed : int
        The same seed gives the same interval.
    statistic : callable
        ``statistic(x, axis=-1)``, vectorised (default :func:`numpy.mean`).

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(nan, nan)`` without values and for a degenerate
        bootstrap (:func:`is_degenerate`: every value equal, or one value;
        also when the resamples give an interval of zero width): no interval
        is better than one of zero width.

    Examples
    --------
    >>> lo, hi = bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5], seed=0)
    >>> bool(lo < 0.3 < hi), bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5], seed=0) == (lo, hi)
    (True, True)
    >>> bootstrap_ci([0.5, 0.5, 0.5])  # degenerate: flagged, not (0.5, 0.5)
    (nan, nan)
    """
    import warnings

    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if is_degenerate(v):
        return float("nan"), float("nan")
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's "degenerate" warning: we fall back
            res = bootstrap((v,), statistic, n_resamples=int(n_boot), confidence_level=ci,
                            method=method, rng=np.random.default_rng(seed), vectorized=True)
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return _finite_interval(lo, hi)
    return float("nan"), float("nan")


def _pooled_mean(sums: np.ndarray, counts: np.ndarray, axis: int = -1) -> np.ndarray:
    """The mean of every row of the resampled clusters: their sums over their counts."""
    return np.sum(sums, axis=axis) / np.sum(counts, axis=axis)


def cluster_bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[Any] | np.ndarray,
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of the mean of rows that repeat units, resampling whole units.

    Where one image contributes several rows (its score under each of
    several models), the rows are not independent: resampling rows would
    count the image as several and give too narrow an interval. Here the
    resampling unit is the cluster (the image): each resample draws clusters
    with replacement, with all their rows, and the statistic is the mean of
    those rows (their sum over their number), by :func:`scipy.stats.bootstrap`
    (BCa, else percentile) on the clusters' sums and counts, paired. With one
    row per cluster it is :func:`bootstrap_ci` of the mean.

    Parameters
    ----------
    values : array_like
        One value per row; rows with NaN are dropped.
    clusters : array_like
        The cluster (image id) of every row.
    n_boot, ci, seed :
        As :func:`bootstrap_ci`.

    Returns
    -------
    (float, float)
        ``(low, high)``; NaN bounds without values, with fewer than two
        clusters, or when every value is equal (degenerate).

    Examples
    --------
    >>> v = [0.2, 0.3, 0.4, 0.5, 0.6, 0.3, 0.35, 0.5, 0.55, 0.7]
    >>> ids = ["a", "b", "c", "d", "e"] * 2          # two models, the same five images
    >>> lo, hi = cluster_bootstrap_ci(v, ids, seed=0)
    >>> bool(lo < np.mean(v) < hi), cluster_bootstrap_ci(v, ids, seed=0) == (lo, hi)
    (True, True)
    """
    import warnings

    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(clusters)
    if v.shape != c.shape:
        raise ValueError(f"one cluster per value: {v.shape} vs {c.shape}")
    keep = np.isfinite(v)
    v, c = v[keep], c[keep]
    _, inverse = np.unique(c, return_inverse=True)
    if inverse.size and np.bincount(inverse).max() == 1:
        return bootstrap_ci(v, n_boot=n_boot, ci=ci, seed=seed)
    if is_degenerate(v) or np.unique(inverse).size < 2:
        return float("nan"), float("nan")
    sums = np.bincount(inverse, weights=v)
    counts = np.bincount(inverse).astype(np.float64)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's "degenerate" warning: we fall back
            res = bootstrap((sums, counts), _pooled_mean, n_resamples=int(n_boot),
                            confidence_level=ci, method=method, paired=True, vectorized=True,
                            rng=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return _finite_interval(lo, hi)
    return float("nan"), float("nan")


def wilcoxon_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences.

    Zero differences are dropped (``zero_method="wilcox"``); when every
    difference is zero (or there is none) the p-value is 1.

    Examples
    --------
    >>> wilcoxon_p([0, 0, 0]), 0 < wilcoxon_p([0.1, 0.2, -0.05, 0.3]) <= 1
    (1.0, True)
    """
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def paired_verdict(
    mean_diff: float,
    low: float,
    high: float,
    p: float,
    names: tuple[str, str] = ("a", "b"),
    alpha: float = ALPHA,
    degenerate: bool = False,
) -> str:
    """The verdict of a paired comparison: a winner only when the interval and the test agree.

    ``names[0]`` is better when the interval of the difference ``a - b``
    lies above 0 **and** ``p < alpha`` (``names[1]`` when below). A
    degenerate interval (every difference equal: NaN bounds) stands for the
    difference itself.

    Examples
    --------
    >>> paired_verdict(0.1, 0.02, 0.2, 0.01, ("AND", "HM"))
    'AND better'
    >>> paired_verdict(0.1, 0.02, 0.2, 0.06, ("AND", "HM"))
    'no significant difference'
    >>> paired_verdict(-1.0, float("nan"), float("nan"), 0.002, ("A", "B"), degenerate=True)
    'B better'
    """
    if degenerate:
        low = high = mean_diff
    if low > 0 and p < alpha:
        return f"{names[0]} better"
    if high < 0 and p < alpha:
        return f"{names[1]} better"
    return "no significant difference"


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    names: tuple[str, str] = ("a", "b"),
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    alpha: float = ALPHA,
    clusters: Sequence[Any] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Compare two methods scored on the same units (images), unit by unit.

    Parameters
    ----------
    a, b : array_like
        The scores of each method, aligned (``a[i]`` and ``b[i]`` on the same
        image); pairs with a NaN are dropped.
    names : (str, str)
        Used in the verdict.
    n_boot, ci, seed :
        Of :func:`bootstrap_ci` on the differences ``a - b``.
    alpha : float
        Significance level of the verdict (of this one test: a table of
        several adjusts them together, :func:`holm_paired`).
    clusters : array_like, optional
        The image of every pair, where pairs repeat images (several models
        pooled): the interval resamples images (:func:`cluster_bootstrap_ci`)
        and the Wilcoxon test, the wins, losses and ties take each image's
        mean difference, so that an image counts once.

    Returns
    -------
    dict
        ``n`` (units: images), ``mean_a, mean_b, mean_diff, ci_low, ci_high,
        wilcoxon_p, wins, losses, ties, degenerate, verdict``. The verdict
        (:func:`paired_verdict`) names a winner only when the interval
        excludes 0 **and** ``p < alpha``; ``degenerate``: every difference
        is equal, so the interval is NaN (no interval) and stands for the
        difference itself.

    Examples
    --------
    >>> r = paired_comparison([0.9, 0.8, 0.95, 0.85], [0.8, 0.7, 0.9, 0.8], names=("AND", "HM"))
    >>> r["wins"], r["losses"], round(r["mean_diff"], 3)
    (4, 0, 0.075)
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired scores must align: {x.shape} vs {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    d = x - y
    if clusters is None:
        lo, hi = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed)
        per_unit = d
    else:
        units = np.asarray(clusters)[keep]
        lo, hi = cluster_bootstrap_ci(d, units, n_boot=n_boot, ci=ci, seed=seed)
        _, inverse = np.unique(units, return_inverse=True)
        per_unit = np.bincount(inverse, weights=d) / np.bincount(inverse) if d.size else d
    p = wilcoxon_p(per_unit)
    mean_diff = float(d.mean()) if d.size else float("nan")
    degenerate = bool(d.size > 0 and is_degenerate(d))
    return {
        "n": int(per_unit.size),
        "mean_a": float(x.mean()) if d.size else float("nan"),
        "mean_b": float(y.mean()) if d.size else float("nan"),
        "mean_diff": mean_diff,
        "ci_low": lo,
        "ci_high": hi,
        "wilcoxon_p": p,
        "wins": int((per_unit > 0).sum()),
        "losses": int((per_unit < 0).sum()),
        "ties": int((per_unit == 0).sum()),
        "degenerate": degenerate,
        "verdict": paired_verdict(mean_diff, lo, hi, p, names, alpha, degenerate),
    }


def mcnemar(
    y_true: Sequence[int] | np.ndarray,
    pred_a: Sequence[int] | np.ndarray,
    pred_b: Sequence[int] | np.ndarray,
) -> dict[str, Any]:
    """McNemar's test of two classifiers' errors on the same test images.

    Only the discordant images count: ``b`` where A is right and B wrong,
    ``c`` where A is wrong and B right. With ``b + c < 25`` the exact
    two-sided binomial test of ``b`` against ``Binomial(b + c, 1/2)``; else
    the chi-square statistic with continuity correction
    ``(|b - c| - 1)^2 / (b + c)`` on one degree of freedom.

    Returns
    -------
    dict
        ``n, a_right_b_wrong (b), a_wrong_b_right (c), statistic, p, test``;
        ``p = 1`` when the two never disagree.

    Examples
    --------
    >>> r = mcnemar([0, 1, 1, 0, 1, 1], [0, 1, 1, 0, 1, 1], [1, 0, 1, 0, 0, 1])
    >>> r["a_right_b_wrong"], r["a_wrong_b_right"], r["test"], round(r["p"], 3)
    (3, 0, 'exact binomial', 0.25)
    """
    from scipy.stats import binomtest, chi2

    t = np.asarray(y_true)
    ra = np.asarray(pred_a) == t
    rb = np.asarray(pred_b) == t
    b = int(np.sum(ra & ~rb))
    c = int(np.sum(~ra & rb))
    n = b + c
    if n == 0:
        stat, p, test = 0.0, 1.0, "no discordant images"
    elif n < 25:
        stat, test = float(b), "exact binomial"
        p = float(binomtest(b, n, 0.5, alternative="two-sided").pvalue)
    else:
        stat, test = (abs(b - c) - 1) ** 2 / n, "chi-square, continuity-corrected"
        p = float(chi2.sf(stat, df=1))
    return {"n": int(t.size), "a_right_b_wrong": b, "a_wrong_b_right": c,
            "statistic": float(stat), "p": min(1.0, p), "test": test}


def mcnemar_verdict(a_only: int, b_only: int, p: float, names: tuple[str, str] = ("a", "b"),
                    alpha: float = ALPHA) -> str:
    """The verdict of McNemar's test: the model right alone more often, when ``p < alpha``.

    Examples
    --------
    >>> mcnemar_verdict(0, 9, 0.004, ("segmented", "raw"))
    'raw better'
    >>> mcnemar_verdict(0, 4, 0.125, ("segmented", "raw"))
    'no significant difference'
    """
    if p < alpha and a_only != b_only:
        return f"{names[0] if a_only > b_only else names[1]} better"
    return "no significant difference"


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's (1979) step-down adjusted p-values: family-wise error control, no independence needed.

    NaN p-values stay NaN and do not count in the family.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    order = np.argsort(q, kind="stable")
    # the k-th smallest of m is multiplied by m - k; adjusted values never decrease
    adjusted = np.minimum(np.maximum.accumulate((q.size - np.arange(q.size)) * q[order]), 1.0)
    ranked = np.empty(q.size)
    ranked[order] = adjusted
    out[ok] = ranked
    return out


def holm_note(m: int, what: str = "p-values") -> str:
    """The sentence a table of verdicts carries: which correction, over how many tests.

    Examples
    --------
    >>> holm_note(8)
    'p-values Holm-adjusted over the 8 tests of this table; the verdicts use the adjusted p'
    """
    return (f"{what} Holm-adjusted over the {m} test{'s' if m != 1 else ''} of this table; "
            "the verdicts use the adjusted p")


def holm_paired(
    table: pd.DataFrame,
    names: tuple[str, str] | Sequence[tuple[str, str]],
    p: str = "wilcoxon_p",
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """A table of paired comparisons with Holm-adjusted p-values and the verdicts decided on them.

    Every row is one test of the table's family (its rows): ``<p>_holm``
    holds the adjusted p-values (:func:`holm`), ``verdict`` is decided anew
    (:func:`paired_verdict`) on them and on each row's interval, and
    ``attrs["note"]`` says so (:func:`holm_note`; :func:`leukolib.tables.styled`
    adds it to the caption). The raw p-values stay.

    Parameters
    ----------
    table : DataFrame
        Rows with the fields of :func:`paired_comparison` (``mean_diff,
        ci_low, ci_high`` and ``p``; ``degenerate`` where known).
    names : (str, str) or sequence of them
        The two sides' names, for every row or one pair per row.
    p : str
        The column of raw p-values.
    alpha : float

    Returns
    -------
    DataFrame
        A copy with ``<p>_holm`` after ``p`` and the new ``verdict``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"mean_diff": [0.1, 0.1], "ci_low": [0.02, 0.01],
    ...                   "ci_high": [0.2, 0.2], "wilcoxon_p": [0.01, 0.04]})
    >>> h = holm_paired(t, ("A", "B"))
    >>> h["wilcoxon_p_holm"].round(2).tolist(), h["verdict"].tolist()
    ([0.02, 0.04], ['A better', 'A better'])
    """
    out = table.copy()
    raw = out[p].astype(float).to_numpy() if len(out) else np.zeros(0)
    adjusted = holm(raw)
    pairs = [names] * len(out) if isinstance(names, tuple) else list(names)
    # a row without the flag (an older table, NaN where concatenated) was not degenerate
    degenerate = [isinstance(g, bool | np.bool_) and bool(g)
                  for g in (out["degenerate"] if "degenerate" in out else [False] * len(out))]
    out.insert(list(out.columns).index(p) + 1, f"{p}_holm", adjusted)
    out["verdict"] = [paired_verdict(float(d), float(lo), float(hi), float(q), nm, alpha,
                                     bool(g))
                      for d, lo, hi, q, nm, g in zip(out["mean_diff"], out["ci_low"],
                                                     out["ci_high"], adjusted, pairs, degenerate,
                                                     strict=True)]
    out.attrs["note"] = holm_note(int(np.isfinite(raw).sum()))
    return out


def stratified_bootstrap_ci(
    statistic: Any,
    strata: Sequence[Any] | np.ndarray,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
) -> np.ndarray:
    """Percentile bootstrap intervals of statistics of a whole sample, resampled within strata.

    For statistics that are not means of per-unit values (a silhouette score,
    a ratio of cluster distances), :func:`bootstrap_ci` does not apply: here
    every resample draws, within each stratum (class), as many units as the
    stratum has, with replacement, and ``statistic`` is recomputed on them.
    Resampling within classes keeps every class in every resample, with its
    size, as in the test split.

    Parameters
    ----------
    statistic : callable
        ``statistic(indices) -> float or sequence of float``: the statistics
        of the units ``indices`` (an int array, repeats allowed). A NaN
        result is dropped.
    strata : array_like
        The stratum (class) of every unit; its length is the number of units.
    n_boot : int
        Resamples.
    ci : float
        Coverage.
    seed : int
        The same seed gives the same intervals.

    Returns
    -------
    ndarray, shape (k, 2)
        ``(low, high)`` of each of the ``k`` statistics; NaN where fewer than
        half of the resamples gave a finite value, and where every resample
        gave the same value (degenerate: no interval rather than one of zero
        width).

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    >>> lo, hi = stratified_bootstrap_ci(lambda i: x[i].mean(), [0, 0, 0, 1, 1, 1], 500)[0]
    >>> bool(lo < x.mean() < hi)
    True
    """
    groups = [np.flatnonzero(np.asarray(strata) == s) for s in dict.fromkeys(np.asarray(strata))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(n_boot)):
        idx = np.concatenate([rng.choice(g, size=g.size, replace=True) for g in groups])
        values.append(np.atleast_1d(np.asarray(statistic(idx), dtype=np.float64)))
    v = np.vstack(values) if values else np.empty((0, 1))
    alpha = (1 - ci) / 2
    out = np.full((v.shape[1], 2), np.nan)
    for k in range(v.shape[1]):
        finite = v[:, k][np.isfinite(v[:, k])]
        if finite.size and finite.size >= v.shape[0] / 2:
            out[k] = _finite_interval(*np.quantile(finite, [alpha, 1 - alpha]))
    return out


def evenly_spaced(n: int, k: int) -> list[int]:
    """Up to ``k`` positions of a set of ``n``, evenly spaced (the first and the last included).

    The measurements that read a sample of a set (its nucleus scale, whether
    it is out of the U-Net's domain) pick the same images whenever the set is
    the same.

    Examples
    --------
    >>> evenly_spaced(5, 32), evenly_spaced(100, 4), evenly_spaced(0, 4)
    ([0, 1, 2, 3, 4], [0, 33, 66, 99], [])
    """
    if n <= 0 or k <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, n - 1, min(int(k), int(n)))})
