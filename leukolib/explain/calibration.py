"""Whether a 0.99 means 99 %: expected calibration error, reliability, temperature scaling.

A classifier is *calibrated* when, among the images it gives a confidence of
about ``p`` (its top-class probability), a share of about ``p`` is right.

* :func:`expected_calibration_error` (Naeini et al. 2015; Guo et al. 2017):
  the images are binned by confidence in ``n_bins`` equal-width bins; ECE
  is the average gap ``|accuracy - mean confidence|`` of the bins, weighted
  by their share of the images. 0 is perfect; with few images it is biased
  upwards (every bin of a handful of images has a gap).
* :func:`reliability_table`: the bins themselves, for the reliability
  diagram (:func:`leukolib.explain.figures.plot_reliability`).
* :func:`fit_temperature` (Guo et al. 2017): one scalar ``T`` dividing the
  logits, fitted by minimising the negative log-likelihood on held-out
  logits. It never changes a single model's prediction (the arg-max), only
  the confidence. leukolib fits it on the **out-of-fold validation logits**
  of the k-fold protocol (every image scored by the fold model that did not
  train on it) and measures ECE on the **test split**, never used for the
  fit.
* :func:`ece_floor`: what ECE a **perfectly calibrated** model with the
  same confidences would show on the same number of images (labels drawn
  from the model's own probabilities: consistency resampling, Bröcker and
  Smith 2007; Vaicenavicius et al. 2019), and the p-value of the hypothesis
  "calibrated". On a test split of a few dozen images this floor is of the
  order of the ECE itself: an ECE near it is no evidence of miscalibration,
  and a reduction below it can hardly be measured.
* :func:`calibration_summary`: ECE, negative log-likelihood and Brier
  score before and after, with bootstrap intervals of ECE and the floor.

**One rule for a k-fold run** (:func:`fold_temperatures`,
:func:`fold_probabilities`): the test split is answered by the ``F`` fold
models, and temperature scaling is applied to each *before* their answers
are averaged. Fold ``k``'s temperature ``T_k`` is fitted on the out-of-fold
logits of the images fold ``k`` held out (its validation images: logits of
the same model, at the same scale, as its test logits ``z_k``), and the
evaluated probabilities are the average of the calibrated fold
probabilities, ``mean_k softmax(z_k / T_k)``; "before" is the same average
with every ``T_k = 1``. Fitting on single-fold logits and applying to
fold-averaged logits would not fit what is evaluated: averaging logits over
folds shrinks them. ECE, NLL, Brier and the reliability tables before and
after are all of these averaged probabilities, and the temperatures are
recorded per fold. With several ``T_k`` the average's arg-max can change
(rarely): the accuracy after is reported apart.

Examples
--------
>>> probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
>>> round(expected_calibration_error(probs, np.array([0, 0, 1, 1]), n_bins=5), 3)
0.3
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from leukolib.explain.cams import softmax

__all__ = [
    "ALPHA",
    "N_BINS",
    "N_DRAWS",
    "brier_score",
    "calibration_summary",
    "ece_floor",
    "expected_calibration_error",
    "fit_temperature",
    "fold_probabilities",
    "fold_temperatures",
    "negative_log_likelihood",
    "reliability_table",
]

#: Guo et al.'s 15 equal-width bins.
N_BINS = 15
#: Label draws of :func:`ece_floor` (a p-value near 0.05 then has a Monte Carlo error of 0.005).
N_DRAWS = 2000
#: The level at which a model counts as detectably miscalibrated (after Holm's correction).
ALPHA = 0.05


def _bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    # bin k holds confidences in (k / n, (k + 1) / n]; 0 falls in the first. A NaN
    # confidence goes to the first bin, where its NaN still makes the bin's sum NaN.
    c = np.where(np.isfinite(confidence), confidence, 0.0)
    return np.clip(np.ceil(c * n_bins).astype(np.int64) - 1, 0, n_bins - 1)


def _binned(probs: np.ndarray, labels: np.ndarray,
            n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin: number of images, summed confidence, number right."""
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1)
    right = (p.argmax(axis=1) == np.asarray(labels, dtype=np.int64)).astype(np.float64)
    b = _bins(conf, n_bins)
    return (np.bincount(b, minlength=n_bins), np.bincount(b, conf, minlength=n_bins),
            np.bincount(b, right, minlength=n_bins))


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS) -> pd.DataFrame:
    """The reliability diagram's bins: ``low, high, n, confidence, accuracy, gap``.

    Empty bins have ``n = 0`` and NaN confidence and accuracy.
    """
    n, conf, right = _binned(probs, labels, n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, acc = conf / n, right / n
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame({"low": edges[:-1], "high": edges[1:], "n": n, "confidence": mean_conf,
                         "accuracy": acc, "gap": np.abs(acc - mean_conf)})


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray,
                               n_bins: int = N_BINS) -> float:
    """Top-label ECE: the bins' ``|accuracy - confidence|`` weighted by their share of images."""
    n, conf, right = _binned(probs, labels, n_bins)
    if n.sum() == 0:
        return float("nan")
    # sum over bins of n_b * |acc_b - conf_b| = |right_b - conf_b|
    return float(np.abs(right - conf).sum() / n.sum())


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray,
                            temperature: float = 1.0) -> float:
    """Mean negative log-probability of the true class under ``softmax(logits / T)``."""
    from scipy.special import log_softmax

    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    y = np.asarray(labels, dtype=np.int64)
    return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].mean())


