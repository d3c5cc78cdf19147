"""Figures of the explanations: overlays and grids (the paper's Figures 8 and 9), measures.

* :func:`cam_overlay`: a map over the image in the paper's style
  (pytorch-grad-cam's jet overlay), the nucleus outlined in cyan;
* :func:`cam_grid`: the same images across methods or models, one row per
  image;
* :func:`plot_localization`: the energy share per model and method with its
  interval, beside the chance level (the mask's area);
* :func:`plot_curves`: mean deletion and insertion curves per method;
* :func:`plot_reliability`: reliability diagrams before and after temperature
  scaling;
* :func:`plot_cascade`: the rank correlation of the sanity check as the
  network is randomized from the top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leukolib.explain.cams import METHOD_LABELS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "cam_grid",
    "cam_overlay",
    "method_label",
    "plot_cascade",
    "plot_curves",
    "plot_localization",
    "plot_reliability",
]


def method_label(name: str) -> str:
    """``"gradcam++"`` -> ``"Grad-CAM++"``; other names unchanged."""
    return METHOD_LABELS.get(name, name)


def cam_overlay(image: np.ndarray, cam: np.ndarray, mask: np.ndarray | None = None,
                image_weight: float = 0.5) -> np.ndarray:
    """The map as a jet heat map over ``image`` (RGB ``uint8``), the mask outlined in cyan.

    Examples
    --------
    >>> img = np.zeros((8, 8, 3), np.uint8); cam = np.zeros((8, 8), np.float32)
    >>> cam_overlay(img, cam).shape
    (8, 8, 3)
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from leukolib.plotting import draw_contour

    base = np.asarray(image, np.float32) / 255.0
    out = show_cam_on_image(base, np.clip(np.asarray(cam, np.float32), 0, 1), use_rgb=True,
                            image_weight=image_weight)
    return draw_contour(out, mask) if mask is not None else out


def _pick(images: np.ndarray | Mapping[str, np.ndarray], key: str) -> np.ndarray:
    return images[key] if isinstance(images, Mapping) else images


def cam_grid(
    images: np.ndarray | Mapping[str, np.ndarray],
    cams: Mapping[str, np.ndarray],
    masks: np.ndarray | None = None,
    row_labels: Sequence[str] | None = None,
    size: float = 1.9,
    show_input: bool = True,
) -> Figure:
    """A grid: one row per image, the input then one column per map.

    Parameters
    ----------
    images : ndarray (N, S, S, 3) or mapping
        What the network saw; a mapping gives each column (key of ``cams``)
        its own images (segmented and raw models see different inputs).
    cams : mapping of column title to ``(N, S, S)`` maps
        Titles such as ``"Grad-CAM"`` (methods of one model, the paper's
        Figure 8) or ``"raw / HiResCAM"`` (models, Figure 9).
    masks : ndarray of bool (N, S, S), optional
        The nucleus, outlined in cyan on every panel.
    row_labels : sequence of str, optional
        Shown left of each row.
    size : float
        Inches per panel.
    show_input : bool
        Start each row with the input of the first column.
    """
    import matplotlib.pyplot as plt

    from leukolib.plotting import draw_contour

    keys = list(cams)
    n = len(next(iter(cams.values())))
    ncols = len(keys) + int(show_input)
    fig, axes = plt.subplots(max(n, 1), ncols, figsize=(size * ncols, size * max(n, 1) + 0.3),
                             squeeze=False)
    for r in range(n):
        m = None if masks is None else masks[r]
        panels = []
        if show_input:
            img = _pick(images, keys[0])[r]
            panels.append(("input", img if m is None else draw_contour(img, m)))
        panels += [(k, cam_overlay(_pick(images, k)[r], cams[k][r], m)) for k in keys]
        for c, (title, rgb) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(rgb)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
        if row_labels is not None:
            axes[r, 0].set_ylabel(str(row_labels[r]), fontsize=8)
    fig.tight_layout()
    return fig


