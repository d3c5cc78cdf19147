"""Figures shared by every stage: mask overlays, sample grids, class balance, learning curves.

Stage-specific figures live with their stage (e.g.
:mod:`leukolib.segmentation.figures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from leukolib.data import Dataset

__all__ = [
    "CYAN",
    "draw_contour",
    "overlay_masks",
    "plot_class_balance",
    "plot_learning_curves",
    "show_samples",
    "show_stages",
]

#: The paper's Figure 5 draws the nucleus contour in cyan.
CYAN: tuple[int, int, int] = (0, 255, 255)


def draw_contour(
    image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = CYAN, thickness: int = 1
) -> np.ndarray:
    """Return a copy of ``image`` with the outline of ``mask`` drawn on it.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image (left unchanged).
    mask : ndarray of bool, shape (H, W)
    color : (int, int, int)
        RGB colour of the contour (cyan by default, as the paper's Figure 5).
    thickness : int
        Line width in pixels.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((9, 9, 3), np.uint8)
    >>> m = np.zeros((9, 9), bool); m[2:7, 2:7] = True
    >>> out = draw_contour(img, m)
    >>> out[2, 2].tolist(), img[2, 2].tolist()
    ([0, 255, 255], [0, 0, 0])
    """
    out = np.ascontiguousarray(image, dtype=np.uint8).copy()
    contours, _ = cv2.findContours(
        np.asarray(mask, dtype=np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE
    )
    cv2.drawContours(out, contours, -1, tuple(int(c) for c in color), thickness)
    return out


def overlay_masks(
    image: np.ndarray,
    nucleus: np.ndarray | None,
    cytoplasm: np.ndarray | None = None,
    alpha: float = 0.2,
) -> np.ndarray:
    """Outline and lightly tint the nucleus (cyan) and cytoplasm (yellow) on a copy of ``image``.

    The tint is light so the stain colours stay readable under it.
    """
    out = np.asarray(image, dtype=np.float32).copy()
    yellow = (255, 220, 0)
    for mask, color in ((cytoplasm, yellow), (nucleus, CYAN)):
        if mask is not None:
            m = np.asarray(mask, bool)
            out[m] = (1 - alpha) * out[m] + alpha * np.array(color, np.float32)
    out = out.astype(np.uint8)
    if cytoplasm is not None:
        cell = np.asarray(cytoplasm, bool)
        if nucleus is not None:
            cell = cell | np.asarray(nucleus, bool)
        out = draw_contour(out, cell, yellow)
    if nucleus is not None:
        out = draw_contour(out, nucleus)
    return out


def show_samples(
    dataset: Dataset,
    indices: Sequence[int],
    ncols: int = 4,
    overlay: bool = True,
    size: float = 2.6,
) -> Figure:
    """A grid of samples, with their masks overlaid and their class as title."""
    import matplotlib.pyplot as plt

    n = len(indices)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel()[:n], indices, strict=True):
        s = dataset[int(i)]
        img = overlay_masks(s.image, s.nucleus, s.cytoplasm) if overlay else s.image
        ax.imshow(img)
        cls = dataset.class_names[s.label] if s.label is not None and dataset.class_names else ""
        ax.set_title(f"{s.id} {cls}".strip(), fontsize=9)
    fig.tight_layout()
    return fig


def plot_class_balance(dataset: Dataset, ax=None):
    """Bar chart of the number of samples per class."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    labels = dataset.labels
    if labels is None:
        ax.text(0.5, 0.5, f"{dataset.name}: no class labels", ha="center", va="center")
        ax.axis("off")
        return ax
    names = list(dataset.class_names)
    counts = np.bincount(labels, minlength=len(names))
    sns.barplot(x=names, y=counts, ax=ax, color="#7b5ea7")
    ax.set_ylabel("images")
    ax.set_title(f"{dataset.name}: {len(labels)} images, {len(names)} classes")
    for k, c in enumerate(counts):
        ax.text(k, c, str(int(c)), ha="center", va="bottom", fontsize=9)
    return ax


def show_stages(
    stages: Sequence[dict[str, np.ndarray]],
    keys: Sequence[str],
    titles: Sequence[str] | None = None,
    size: float = 2.0,
) -> Figure:
    """A grid of intermediate images: one row per image, one column per stage.

    Parameters
    ----------
    stages : sequence of dict
        One dict per image, e.g. from
        :func:`leukolib.segmentation.handcrafted.handcrafted_stages`.
    keys : sequence of str
        The stages to show, in order; 2-D float stages use the ``magma``
        colour map, boolean masks gray; colour stages may be uint8, floats in
        [0, 1] or floats in grey levels (0-255, as colour constancy returns).
    titles : sequence of str, optional
        Column titles (default: the keys).
    size : float
        Size of one panel, in inches.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(stages), len(keys), figsize=(size * len(keys), size * len(stages)), squeeze=False
    )
    for r, st in enumerate(stages):
        for c, key in enumerate(keys):
            ax = axes[r, c]
            img = st[key]
            if img.ndim == 2:
                cmap = "gray" if img.dtype == bool else "magma"
                ax.imshow(img, cmap=cmap, vmin=0, vmax=1 if img.dtype != np.uint8 else 255)
            else:  # a float colour image in grey levels (colour constancy) is shown as 0-255
                if img.dtype.kind == "f" and img.max() > 1.5:
                    img = np.rint(np.clip(img, 0, 255)).astype(np.uint8)
                ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title((titles or keys)[c], fontsize=9)
    fig.tight_layout()
    return fig


def plot_learning_curves(history, score: str = "iou", axes=None):
    """Per-fold training and validation loss and score per epoch (the paper's Figures 6 and A2).

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``fold, epoch, train_loss, val_loss, train_<score>,
        val_<score>``, as a run's ``history()`` returns.
    score : str
        The score's name (``"iou"`` for the U-Net, ``"acc"`` for a classifier).
    axes : pair of Axes, optional

    Returns
    -------
    pair of Axes
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    colors = plt.cm.viridis(np.linspace(0, 0.9, max(1, history["fold"].nunique())))
    for color, (fold, h) in zip(colors, history.groupby("fold"), strict=True):
        for ax, metric in zip(axes, ("loss", score), strict=True):
            ax.plot(h["epoch"] + 1, h[f"train_{metric}"], "--", color=color, alpha=0.7)
            ax.plot(h["epoch"] + 1, h[f"val_{metric}"], "-", color=color, label=f"fold {fold}")
    for ax, metric in zip(axes, ("loss", score), strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    axes[0].set_title("loss (dashed: training, solid: validation)")
    axes[1].set_title(f"{score} (dashed: training, solid: validation)")
    axes[1].legend(fontsize=8)
    return axes
