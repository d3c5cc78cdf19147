"""Figures of the classification chapter: inputs, confusion matrices, intervals, the shortcut test.

The learning curves are the shared :func:`leukolib.plotting.plot_learning_curves`
(``score="acc"``) of a run's :meth:`~leukolib.classification.run.ClassifierRun.history`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_accuracies", "plot_confusions", "plot_shortcut", "show_examples", "show_inputs"]


def show_inputs(columns: Mapping[str, Sequence[np.ndarray]], titles: Sequence[str] | None = None,
                size: float = 1.9) -> Figure:
    """A grid of images: one column per kind of input, one row per image.

    Parameters
    ----------
    columns : mapping
        ``column title -> list of (S, S, 3) uint8 images`` (same length each).
    titles : sequence of str, optional
        One label per row (e.g. the class).
    """
    import matplotlib.pyplot as plt

    names = list(columns)
    n = len(columns[names[0]])
    fig, axes = plt.subplots(n, len(names), figsize=(size * len(names), size * n),
                             squeeze=False)
    for c, name in enumerate(names):
        for r, img in enumerate(columns[name]):
            ax = axes[r, c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0 and titles is not None:
                ax.set_ylabel(titles[r], fontsize=9)
    fig.tight_layout()
    return fig


def plot_confusions(records: Mapping[str, Mapping[str, Any]], ncols: int = 4,
                    size: float = 2.6) -> Figure:
    """Test-split confusion matrices (fold average) of each model, counts annotated."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    keys = list(records)
    nrows = int(np.ceil(len(keys) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 0.95),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, key in zip(axes.ravel(), keys, strict=False):
        r = records[key]
        names = list(r["config"]["class_names"])
        cm = np.asarray(r["test"]["confusion"])
        sns.heatmap(cm, annot=True, fmt="d", cbar=False, cmap="Blues", ax=ax, square=True,
                    xticklabels=names, yticklabels=names, annot_kws={"fontsize": 8})
        ax.axis("on")
        ax.set_title(f"{key}\nacc {r['test']['accuracy']:.3f}", fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_accuracies(table: pd.DataFrame, chance: float | None = None, ax=None):
    """Test accuracy with its exact interval, one row per model (``test acc``, ``CI low/high``).

    Segmented models in one colour, raw in another, anything else (baselines)
    in grey.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 0.35 * len(table) + 1.2))
    t = table.iloc[::-1]
    y = np.arange(len(t))
    colors = ["#1b7f79" if str(k).startswith("segmented") else
              "#c2571a" if str(k).startswith("raw") else "#777777" for k in t.index]
    for yi, (_, row), color in zip(y, t.iterrows(), colors, strict=True):
        err = [[max(row["test acc"] - row["CI low"], 0)],
               [max(row["CI high"] - row["test acc"], 0)]]
        ax.errorbar(row["test acc"], yi, xerr=err, fmt="o", color=color, elinewidth=2, capsize=3)
    ax.set_yticks(y, [str(k) for k in t.index], fontsize=8)
    if chance is not None:
        ax.axvline(chance, color="k", lw=0.8, ls=":", label="chance")
        ax.legend(fontsize=8, loc="lower left")
    ax.set_xlabel("test accuracy (fold average) with its 95 % exact interval")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_shortcut(frame: pd.DataFrame, chance: float | None = None, ax=None):
    """Accuracy of each model on test smears whose background cue holds, vanishes, reverses."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    for key, g in frame.groupby("model", sort=False):
        g = g.sort_values("shortcut", ascending=False)
        color = "#1b7f79" if str(key).startswith("segmented") else "#c2571a"
        x = np.arange(len(g))
        ax.errorbar(x, g["accuracy"], yerr=np.clip(np.vstack(
            [g["accuracy"] - g["CI low"], g["CI high"] - g["accuracy"]]), 0, None),
            marker="o", capsize=3, color=color, label=key)
        ax.set_xticks(x, [{1.0: "holds (1)", 0.0: "absent (0)", -1.0: "reversed (-1)"}.get(
            float(s), f"{s:g}") for s in g["shortcut"]])
    if chance is not None:
        ax.axhline(chance, color="k", lw=0.8, ls=":", label="chance")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("background cue at test (trained where it holds)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def show_examples(dataset, indices: Sequence[int] | None, profile="cpu",
                  segmenter: str = "handcrafted", size: float = 1.9) -> Figure:
    """Each image beside its segmented and its raw network view (what the two kinds of model see).

    The views are those of :func:`~leukolib.classification.train_grid`'s
    defaults: the profile's sizes and the dataset's default crop.

    Parameters
    ----------
    dataset : Dataset
    indices : sequence of int, optional
        Default: the first image of each class.
    profile : str or Profile
    segmenter : str
        The mask source (``"handcrafted"`` or ``"oracle"``).
    """
    from leukolib.classification.inputs import InputSpec, default_crop, input_size, network_view
    from leukolib.classification.masks import MaskSource
    from leukolib.plotting import draw_contour
    from leukolib.profiles import get_profile

    c = get_profile(profile).classification
    crop, crop_min = default_crop(dataset.name)
    side, resize = input_size(dataset, c.image_size, c.resize, crop, crop_min, c.native_size)
    spec = {"image_size": side, "resize": resize, "crop": crop, "crop_min": crop_min}
    if indices is None:
        labels = np.asarray(dataset.labels)
        indices = [int(np.flatnonzero(labels == k)[0]) for k in np.unique(labels)]
    masks = MaskSource(segmenter)
    first = "image (nucleus mask in cyan)"
    cols: dict[str, list[np.ndarray]] = {first: [], "segmented input": [], "raw input": []}
    titles = []
    for i in indices:
        s = dataset[int(i)]
        m = masks.mask(s)
        cols[first].append(draw_contour(s.image, m, thickness=max(1, s.image.shape[0] // 96)))
        for kind in ("segmented", "raw"):
            cols[f"{kind} input"].append(network_view(s.image, m, InputSpec(kind, **spec)).image)
        titles.append(dataset.class_names[s.label] if s.label is not None else s.id)
    return show_inputs(cols, titles, size)