def plot_localization(summary: pd.DataFrame, metric: str = "energy_nucleus",
                      chance: str | None = "area_nucleus",
                      reference: str | None = "grid_nucleus",
                      best: str | None = "best_nucleus", ax=None):
    """Point ranges of ``metric`` (mean and interval) per model, one colour per method.

    Parameters
    ----------
    summary : DataFrame
        Tidy rows of :func:`leukolib.explain.report.summarize`: ``model,
        method, metric, mean, ci_low, ci_high``.
    metric : str
    chance : str, optional
        A metric drawn as a grey tick per model: the share a flat map would get.
    reference : str, optional
        A metric drawn as a grey cross: the share of the nucleus mask smoothed
        to the maps' grid
        (:func:`~leukolib.explain.localization.grid_smoothed_mask`), not a bound.
    best : str, optional
        A metric drawn as a grey star: the highest share any map of the grid
        can reach (:func:`~leukolib.explain.localization.grid_best_share`).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [("m", "gradcam", "energy_nucleus", 0.5), ("m", "gradcam", "area_nucleus", 0.2),
    ...         ("m", "gradcam", "best_nucleus", 0.8)]
    >>> s = pd.DataFrame(rows, columns=["model", "method", "metric", "mean"])
    >>> s = s.assign(ci_low=s["mean"] - 0.1, ci_high=s["mean"] + 0.1)
    >>> ax = plot_localization(s)
    >>> sorted(t.get_text() for t in ax.get_legend().get_texts())
    ['Grad-CAM', 'area (a flat map)', 'best map on the grid']
    >>> import matplotlib.pyplot as plt; plt.close(ax.figure)
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    s = summary[summary["metric"] == metric]
    models = list(dict.fromkeys(s["model"]))
    methods = list(dict.fromkeys(s["method"]))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 0.5 * len(models) + 1.2))
    colors = dict(zip(methods, sns.color_palette("colorblind", len(methods)), strict=True))
    offsets = np.linspace(-0.3, 0.3, len(methods)) if len(methods) > 1 else [0.0]
    for k, (method, off) in enumerate(zip(methods, offsets, strict=True)):
        g = s[s["method"] == method].set_index("model").reindex(models)
        y = np.arange(len(models)) + off
        ax.errorbar(g["mean"], y, xerr=[g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]],
                    fmt="o", ms=4, capsize=2, color=colors[method], label=method_label(method),
                    zorder=3 + k)
    references = ((chance, "|", "area (a flat map)"),
                  (reference, "x", "nucleus smoothed to the grid"),
                  (best, "*", "best map on the grid"))
    for name, marker, label in references:
        if name is not None and (summary["metric"] == name).any():
            c = summary[summary["metric"] == name].groupby("model")["mean"].mean()
            ax.scatter(c.reindex(models), np.arange(len(models)), marker=marker, s=120,
                       color="0.45", zorder=2, label=label)
    ax.set_yticks(np.arange(len(models)), models, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(metric.replace("_", " ") + " (mean and 95 % interval over test images)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), framealpha=0.9)
    ax.figure.tight_layout()
    return ax


def plot_curves(curves: pd.DataFrame, axes=None):
    """Mean deletion (left) and insertion (right) curves, one line per method."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, name in zip(axes, ("deletion", "insertion"), strict=True):
        for method, g in curves[curves["curve"] == name].groupby("method", sort=False):
            style = ":" if method == "random" else "-"
            ax.plot(g["fraction"], g["probability"], style, marker="o", ms=3,
                    label=method_label(method))
        ax.set_xlabel(f"fraction of pixels {'removed' if name == 'deletion' else 'inserted'}")
        ax.set_title(f"{name} ({'lower' if name == 'deletion' else 'higher'} is better)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probability of the explained class")
    axes[1].legend(fontsize=8)
    return axes


def plot_reliability(tables: Mapping[str, pd.DataFrame], axes=None, title: str = ""):
    """Reliability diagrams side by side (e.g. ``{"before": t0, "after T": t1}``).

    Bars: the accuracy of each confidence bin (width of the bin); the
    diagonal is perfect calibration; the number of images is written on
    each bar.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(tables), figsize=(3.4 * len(tables), 3.4), squeeze=False)
        axes = axes[0]
    for ax, (label, t) in zip(axes, tables.items(), strict=True):
        used = t[t["n"] > 0]
        ax.bar(used["low"], used["accuracy"], width=used["high"] - used["low"], align="edge",
               color="#7b5ea7", alpha=0.75, edgecolor="white", label="accuracy")
        ax.plot([0, 1], [0, 1], "--", color="0.4", lw=1)
        for _, r in used.iterrows():
            ax.text((r["low"] + r["high"]) / 2, min(r["accuracy"] + 0.02, 0.95), str(int(r["n"])),
                    ha="center", fontsize=6)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_title(f"{title} {label}".strip(), fontsize=9)
    axes[0].set_ylabel("accuracy")
    return axes


def plot_cascade(frame: pd.DataFrame, ax=None, threshold: float | None = None):
    """Mean rank correlation per method as the network is randomized from the top."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    stages = list(dict.fromkeys(frame["randomized"]))
    for method, g in frame.groupby("method", sort=False):
        m = g.groupby("randomized")["spearman"].mean().reindex(stages)
        ax.plot(range(len(stages)), m.to_numpy(), marker="o", label=method_label(method))
    if threshold is not None:
        ax.axhline(threshold, color="0.5", ls="--", lw=1)
    ax.set_xticks(range(len(stages)), [f"+{s}" if i else s for i, s in enumerate(stages)],
                  fontsize=8)
    ax.set_xlabel("randomized down to")
    ax.set_ylabel("rank correlation with the trained map")
    ax.set_ylim(-0.2, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
