"""Figures of the robustness stage: the corruptions on an image, and scores against severity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leukolib.robustness.corruptions import CORRUPTIONS, SEVERITIES, corrupt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_sweep", "show_corruptions"]


def show_corruptions(
    image: np.ndarray,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    key: str = "",
    size: float = 1.3,
) -> Figure:
    """One image under every corruption (rows) and severity (columns), the clean image first.

    Each panel's title is ``severity: parameter`` (the parameter at this
    image's size; its unit under the row's name).
    """
    import matplotlib.pyplot as plt

    names = list(corruptions or CORRUPTIONS)
    cols = [0, *severities]
    fig, axes = plt.subplots(len(names), len(cols), figsize=(size * len(cols), size * len(names)),
                             squeeze=False)
    for r, name in enumerate(names):
        c = CORRUPTIONS[name]
        for ax, sev in zip(axes[r], cols, strict=True):
            ax.imshow(corrupt(image, name, sev, seed, key))
            ax.set_xticks([])
            ax.set_yticks([])
            value = "clean" if sev == 0 else f"{sev}: {c.parameter(sev, image.shape)}"
            ax.set_title(value, fontsize=8)
        axes[r, 0].set_ylabel(f"{c.label}\n({c.unit})", fontsize=8)
    fig.tight_layout()
    return fig


def plot_sweep(
    curves: pd.DataFrame,
    y: str = "accuracy",
    hue: str = "model",
    style: str | None = "way",
    col_wrap: int = 2,
    height: float = 2.4,
    ylabel: str | None = None,
) -> Figure:
    """Score against severity, one panel per corruption (seaborn), with interval bands.

    Parameters
    ----------
    curves : DataFrame
        Columns ``corruption, severity``, ``y`` and, when present,
        ``<y>_low`` and ``<y>_high`` (drawn as bands), ``hue`` and ``style``;
        severity 0 is the clean score.
    y, hue, style : str
        Columns of the score, of the colours and of the line styles.
    """
    import seaborn as sns

    data = curves.copy()
    order = [CORRUPTIONS[n].label for n in CORRUPTIONS if n in set(data["corruption"])]
    data["corruption"] = data["corruption"].map(lambda n: CORRUPTIONS[n].label
                                                if n in CORRUPTIONS else n)
    order += [n for n in dict.fromkeys(data["corruption"]) if n not in order]
    style = style if style in data and data[style].nunique() > 1 else None
    levels = list(dict.fromkeys(data[hue]))
    palette = dict(zip(levels, sns.color_palette("colorblind", len(levels)), strict=True))
    # solid: the realistic pipeline (raw, or corrupted before segmentation); dashed: after
    dashes = {w: (4, 2) if w == "after" else "" for w in data[style].unique()} if style else True
    g = sns.relplot(data=data, x="severity", y=y, hue=hue, hue_order=levels, palette=palette,
                    style=style, dashes=dashes, col="corruption", col_order=order,
                    kind="line", marker="o", errorbar=None, col_wrap=min(col_wrap, len(order)),
                    height=height, aspect=1.2, facet_kws={"sharey": True})
    lo, hi = f"{y}_low", f"{y}_high"
    if lo in data and hi in data:
        for name, ax in g.axes_dict.items():
            part = data[data["corruption"] == name]
            for keys, group in part.groupby([hue, style] if style else [hue], sort=False):
                group = group.sort_values("severity")
                ax.fill_between(group["severity"], group[lo], group[hi], alpha=0.12, lw=0,
                                color=palette[keys[0]])
    sns.move_legend(g, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False,
                    title=None)
    g.set_titles("{col_name}")
    g.set_axis_labels("severity (0 = clean)", ylabel or y)
    g.set(xticks=sorted(data["severity"].unique()))
    return g.figure
