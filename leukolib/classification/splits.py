"""The classifiers' splits (the paper's section 4.2): a test split, then k folds on the rest.

1. A stratified hold-out **test split** of ``test_fraction`` of the images
   (10 % in the paper), made by group (:func:`leukolib.folds.holdout`): exact
   and near duplicates (the same cell shifted or re-exposed,
   :mod:`leukolib.data.duplicates`) and, where the dataset or the caller gives
   them, images of one patient or smear, never straddle it. Nothing about these images is looked
   at until every model is trained and selected.
2. **Stratified k-fold** on the remaining training-validation part
   (:func:`leukolib.folds.kfold`, by the same groups): fold ``k`` trains on the
   other folds and is *validated* on its own, which selects its best epoch and
   drives the learning-rate schedule. Every training-validation image is thus
   predicted once by the model that held it out (the out-of-fold logits);
   these are optimistic by the selection, the test split is not.

Every model of a grid, and the baselines, use the very same split: it depends
only on the images (their fingerprints and near-duplicate groups), their
labels, the dataset's and the caller's groups, and the seed.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from leukolib.data.duplicates import DEFAULT_RULE, DuplicateRule, grouping_record
from leukolib.data.fingerprint import split_groups
from leukolib.folds import holdout, kfold

__all__ = ["ClassifierSplit", "classifier_split"]


@dataclass(frozen=True)
class ClassifierSplit:
    """Indices (into the dataset) of the classifier protocol's parts.

    Attributes
    ----------
    trainval, test : ndarray of int
        The two parts of the hold-out split.
    folds : list of (ndarray, ndarray)
        ``(train, val)`` of every fold, both inside ``trainval``.
    groups : ndarray of int
        The group of every image (identical pixels, near duplicates, dataset and caller
        groups merged).
    grouping : dict
        What kept images together (:func:`leukolib.data.duplicates.grouping_record`),
        recorded with every run.
    """

    trainval: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    groups: np.ndarray
    grouping: dict

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.folds)


def classifier_split(
    fingerprints: Sequence[str],
    labels: Sequence[int] | np.ndarray | None,
    test_fraction: float,
    n_folds: int,
    seed: int,
    *,
    near_duplicates: Sequence[Hashable] | None,
    dataset_groups: Sequence[Hashable] | None = None,
    groups: Sequence[Hashable] | None = None,
    rule: DuplicateRule = DEFAULT_RULE,
) -> ClassifierSplit:
    """The hold-out test split and the k folds of the training-validation part.

    Parameters
    ----------
    fingerprints : sequence of str
        One per image (:func:`leukolib.data.image_fingerprint`): duplicates share a group.
    labels : array_like of int, optional
        Classes, for stratification.
    test_fraction : float
    n_folds : int
    seed : int
    near_duplicates : sequence or None
        Near-duplicate groups of the images (``ImageSet.near_duplicates``,
        :func:`leukolib.data.near_duplicate_groups`); required, ``None`` only
        for images known to hold none.
    dataset_groups, groups : sequence, optional
        The dataset's own and the caller's groups (patients, smears).
    rule : DuplicateRule
        The rule that made ``near_duplicates`` (recorded).

    Returns
    -------
    ClassifierSplit

    Examples
    --------
    >>> prints = [f"p{i}" for i in range(40)]
    >>> s = classifier_split(prints, [0, 1] * 20, 0.1, 3, seed=0, near_duplicates=range(40))
    >>> len(s.test), s.n_folds, sorted(np.concatenate([v for _, v in s.folds])) == list(s.trainval)
    (4, 3, True)
    """
    g = split_groups(list(fingerprints), dataset_groups, groups, near_duplicates=near_duplicates)
    y = None if labels is None else np.asarray(labels)
    trainval, test = holdout(len(g), test_fraction, seed, groups=g, labels=y)
    inner = kfold(len(trainval), n_folds, seed, groups=g[trainval],
                  labels=None if y is None else y[trainval])
    folds = [(trainval[f.train], trainval[f.test]) for f in inner]
    grouping = grouping_record(None if near_duplicates is None else rule,
                               dataset_groups=dataset_groups is not None,
                               caller_groups=groups is not None)
    return ClassifierSplit(trainval, test, folds, g, grouping)
