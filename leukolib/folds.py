"""Splits shared by every stage: k-fold, hold-out and validation, all by group.

Every split is made by **group** so that related images never straddle it:
by default the groups are the images' fingerprints (exact duplicates share a
group, :mod:`leukolib.data.fingerprint`), and a dataset's patient or smear
identifiers can be merged in (:func:`leukolib.data.fingerprint.merge_groups`).
With class labels the splits are also **stratified**. Both come from
scikit-learn: ``StratifiedGroupKFold`` (labels) or ``GroupKFold`` (none),
shuffled with the run's seed.

* :func:`kfold`: ``k`` folds; each fold's test part is one k-th of the
  groups, and a validation part (model selection, learning-rate schedule) is
  drawn, again by group, from the other folds' images, never from the test
  part.
* :func:`holdout`: a stratified, grouped test split (e.g. the classifier's
  10 %), the first fold of a ``round(1 / test_fraction)``-fold split.

A class with fewer members than folds cannot be spread over every fold
(JTSC has a single basophil): scikit-learn's warning about it is silenced and
the class lands where the groups put it.

Examples
--------
>>> folds = kfold(10, 2, seed=0, val_fraction=0.25)
>>> sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(10))
True
>>> f = folds[0]; set(f.val) & set(f.test) == set(f.train) & set(f.val) == set()
True
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from leukolib.device import derive_seed

__all__ = ["Fold", "holdout", "kfold"]


@dataclass(frozen=True)
class Fold:
    """Sample indices of one cross-validation fold (disjoint, sorted).

    Attributes
    ----------
    index : int
    train, val, test : ndarray of int
        ``test`` is this fold's share; ``val`` comes from the other folds.
    """

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _split(n_splits: int, seed: int, labels: np.ndarray | None, groups: np.ndarray):
    """The (rest, test) index pairs of a shuffled, grouped (and stratified) split."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_splits > n_groups:
        raise ValueError(f"{n_groups} groups of images cannot be split into {n_splits} folds")
    x = np.zeros((len(groups), 1))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        if labels is not None and len(np.unique(labels)) > 1:
            splitter = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
            return list(splitter.split(x, labels, groups))
        return list(GroupKFold(n_splits, shuffle=True, random_state=seed).split(x, None, groups))


def _arrays(n: int, groups, labels) -> tuple[np.ndarray, np.ndarray | None]:
    g = np.arange(n) if groups is None else np.asarray(groups)
    y = None if labels is None else np.asarray(labels)
    if len(g) != n or (y is not None and len(y) != n):
        raise ValueError(f"groups and labels must have one entry per sample ({n})")
    return g, y


def kfold(
    n: int,
    n_folds: int,
    seed: int,
    *,
    groups: Sequence | np.ndarray | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
    val_fraction: float = 0.0,
) -> list[Fold]:
    """Shuffled k-fold splits by group, with a validation part inside each.

    Parameters
    ----------
    n : int
        Number of samples.
    n_folds : int
        ``k``, at least 2 and at most the number of groups.
    seed : int
        Seed of the fold assignment and of the validation draws.
    groups : array_like, optional
        Group of every sample (default: each sample its own group).
    labels : array_like, optional
        Class of every sample: the folds are then stratified.
    val_fraction : float
        Share, in ``[0, 1)``, of each fold's training groups held out for
        validation (at least one group when positive; ``0``: none).

    Returns
    -------
    list of Fold
    """
    if n_folds < 2:
        raise ValueError(f"k-fold cross-validation needs at least 2 folds, got {n_folds}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    g, y = _arrays(n, groups, labels)
    folds = []
    for k, (rest, test) in enumerate(_split(n_folds, seed, y, g)):
        val = np.array([], dtype=np.int64)
        if val_fraction > 0 and len(np.unique(g[rest])) > 1:
            inner = max(2, min(int(round(1.0 / val_fraction)), len(np.unique(g[rest]))))
            sub_y = None if y is None else y[rest]
            _, v = _split(inner, derive_seed(seed, k, 7919), sub_y, g[rest])[0]
            val = rest[v]
        train = np.setdiff1d(rest, val)
        folds.append(Fold(k, np.sort(train), np.sort(val), np.sort(test)))
    return folds


def holdout(
    n: int,
    test_fraction: float,
    seed: int,
    *,
    groups: Sequence | np.ndarray | None = None,
    labels: Sequence[int] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A grouped (and stratified) split into a training-validation part and a test part.

    The test part is one fold of a ``round(1 / test_fraction)``-fold split,
    so it holds about ``test_fraction`` of the groups (e.g. 10 %).

    Returns
    -------
    (ndarray, ndarray)
        Sorted indices of the training-validation part and of the test part.

    Examples
    --------
    >>> rest, test = holdout(20, 0.1, seed=0, labels=[0, 1] * 10)
    >>> len(test), sorted(np.bincount(np.array([0, 1] * 10)[test]).tolist())
    (2, [1, 1])
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    g, y = _arrays(n, groups, labels)
    n_splits = max(2, int(round(1.0 / test_fraction)))
    rest, test = _split(n_splits, seed, y, g)[0]
    return np.sort(rest), np.sort(test)
