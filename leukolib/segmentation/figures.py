"""Figures of the segmentation chapters: histograms, predictions beside the truth, galleries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from leukolib.plotting import draw_contour

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "failure_gallery",
    "plot_scale_views",
    "plot_otsu_histogram",
    "show_method_masks",
    "show_predictions",
    "show_worst",
]


def plot_otsu_histogram(values: np.ndarray, threshold: float, ax=None, bins: int = 64):
    """Histogram of a feature image with its Otsu threshold marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.6))
    v = np.asarray(values, dtype=np.float64).ravel()
    ax.hist(v, bins=bins, color="#7b5ea7", log=True)
    ax.axvline(threshold, color="crimson", lw=2, label=f"Otsu threshold {threshold:.3g}")
    ax.set_xlabel("filtered M * S")
    ax.set_ylabel("pixels (log)")
    ax.legend(fontsize=8)
    return ax


def show_predictions(
    samples: Sequence,
    masks: Sequence[np.ndarray],
    captions: Sequence[str] | None = None,
    ncols: int = 4,
    size: float = 2.6,
    truth_color: tuple[int, int, int] = (255, 220, 0),
) -> Figure:
    """Predicted nucleus contours (cyan) beside the ground truth (yellow).

    Parameters
    ----------
    samples : sequence of Sample
        The images and their ground truth (``nucleus`` may be ``None``).
    masks : sequence of ndarray of bool
        The predicted masks, one per sample.
    captions : sequence of str, optional
        Panel titles (default: the sample ids).
    ncols : int
        Panels per row.
    size : float
        Size of one panel, in inches.
    truth_color : (int, int, int)
        RGB colour of the ground-truth contour.
    """
    import matplotlib.pyplot as plt

    n = len(samples)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (ax, s, m) in enumerate(zip(axes.ravel()[:n], samples, masks, strict=True)):
        img = s.image
        if s.nucleus is not None:
            img = draw_contour(img, s.nucleus, truth_color)
        ax.imshow(draw_contour(img, m))
        ax.set_title(captions[k] if captions else s.id, fontsize=8)
    fig.tight_layout()
    return fig


