"""The paper's Table A3: the predicted-class probability of chosen images, across models.

The paper reads, for nine correctly classified test images (three per FAB
class), the probability each of four classifiers gives to its (right)
prediction, and averages them: segmented models answer with 0.99, raw ones
with 0.57 to 0.93. :func:`probability_table` builds the same layout for any
dataset and any set of models; :func:`pick_images` chooses the images
without looking at the probabilities (a seeded draw among the test images
that **every** model classifies correctly, ``per_class`` of each class), so
that the table is not a selection of flattering cases. :func:`paper_table_a3`
is the paper's own table with leukolib's model names.

Whether such numbers mean "reliability" is what calibration
(:mod:`leukolib.explain.calibration`) measures: a probability is only as
good as its calibration.

Examples
--------
>>> probs = {"a": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]),
...          "b": np.array([[0.7, 0.3], [0.4, 0.6], [0.3, 0.7]])}
>>> pick_images(np.array([0, 1, 0]), probs, per_class=1).tolist()
[0, 1]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["paper_table_a3", "pick_images", "probability_table"]


def pick_images(labels: np.ndarray, probs: Mapping[str, np.ndarray], per_class: int = 3,
                seed: int = 0) -> np.ndarray:
    """Indices of up to ``per_class`` images per class that every model classifies correctly.

    Drawn at random (seeded) among those images, then sorted by class and
    index; a class with fewer such images contributes what it has.
    """
    y = np.asarray(labels, dtype=np.int64)
    right = np.ones(len(y), bool)
    for p in probs.values():
        right &= np.asarray(p).argmax(axis=1) == y
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(y):
        pool = np.flatnonzero(right & (y == c))
        chosen += sorted(rng.choice(pool, size=min(per_class, pool.size), replace=False).tolist())
    return np.asarray(chosen, dtype=np.int64)


def probability_table(
    ids: Sequence[str],
    labels: np.ndarray,
    class_names: Sequence[str],
    probs: Mapping[str, np.ndarray],
    chosen: Sequence[int],
) -> pd.DataFrame:
    """Table A3's layout: ``class, image`` and one column per model, an ``Average`` row last.

    Parameters
    ----------
    ids, labels : the test images' ids and classes
    class_names : sequence of str
    probs : mapping of model name to ``(N, C)`` probabilities, aligned with ``ids``
    chosen : indices of the rows to show (:func:`pick_images`)

    Returns
    -------
    DataFrame
        The predicted-class probability of each chosen image under each model.
    """
    y = np.asarray(labels, dtype=np.int64)
    idx = np.asarray(chosen, dtype=np.int64)
    frame = pd.DataFrame({"class": [str(class_names[y[i]]) for i in idx],
                          "image": [str(ids[i]) for i in idx]})
    for name, p in probs.items():
        p = np.asarray(p)
        frame[name] = p[idx].max(axis=1) if len(idx) else []
    average = {"class": "Average", "image": "", **{m: frame[m].mean() for m in probs}}
    return pd.concat([frame, pd.DataFrame([average])], ignore_index=True)


def paper_table_a3() -> pd.DataFrame:
    """The paper's Table A3 with leukolib's model names as columns (e.g. ``segmented-mish-linear``).

    Examples
    --------
    >>> t = paper_table_a3()
    >>> list(t.columns)[2:4], float(t.iloc[-1]["segmented-mish-medium"])
    (['segmented-mish-linear', 'raw-mish-linear'], 0.999)
    """
    from leukolib import paper

    t = paper.table("A3")
    t["image"] = t["image"].fillna("")
    return t.rename(columns={c: paper.classifier_key(c) for c in t.columns[2:]})
