"""Segmentation and classification metrics.

Segmentation metrics follow the paper's eq. (1)-(6), computed per image from
the pixel confusion counts and then averaged over a dataset::

    Acc  = (TP + TN) / (TP + TN + FP + FN)
    Pre  = TP / (TP + FP)
    Rec  = TP / (TP + FN)
    Spec = TN / (TN + FP)
    DSC  = 2 TP / (2 TP + FP + FN)
    IoU  = TP / (TP + FP + FN)

Empty masks: a ratio whose denominator is zero (e.g. Pre when the prediction
is empty, Rec or IoU when the ground truth is empty) is defined as **1 when the
prediction equals the ground truth** (both empty: a perfect answer) and **0
otherwise** (e.g. an empty prediction for a non-empty nucleus gets Pre = 0,
Rec = 0, IoU = 0). Dataset summaries are the mean and the sample standard
deviation (``ddof=1``) over images.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "SEGMENTATION_METRICS",
    "confusion_counts",
    "metrics_from_counts",
    "segmentation_metrics",
    "summarize",
    "classification_metrics",
]

#: Metric keys, in the paper's column order.
SEGMENTATION_METRICS: tuple[str, ...] = ("acc", "pre", "rec", "spec", "dsc", "iou")


def confusion_counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Pixel confusion counts of binary masks.

    Parameters
    ----------
    pred, truth : array_like of bool, shape (..., H, W)
        Predicted and ground-truth masks (non-zero is foreground); leading
        dimensions are batch dimensions.

    Returns
    -------
    ndarray of int64, shape (..., 4)
        ``TP, FP, FN, TN`` for each image.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[1, 1], [0, 0]], bool)
    >>> t = np.array([[1, 0], [1, 0]], bool)
    >>> confusion_counts(p, t)
    array([1, 1, 1, 1])
    """
    p = np.asarray(pred).astype(bool)
    t = np.asarray(truth).astype(bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} differs from ground truth {t.shape}")
    if p.ndim < 2:
        raise ValueError(f"masks must be at least 2-D, got shape {p.shape}")
    axes = (-2, -1)
    tp = np.sum(p & t, axis=axes)
    fp = np.sum(p & ~t, axis=axes)
    fn = np.sum(~p & t, axis=axes)
    tn = np.sum(~p & ~t, axis=axes)
    return np.stack([tp, fp, fn, tn], axis=-1).astype(np.int64)


def _ratio(num: np.ndarray, den: np.ndarray, perfect: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return np.where(den > 0, out, np.where(perfect, 1.0, 0.0))


def metrics_from_counts(counts: np.ndarray) -> dict[str, np.ndarray | float]:
    """The six metrics from ``TP, FP, FN, TN`` counts (shape (..., 4))."""
    c = np.asarray(counts, dtype=np.int64)
    tp, fp, fn, tn = (c[..., i] for i in range(4))
    perfect = (fp == 0) & (fn == 0)
    out = {
        "acc": _ratio(tp + tn, tp + tn + fp + fn, perfect),
        "pre": _ratio(tp, tp + fp, perfect),
        "rec": _ratio(tp, tp + fn, perfect),
        "spec": _ratio(tn, tn + fp, perfect),
        "dsc": _ratio(2 * tp, 2 * tp + fp + fn, perfect),
        "iou": _ratio(tp, tp + fp + fn, perfect),
    }
    if c.ndim == 1:
        return {k: float(v) for k, v in out.items()}
    return out


def segmentation_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The paper's six metrics (eq. 1-6) for one predicted mask.

    Parameters
    ----------
    pred, truth : array_like of bool, shape (H, W)

    Returns
    -------
    dict
        ``acc, pre, rec, spec, dsc, iou`` as floats in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((4, 4), bool); t[:2, :2] = True
    >>> p = np.zeros((4, 4), bool); p[:2, :1] = True
    >>> m = segmentation_metrics(p, t)
    >>> m["iou"], m["dsc"], m["pre"], m["rec"]
    (0.5, 0.6666666666666666, 1.0, 0.5)
    """
    counts = confusion_counts(pred, truth)
    if counts.ndim != 1:
        raise ValueError("segmentation_metrics takes one image; use confusion_counts for batches")
    return metrics_from_counts(counts)  # type: ignore[return-value]


def summarize(
    rows: Iterable[Mapping[str, float]], metrics: Sequence[str] = SEGMENTATION_METRICS
) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation of per-image metrics.

    Parameters
    ----------
    rows : iterable of mapping
        One mapping per image with at least the keys in ``metrics``.
    metrics : sequence of str
        The metrics to summarize.

    Returns
    -------
    dict
        ``{metric: {"mean": m, "std": s}}``; the std of a single image is 0.

    Examples
    --------
    >>> summarize([{"iou": 0.5}, {"iou": 1.0}], metrics=["iou"])["iou"]["mean"]
    0.75
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no per-image rows to summarize")
    out = {}
    for m in metrics:
        v = np.array([r[m] for r in rows], dtype=np.float64)
        out[m] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0}
    return out


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str] | None = None
) -> dict[str, object]:
    """Accuracy, macro precision, recall and F1, and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : sequence of int
        True and predicted class indices.
    class_names : sequence of str, optional
        Names of the classes; fixes the number of classes (so the confusion
        matrix keeps rows for classes absent from a small test set).

    Returns
    -------
    dict
        ``accuracy``, ``precision``, ``recall``, ``f1`` (macro averages,
        zero for a class never predicted, and for a class absent from
        ``y_true``), ``precision_weighted``,
        ``recall_weighted``, ``f1_weighted`` (averages weighted by support, as
        the paper's Table 7 reads), ``confusion`` (list of lists, rows true,
        columns predicted) and ``per_class`` (precision, recall, F1, support
        per class, and ``recall_ci``: the exact Clopper-Pearson 95 % interval
        of the recall, a proportion of the class's images; NaN bounds for a
        class absent from ``y_true``).

    Examples
    --------
    >>> m = classification_metrics([0, 1, 2, 2], [0, 2, 2, 2], ["L1", "L2", "L3"])
    >>> m["accuracy"], m["confusion"][1]
    (0.75, [0, 0, 1])
    >>> [round(x, 3) for x in m["per_class"]["L3"]["recall_ci"]]
    [0.158, 1.0]
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    from leukolib.stats import proportion_ci

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D")
    n = len(class_names) if class_names is not None else int(max(y_true.max(), y_pred.max()) + 1)
    labels = list(range(n))
    names = list(class_names) if class_names is not None else [str(i) for i in labels]
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    w = s / s.sum() if s.sum() else np.zeros_like(p)
    confusion = confusion_matrix(y_true, y_pred, labels=labels)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(np.mean(p)),
        "recall": float(np.mean(r)),
        "f1": float(np.mean(f)),
        "precision_weighted": float(np.sum(w * p)),
        "recall_weighted": float(np.sum(w * r)),
        "f1_weighted": float(np.sum(w * f)),
        "confusion": confusion.tolist(),
        "per_class": {
            name: {"precision": float(pi), "recall": float(ri), "f1": float(fi), "support": int(si),
                   "recall_ci": list(proportion_ci(int(confusion[i, i]), int(si)))}
            for i, (name, pi, ri, fi, si) in enumerate(zip(names, p, r, f, s, strict=True))
        },
    }