def show_method_masks(
    samples: Sequence,
    masks: dict[str, Sequence[np.ndarray]],
    scores: dict[str, Sequence[float]] | None = None,
    row_titles: Sequence[str] | None = None,
    metric: str = "iou",
    size: float = 2.4,
    truth_color: tuple[int, int, int] = (255, 220, 0),
) -> Figure:
    """Several methods' masks on the same images, side by side (the paper's Figure 4 style).

    One row per sample: the image with its ground truth (yellow), then one
    panel per method with that method's contour (cyan) over the ground truth.

    Parameters
    ----------
    samples : sequence of Sample
        The images and their ground truth.
    masks : dict
        ``{method: [mask per sample]}``; the columns, in order.
    scores : dict, optional
        ``{method: [score per sample]}``, shown in the panel titles.
    row_titles : sequence of str, optional
        Title of each row's first panel (default: the sample ids).
    metric : str
        Name of the score in the titles.
    size : float
        Size of one panel, in inches.
    truth_color : (int, int, int)
        RGB colour of the ground-truth contour.
    """
    import matplotlib.pyplot as plt

    methods = list(masks)
    nrows, ncols = max(1, len(samples)), len(methods) + 1
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, s in enumerate(samples):
        base = s.image if s.nucleus is None else draw_contour(s.image, s.nucleus, truth_color)
        axes[r, 0].imshow(base)
        axes[r, 0].set_title(row_titles[r] if row_titles else s.id, fontsize=8)
        for c, method in enumerate(methods, start=1):
            axes[r, c].imshow(draw_contour(base, masks[method][r]))
            title = method
            if scores is not None and method in scores:
                title += f"  {metric} {scores[method][r]:.3f}"
            axes[r, c].set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def show_worst(dataset, per_image, predict, n: int = 8, metric: str = "iou", ncols: int = 4):
    """The ``n`` images with the lowest ``metric``, predicted (cyan) beside the truth (yellow).

    Parameters
    ----------
    dataset : Dataset
        The evaluated dataset.
    per_image : DataFrame or sequence of dict
        Per-image scores with an ``id`` column and ``metric`` (and optionally
        ``fold``), e.g. :meth:`EvaluationResult.to_frame` or a U-Net run's
        ``per_image``.
    predict : callable
        ``predict(sample) -> bool mask``: the method that was scored.
    n : int
        Number of images.
    metric : str
        The score to rank by (lowest first).
    ncols : int
        Panels per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import pandas as pd

    worst = pd.DataFrame(per_image).nsmallest(n, metric)
    index = {sid: i for i, sid in enumerate(dataset.ids)}
    samples = [dataset[index[sid]] for sid in worst["id"]]
    fold = worst["fold"].tolist() if "fold" in worst else [None] * len(worst)
    captions = [
        f"{sid}" + ("" if f is None else f" fold {f}") + f"  {metric} {v:.2f}"
        for sid, f, v in zip(worst["id"], fold, worst[metric], strict=True)
    ]
    return show_predictions(samples, [predict(s) for s in samples], captions, ncols=ncols)


def failure_gallery(
    ev: Any,
    dataset: Any,
    methods: Any,
    *,
    show: Sequence[str] = ("HM", "DEEP", "ENSEMBLE"),
    n_worst: int = 2,
    metric: str = "iou",
    size: float = 2.4,
) -> Figure:
    """The worst images of each method, every method's contour side by side (the paper's Figure 4).

    For each method of ``show`` the ``n_worst`` images of ``dataset`` with the
    lowest ``metric`` in ``ev`` are picked (an image worst for two methods
    appears once) and their masks recomputed with ``methods`` (the
    :class:`~leukolib.segmentation.evaluate.Methods` that was evaluated).

    Parameters
    ----------
    ev : Evaluation
    dataset : Dataset
    methods : Methods
    show : sequence of str
    n_worst : int
    metric : str
    size : float
        Panel size in inches.
    """
    p = ev.per_image[ev.per_image["dataset"] == dataset.name]
    picked: dict[str, list[str]] = {}
    for method in show:
        for sid in p[p["method"] == method].nsmallest(n_worst, metric)["id"]:
            picked.setdefault(str(sid), []).append(method)
    by_id = {sid: i for i, sid in enumerate(dataset.ids)}
    samples = [dataset[by_id[sid]] for sid in picked]
    computed = methods.masks(samples)
    masks = {m: [c[m] for c in computed] for m in show}
    scores = p.pivot_table(index="id", columns="method", values=metric)
    score_lists = {m: [float(scores.loc[s.id, m]) for s in samples] for m in show}
    titles = [f"{s.id} (worst {', '.join(why)})"
              for s, why in zip(samples, picked.values(), strict=True)]
    return show_method_masks(samples, masks, score_lists, titles, metric=metric, size=size)


def plot_scale_views(samples: Sequence[tuple[str, Any]], spec: Any, square: int | None = None
                     ) -> Figure:
    """What the U-Net sees of each image: the image, the square resize, the nucleus scale.

    One row per ``(label, sample)`` (a sample with a nucleus mask): the image
    at its own size, the paper's resize to ``square`` x ``square`` (aspect
    ratio lost), and the patch the network sees at the nucleus scale of
    ``spec`` (a :class:`~leukolib.segmentation.scale.ScaleSpec`: resampled so
    that the nucleus spans ``spec.target_diameter`` px, one patch around it).
    Each title gives the nucleus diameter in that view, in pixels.
    """
    import matplotlib.pyplot as plt
    import torch

    from leukolib.segmentation.augment import image_to_tensor, mask_to_tensor, pad_to
    from leukolib.segmentation.scale import nucleus_centre, nucleus_diameter, resample

    square = int(square or spec.patch_size)
    fig, axes = plt.subplots(len(samples), 3, figsize=(8.4, 3.2 * len(samples)), squeeze=False)
    for row, (label, s) in zip(axes, samples, strict=True):
        mask = np.asarray(s.nucleus, bool)
        d = nucleus_diameter(mask) or float("nan")
        h, w = s.image.shape[:2]
        row[0].imshow(draw_contour(s.image, mask))
        row[0].set_title(f"{label}: {w} x {h} px\nnucleus {d:.0f} px", fontsize=10)
        x = torch.nn.functional.interpolate(image_to_tensor(s.image)[None], size=(square, square),
                                            mode="bilinear", antialias=True)[0]
        m = torch.nn.functional.interpolate(mask_to_tensor(mask)[None], size=(square, square),
                                            mode="bilinear")[0, 0] >= 0.5
        sq = (x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        dm = nucleus_diameter(m.numpy())
        row[1].imshow(draw_contour(sq, m.numpy()))
        row[1].set_title(f"resized to {square} x {square} (x{square / w:.2f} wide, "
                         f"x{square / h:.2f} high)\nnucleus {dm or 0:.0f} px", fontsize=10)
        f = spec.factor(d)
        xi, _ = pad_to(resample(image_to_tensor(s.image), f), spec.patch_size)
        mi, _ = pad_to(resample(mask_to_tensor(mask), f, mask=True), spec.patch_size)
        cy, cx = nucleus_centre(mi[0].numpy() >= 0.5) or (0, 0)
        ph, pw = mi.shape[-2:]
        top = int(np.clip(cy - spec.patch_size // 2, 0, ph - spec.patch_size))
        left = int(np.clip(cx - spec.patch_size // 2, 0, pw - spec.patch_size))
        cut = (slice(top, top + spec.patch_size), slice(left, left + spec.patch_size))
        patch = (xi[:, cut[0], cut[1]].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        pm = mi[0, cut[0], cut[1]].numpy() >= 0.5
        row[2].imshow(draw_contour(patch, pm))
        row[2].set_title(f"nucleus scale: x{f:.2f}, a {spec.patch_size} px patch\n"
                         f"nucleus {nucleus_diameter(pm) or 0:.0f} px", fontsize=10)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return fig