def brier_score(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean squared distance between the probabilities and the one-hot truth (0 is perfect)."""
    p = np.asarray(probs, dtype=np.float64)
    onehot = np.eye(p.shape[1])[np.asarray(labels, dtype=np.int64)]
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray,
                    bounds: tuple[float, float] = (0.05, 50.0)) -> float:
    """The temperature minimising the negative log-likelihood of ``logits / T``.

    A bounded one-dimensional search on ``log T`` (:func:`scipy.optimize.minimize_scalar`).

    Examples
    --------
    Labels drawn from ``softmax(z)`` make ``z`` calibrated; ``3 z`` is three
    times too confident:

    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 2, (2000, 3))
    >>> y = (softmax(z).cumsum(axis=1) < rng.random((2000, 1))).sum(axis=1)
    >>> round(fit_temperature(3 * z, y), 1)
    3.0
    """
    from scipy.optimize import minimize_scalar

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if len(y) == 0:
        raise ValueError("no logits to fit a temperature on")
    res = minimize_scalar(lambda lt: negative_log_likelihood(z, y, float(np.exp(lt))),
                          bounds=tuple(np.log(bounds)), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def fold_temperatures(
    logits: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray | None = None,
    order: Sequence[int] | None = None,
) -> np.ndarray:
    """One temperature per fold model, each fitted on the images that fold held out.

    Parameters
    ----------
    logits, labels :
        Out-of-fold logits ``(M, C)`` and labels: each image scored by the
        fold model that held it out.
    folds : ndarray, shape (M,), optional
        The fold that held each image out. Without it, one temperature is
        fitted on all the logits (returned as a length-1 array).
    order : sequence of int, optional
        The fold of each test-logit row (default: the folds sorted).

    Returns
    -------
    ndarray, shape (F,)
        ``T_k`` in the order of ``order``.

    Raises
    ------
    ValueError
        A fold of ``order`` held out no image.

    Examples
    --------
    Fold 1's model is three times as confident as fold 0's:

    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 2, (4000, 3))
    >>> y = (softmax(z).cumsum(axis=1) < rng.random((4000, 1))).sum(axis=1)
    >>> f = np.repeat([0, 1], 2000)
    >>> fold_temperatures(np.where(f[:, None] == 1, 3 * z, z), y, f).round(0).tolist()
    [1.0, 3.0]
    """
    if folds is None:
        return np.array([fit_temperature(logits, labels)])
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    f = np.asarray(folds, dtype=np.int64)
    order = sorted(set(f.tolist())) if order is None else [int(k) for k in order]
    missing = [k for k in order if not (f == k).any()]
    if missing:
        raise ValueError(f"fold(s) {missing} held out no image: no temperature to fit")
    return np.array([fit_temperature(z[f == k], y[f == k]) for k in order])


def fold_probabilities(logits: np.ndarray,
                       temperatures: float | Sequence[float] | np.ndarray = 1.0) -> np.ndarray:
    """The fold models' calibrated probabilities, averaged: ``mean_k softmax(z_k / T_k)``.

    Parameters
    ----------
    logits : ndarray, shape (F, N, C) or (N, C)
        Each fold model's logits (a 2-D array is one model).
    temperatures : float or sequence of float
        One per fold (or one for all).

    Returns
    -------
    ndarray, shape (N, C)

    Examples
    --------
    >>> z = np.array([[[0.0, 2.0]], [[0.0, 6.0]]])  # two folds, one image
    >>> fold_probabilities(z, [1.0, 3.0]).round(3).tolist()
    [[0.119, 0.881]]
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z[None] if z.ndim == 2 else z
    t = np.broadcast_to(np.asarray(temperatures, dtype=np.float64), (len(z),))
    return np.mean([softmax(zk, tk) for zk, tk in zip(z, t, strict=True)], axis=0)


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of images whose highest probability is their label's (NaN for none)."""
    y = np.asarray(labels, dtype=np.int64)
    return float((np.asarray(probs).argmax(axis=1) == y).mean()) if len(y) else float("nan")


