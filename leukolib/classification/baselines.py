"""Two classical baselines on the CNNs' very splits, to tell what the network adds.

``handcrafted``
    The kind of method of the paper's Table 6 (Ochoa-Montiel et al.'s random
    forest on nucleus features): morphometry of the segmented nucleus
    (scikit-image ``regionprops``: area, perimeter, eccentricity, solidity,
    extent, axes, circularity, number of parts), its colour (mean and spread
    of R, G, B, H, S, V inside the mask) and its texture (grey-level
    co-occurrence matrix: contrast, dissimilarity, homogeneity, energy,
    correlation, averaged over four directions, background excluded), then a
    scikit-learn random forest.
``color``
    Nothing but colour: a 16-bin histogram of each RGB channel of the whole
    image (48 numbers, no mask), then the same random forest. Where the
    classes of a dataset differ in stain or acquisition, this alone scores
    high, and accuracy cannot tell whether a CNN learned morphology.

Both train in seconds. :func:`run_baselines` fits them on the run's
training-validation part and predicts its test split (the CNNs' test images),
and also reports each fold's validation accuracy, the number the paper's
Table 6 compares. The features are computed at the image's own resolution
from the same masks as the segmented CNNs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from leukolib.classification.masks import MaskSource
from leukolib.classification.results import score_logits
from leukolib.data.base import Dataset

__all__ = [
    "BASELINES",
    "color_features",
    "forest",
    "nucleus_features",
    "run_baselines",
]

#: The baselines, with a one-line description.
BASELINES: dict[str, str] = {
    "handcrafted": "random forest on nucleus morphometry, colour and GLCM texture",
    "color": "random forest on a 16-bin RGB histogram of the whole image",
}

_SHAPE = ("area_fraction", "perimeter_ratio", "eccentricity", "solidity", "extent",
          "axis_ratio", "circularity", "n_parts")
_GLCM = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")


def nucleus_features(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shape, colour and texture features of the nucleus in ``mask`` (25 numbers).

    Sizes are relative to the image (area over image area, perimeter over
    the image's side), so images of one dataset at one magnification compare.
    An empty mask gives zeros.

    Examples
    --------
    >>> img = np.full((32, 32, 3), 200, np.uint8); m = np.zeros((32, 32), bool)
    >>> m[8:24, 8:24] = True; img[m] = (120, 40, 160)
    >>> f = nucleus_features(img, m)
    >>> f.shape, round(float(f[0]), 3)
    ((25,), 0.25)
    """
    import cv2
    from skimage.feature import graycomatrix, graycoprops
    from skimage.measure import label, regionprops

    mask = np.asarray(mask, bool)
    n = len(_SHAPE) + 12 + len(_GLCM)
    if not mask.any():
        return np.zeros(n)
    h, w = mask.shape
    lab = label(mask)
    regions = regionprops(lab)
    big = max(regions, key=lambda r: r.area)
    per = sum(r.perimeter for r in regions)
    area = float(mask.sum())
    shape = [area / (h * w), per / np.sqrt(h * w), big.eccentricity, big.solidity, big.extent,
             big.axis_minor_length / max(big.axis_major_length, 1e-6),
             4 * np.pi * area / max(per, 1.0) ** 2, float(len(regions))]
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    px = np.concatenate([image[mask], hsv[mask]], axis=1).astype(np.float64)
    color = [*px.mean(0), *px.std(0)]
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    t, left, b, r = big.bbox
    q = (gray[t:b, left:r] // 8 + 1) * mask[t:b, left:r]  # 32 levels, 0 = background
    glcm = graycomatrix(q.astype(np.uint8), [1], [0, np.pi / 4, np.pi / 2, 3 * np.pi / 4],
                        levels=33)[1:, 1:]  # background pairs excluded
    glcm = glcm / np.maximum(glcm.sum(axis=(0, 1), keepdims=True), 1)
    texture = [float(np.nan_to_num(graycoprops(glcm, p).mean())) for p in _GLCM]
    return np.array([*shape, *color, *texture], dtype=np.float64)


def color_features(image: np.ndarray, bins: int = 16) -> np.ndarray:
    """A ``bins``-bin histogram of each RGB channel of the whole image, normalised (3 * bins).

    Examples
    --------
    >>> color_features(np.zeros((4, 4, 3), np.uint8)).reshape(3, 16)[:, 0].tolist()
    [1.0, 1.0, 1.0]
    """
    img = np.asarray(image)
    hists = [np.bincount((img[..., c].ravel().astype(np.int64) * bins) // 256,
                         minlength=bins) for c in range(3)]
    return np.concatenate(hists).astype(np.float64) / (img.shape[0] * img.shape[1])


def forest(seed: int = 0):
    """The baselines' classifier: scikit-learn's random forest, 300 trees, seeded."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=300, random_state=seed, n_jobs=1)


def _split_indices(record: dict[str, Any], ids: Sequence[str]):
    pos = {str(i): k for k, i in enumerate(ids)}
    try:
        test = np.array([pos[i] for i in record["split"]["test_ids"]])
        folds = [(np.array([pos[i] for i in f["train_ids"]]),
                  np.array([pos[i] for i in f["val_ids"]])) for f in record["folds"]]
    except KeyError as exc:
        raise ValueError(f"image {exc} of the run's split is not in the dataset") from None
    trainval = np.sort(np.concatenate([v for _, v in folds]))
    return trainval, test, folds


def run_baselines(
    dataset: Dataset,
    record: dict[str, Any],
    masks: MaskSource | None = None,
    seed: int = 0,
    names: Sequence[str] = tuple(BASELINES),
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Fit the baselines on a classifier run's split; score its test images.

    Parameters
    ----------
    dataset : Dataset
        The run's dataset.
    record : dict
        A classifier run record (its ``split`` and ``folds`` are used).
    masks : MaskSource, optional
        For ``handcrafted`` (default: the handcrafted segmenter).
    seed : int
    names : sequence of str
        Which baselines.
    progress : bool

    Returns
    -------
    dict
        ``name -> {"test": metrics with accuracy_ci, ids, labels, pred;
        "val_acc_folds", "val_acc_mean", "val_acc_std", "n_features", "seconds"}``
        (``test`` has the layout of a run record's, so :mod:`~leukolib.classification.report`
        compares both alike).
    """
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; known: {', '.join(BASELINES)}")
    masks = masks or MaskSource("handcrafted")
    ids = [str(i) for i in dataset.ids]
    trainval, test, folds = _split_indices(record, ids)
    y = np.asarray(dataset.labels)
    t0 = time.perf_counter()
    feats: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for s in tqdm(dataset, total=len(dataset), desc="baseline features", disable=not progress,
                  leave=False):
        if "handcrafted" in feats:
            feats["handcrafted"].append(nucleus_features(s.image, masks.mask(s)))
        if "color" in feats:
            feats["color"].append(color_features(s.image))
    t_feat = (time.perf_counter() - t0) / max(len(names), 1)
    out = {}
    for name in names:
        t1 = time.perf_counter()
        x = np.stack(feats[name])
        val = []
        for train, v in folds:
            val.append(float((forest(seed).fit(x[train], y[train]).predict(x[v]) == y[v]).mean()))
        clf = forest(seed).fit(x[trainval], y[trainval])
        proba = np.zeros((len(test), len(dataset.class_names)))
        proba[:, clf.classes_] = clf.predict_proba(x[test])
        test_m = score_logits(y[test], np.log(proba + 1e-9), dataset.class_names, seed=seed)
        test_m.update(ids=[ids[i] for i in test], labels=y[test].tolist(),
                      pred=proba.argmax(1).tolist())
        out[name] = {"description": BASELINES[name], "test": test_m,
                     "val_acc_folds": val, "val_acc_mean": float(np.mean(val)),
                     "val_acc_std": float(np.std(val, ddof=1)) if len(val) > 1 else 0.0,
                     "n_features": int(x.shape[1]),
                     "seconds": t_feat + time.perf_counter() - t1}
    return out
