"""Statistics shared by every stage: intervals, paired tests, McNemar's test.

A results table of this book compares methods on the *same* images, so the
tests here are paired:

* :func:`bootstrap_ci`: a bootstrap confidence interval of a mean
  (:func:`scipy.stats.bootstrap`, BCa, seeded), for per-image scores or
  paired per-image differences;
* :func:`wilcoxon_p`: the Wilcoxon signed-rank test of paired differences;
* :func:`paired_comparison`: both, plus wins, losses, ties and a verdict;
* :func:`mcnemar`: McNemar's test of two classifiers on the same test images
  (exact binomial for fewer than 25 discordant images, else the
  continuity-corrected chi-square);
* :func:`holm`: Holm's step-down adjustment of p-values, for a family of
  tests (one per model of a grid);
* :func:`stratified_bootstrap_ci`: percentile intervals of any statistic of a
  whole sample (a cluster score, a ratio), resampling units within strata
  (classes) so that every resample keeps every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "bootstrap_ci",
    "holm",
    "mcnemar",
    "paired_comparison",
    "stratified_bootstrap_ci",
    "wilcoxon_p",
]


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
    values) the percentile interval is used instead.

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
        ``(low, high)``; ``(nan, nan)`` without values, ``(v, v)`` when every
        value is ``v``.

    Examples
    --------
    >>> lo, hi = bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5], seed=0)
    >>> bool(lo < 0.3 < hi), bootstrap_ci([0.1, 0.2, 0.3, 0.4, 0.5], seed=0) == (lo, hi)
    (True, True)
    """
    import warnings

    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1 or np.ptp(v) == 0:
        s = float(statistic(v, axis=-1))
        return s, s
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa's "degenerate" warning: we fall back
            res = bootstrap((v,), statistic, n_resamples=int(n_boot), confidence_level=ci,
                            method=method, rng=np.random.default_rng(seed), vectorized=True)
        lo, hi = res.confidence_interval
        if np.isfinite(lo) and np.isfinite(hi):
            return float(lo), float(hi)
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


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    names: tuple[str, str] = ("a", "b"),
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
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
        Significance level of the verdict.

    Returns
    -------
    dict
        ``n, mean_a, mean_b, mean_diff, ci_low, ci_high, wilcoxon_p, wins,
        losses, ties, verdict``. The verdict names a winner only when the
        interval excludes 0 **and** ``p < alpha``.

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
    lo, hi = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed)
    p = wilcoxon_p(d)
    if lo > 0 and p < alpha:
        verdict = f"{names[0]} better"
    elif hi < 0 and p < alpha:
        verdict = f"{names[1]} better"
    else:
        verdict = "no significant difference"
    return {
        "n": int(d.size),
        "mean_a": float(x.mean()) if d.size else float("nan"),
        "mean_b": float(y.mean()) if d.size else float("nan"),
        "mean_diff": float(d.mean()) if d.size else float("nan"),
        "ci_low": lo,
        "ci_high": hi,
        "wilcoxon_p": p,
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "verdict": verdict,
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
        half of the resamples gave a finite value.

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
            out[k] = np.quantile(finite, [alpha, 1 - alpha])
    return out