def _nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true class (of probabilities, not logits)."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)[np.arange(len(y)), y]
    return float(-np.log(np.maximum(p, np.finfo(np.float64).tiny)).mean())


def ece_floor(probs: np.ndarray, labels: np.ndarray, n_bins: int = N_BINS,
              n_draws: int = N_DRAWS, seed: int = 0,
              target: float | None = None) -> dict[str, float]:
    """ECE against its floor: what a perfectly calibrated model would show on these images.

    Labels are drawn ``n_draws`` times from the rows of ``probs`` (so the
    probabilities are calibrated by construction) and ECE is computed for
    each draw: the null distribution of ECE for this number of images and
    these confidences (consistency resampling; Bröcker and Smith 2007,
    Vaicenavicius et al. 2019).

    Parameters
    ----------
    probs : ndarray, shape (N, C)
        Probabilities (rows sum to 1).
    labels : ndarray, shape (N,)
        The observed labels.
    n_bins, n_draws, seed :
        ECE's bins; label draws; their seed.
    target : float, optional
        An ECE to reach (e.g. half the ECE before temperature scaling).

    Returns
    -------
    dict
        ``ece`` (observed), ``floor`` (the null mean), ``floor_q95``, ``p``:
        the share of draws at least as large as the observed ECE (with the
        usual ``+1``), the p-value of "calibrated" (NaN when the observed ECE
        is); with ``target``, ``p_target``: the share of draws at or below it,
        the chance that a perfectly calibrated model would reach it here.

    Examples
    --------
    Calibrated probabilities on 30 images still have an ECE well above 0
    (the p-value is uniform under calibration: 1 draw in 20 falls below 0.05):

    >>> rng = np.random.default_rng(1)
    >>> p = softmax(rng.normal(0, 2, (30, 3)))
    >>> y = (p.cumsum(axis=1) < rng.random((30, 1))).sum(axis=1)
    >>> r = ece_floor(p, y, target=0.05)
    >>> 0.1 < r["floor"] < 0.25, r["p"] > 0.05, r["p_target"] < 0.05
    (True, True, True)
    """
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if len(y) != len(p):
        raise ValueError(f"{len(p)} rows of probabilities but {len(y)} labels")
    observed = expected_calibration_error(p, y, n_bins)
    out = {"ece": observed, "floor": float("nan"), "floor_q95": float("nan"), "p": float("nan")}
    if target is not None:
        out["p_target"] = float("nan")
    if len(p) == 0 or not np.isfinite(p).all():
        return out
    rng = np.random.default_rng(seed)
    cum = p.cumsum(axis=1)
    cum[:, -1] = 1.0  # rounding must never put a draw past the last class
    draws = (cum[None] < rng.random((n_draws, len(p), 1))).sum(axis=2)
    # the confidences and their bins are the same in every draw: only who is right changes
    conf = p.max(axis=1)
    onehot = np.eye(n_bins)[_bins(conf, n_bins)]                   # (N, bins)
    right = (draws == p.argmax(axis=1)).astype(np.float64) @ onehot  # (draws, bins)
    null = np.abs(right - conf @ onehot).sum(axis=1) / len(p)
    out.update(floor=float(null.mean()), floor_q95=float(np.quantile(null, 0.95)))
    if np.isfinite(observed):
        out["p"] = float((1 + (null >= observed - 1e-12).sum()) / (1 + n_draws))
    if target is not None and np.isfinite(target):
        out["p_target"] = float((null <= target + 1e-12).mean())
    return out


def _ece_ci(probs: np.ndarray, labels: np.ndarray, n_bins: int, n_boot: int,
            seed: int) -> tuple[float, float]:
    from leukolib.stats import bootstrap_ci

    def stat(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.asarray(idx).astype(np.int64)
        flat = idx.reshape(-1, idx.shape[-1])
        out = [expected_calibration_error(probs[i], labels[i], n_bins) for i in flat]
        return np.asarray(out).reshape(idx.shape[:-1])

    return bootstrap_ci(np.arange(len(labels)), n_boot=n_boot, seed=seed, statistic=stat)


def calibration_summary(
    fit_logits: np.ndarray,
    fit_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    n_bins: int = N_BINS,
    n_boot: int = 2000,
    seed: int = 0,
    n_draws: int = N_DRAWS,
    fit_folds: np.ndarray | None = None,
    fold_order: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Temperatures fitted on ``fit_*`` (out-of-fold logits), calibration measured on ``test_*``.

    The module's one rule: the evaluated probabilities are
    ``mean_k softmax(z_k / T_k)`` over the fold models' test logits ``z_k``
    (:func:`fold_probabilities`), with ``T_k`` fitted on the held-out images
    of fold ``k`` (:func:`fold_temperatures`) when ``fit_folds`` says which
    they are, else one ``T`` fitted on all of ``fit_logits`` for every fold;
    "before" is the same average with every ``T_k = 1``. Everything returned
    (ECE, floors, NLL, Brier, accuracy) is of those two averages.

    Parameters
    ----------
    fit_logits, fit_labels :
        Held-out logits ``(M, C)`` and labels for the fit.
    test_logits, test_labels :
        The test split's logits ``(F, N, C)`` (one row per fold model) or
        ``(N, C)`` (one model) and labels.
    n_bins, n_boot, seed :
        Of ECE and its bootstrap intervals (over test images).
    n_draws : int
        Label draws of :func:`ece_floor`.
    fit_folds : ndarray, shape (M,), optional
        The fold that held out each fit image: one temperature per fold.
    fold_order : sequence of int, optional
        The fold of each row of ``test_logits`` (default: the folds of
        ``fit_folds`` sorted).

    Returns
    -------
    dict
        ``temperatures`` (one per fold model, in the rows' order, or one for
        all), ``temperature`` (their geometric mean, the one number of
        tables; the temperature itself with one), ``rule``, ``n_fit``,
        ``n_fit_per_fold``, ``n_test``, ``accuracy`` (before),
        ``accuracy_after``, ``ece_before, ece_before_ci, ece_after,
        ece_after_ci, nll_before, nll_after, brier_before, brier_after,
        ratio`` (``ece_after / ece_before``), and from :func:`ece_floor`
        ``ece_before_floor, ece_before_p, ece_after_floor, ece_after_p`` and
        ``halving_chance``: the chance that a perfectly calibrated model with
        the scaled confidences shows at most half the ECE before on these
        images (how reachable halving is, at best).

    Examples
    --------
    Two folds, the second three times as confident; each gets its own temperature:

    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 2, (3000, 3))
    >>> y = (softmax(z).cumsum(axis=1) < rng.random((3000, 1))).sum(axis=1)
    >>> f = np.repeat([0, 1], 1000)
    >>> fit = np.where(f[:, None] == 1, 3 * z[:2000], z[:2000])
    >>> test = np.stack([z[2000:], 3 * z[2000:]])
    >>> s = calibration_summary(fit, y[:2000], test, y[2000:], n_boot=20, n_draws=20,
    ...                         fit_folds=f)
    >>> [round(t, 1) for t in s["temperatures"]], s["ece_after"] < s["ece_before"]
    ([1.0, 3.0], True)
    """
    z = np.asarray(test_logits, dtype=np.float64)
    z = z[None] if z.ndim == 2 else z
    y = np.asarray(test_labels, dtype=np.int64)
    temps = fold_temperatures(fit_logits, fit_labels, fit_folds, fold_order)
    if len(temps) not in (1, len(z)):
        raise ValueError(f"{len(temps)} fold temperatures for {len(z)} fold models' test logits")
    if fit_folds is None:
        per_fold = [int(len(fit_labels))]
    else:
        f = np.asarray(fit_folds, dtype=np.int64)
        order = sorted(set(f.tolist())) if fold_order is None else list(fold_order)
        per_fold = [int((f == int(k)).sum()) for k in order]
    before, after = fold_probabilities(z), fold_probabilities(z, temps)
    ece_b = expected_calibration_error(before, y, n_bins)
    ece_a = expected_calibration_error(after, y, n_bins)
    floor_b = ece_floor(before, y, n_bins, n_draws, seed)
    floor_a = ece_floor(after, y, n_bins, n_draws, seed, target=ece_b / 2)
    return {
        "temperature": float(np.exp(np.log(temps).mean())),
        "temperatures": [float(t) for t in temps],
        "rule": ("mean over folds of softmax(z_k / T_k), T_k fitted on fold k's held-out images"
                 if len(temps) > 1 else "mean over folds of softmax(z_k / T), one T"),
        "n_fit": int(len(fit_labels)), "n_fit_per_fold": per_fold, "n_test": int(len(y)),
        "accuracy": _accuracy(before, y), "accuracy_after": _accuracy(after, y),
        "ece_before": ece_b, "ece_before_ci": _ece_ci(before, y, n_bins, n_boot, seed),
        "ece_after": ece_a, "ece_after_ci": _ece_ci(after, y, n_bins, n_boot, seed),
        "nll_before": _nll(before, y), "nll_after": _nll(after, y),
        "brier_before": brier_score(before, y), "brier_after": brier_score(after, y),
        "ratio": ece_a / ece_b if ece_b > 0 else float("nan"),
        "ece_before_floor": floor_b["floor"], "ece_before_p": floor_b["p"],
        "ece_after_floor": floor_a["floor"], "ece_after_p": floor_a["p"],
        "halving_chance": floor_a["p_target"],
    }
