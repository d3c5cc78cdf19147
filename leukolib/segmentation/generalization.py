"""U-Nets applied across datasets: the generalization matrix.

A U-Net trained on one dataset and applied to another (all its fold models
averaged; on its own dataset, out-of-fold) tells whether the segmentation is
robust to another stain, scanner and annotator, the question a user with new
images has. The handcrafted method needs no training and is one more row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from leukolib.data.base import Dataset
from leukolib.segmentation.evaluate import (
    Evaluation,
    Methods,
    evaluate_segmentation,
    standard_methods,
)

__all__ = ["HANDCRAFTED_ROW", "generalization", "matrix", "modes", "run_dataset"]

#: Row label of the handcrafted method in a generalization matrix.
HANDCRAFTED_ROW = "handcrafted (no training)"


def generalization(
    runs: Mapping[str, Any],
    datasets: Mapping[str, Dataset],
    methods: Callable[[Any], Methods] = standard_methods,
    reuse: Sequence[Evaluation] = (),
    progress: bool = True,
) -> Evaluation:
    """Evaluate every U-Net run on every dataset.

    Parameters
    ----------
    runs : mapping of str to UNetRun or path
        Row labels (the datasets the runs were trained on) to runs.
    datasets : mapping of str to Dataset
        Column labels to datasets.
    methods : callable
        ``methods(predictor) -> Methods``, default :func:`standard_methods`.
    reuse : sequence of Evaluation
        Evaluations already done, reused for the (run, dataset) pairs they hold.
    progress : bool

    Returns
    -------
    Evaluation
        With ``trained_on`` set to the run's label, ``dataset`` to the column's.
    """
    from leukolib.segmentation.unet import UNetRun, load_unet_run

    have = {(t, d): g for e in reuse for (t, d), g in e.per_image.groupby(
        ["trained_on", "dataset"], sort=False)}
    parts = []
    for label, r in runs.items():
        run = r if isinstance(r, UNetRun) else load_unet_run(r)
        for dname, ds in datasets.items():
            hit = have.get((label, dname))
            if hit is not None and list(dict.fromkeys(hit["id"])) == list(ds.ids):
                parts.append(Evaluation(hit, pd.DataFrame()))
                continue
            ev = evaluate_segmentation(ds, methods(run.predictor_for(ds)), trained_on=label,
                                       progress=progress)
            ev.per_image["dataset"] = dname
            ev.agreement["dataset"] = dname
            parts.append(ev)
    return Evaluation.concat(parts)


def matrix(ev: Evaluation, method: str = "DEEP", metric: str = "iou",
           handcrafted: bool = True) -> pd.DataFrame:
    """Mean ``metric`` of ``method``: rows = trained on, columns = evaluated on.

    With ``handcrafted``, one more row :data:`HANDCRAFTED_ROW` (HM needs no
    training, so its row is the same whatever the run).
    """
    p = ev.per_image
    rows, cols = list(dict.fromkeys(p["trained_on"])), list(dict.fromkeys(p["dataset"]))
    m = p[p["method"] == method].groupby(["trained_on", "dataset"])[metric].mean()
    out = m.unstack("dataset").reindex(index=rows, columns=cols)
    if handcrafted:
        hm = p[p["method"] == "HM"].drop_duplicates(["dataset", "id"])
        out.loc[HANDCRAFTED_ROW] = hm.groupby("dataset")[metric].mean().reindex(cols)
    out.index.name, out.columns.name = "trained on", "evaluated on"
    return out


def modes(ev: Evaluation) -> pd.DataFrame:
    """The U-Net's mode in each cell (``out-of-fold`` on the diagonal, ``fold-average`` off)."""
    p = ev.per_image[ev.per_image["method"] != "HM"]
    out = p.groupby(["trained_on", "dataset"], sort=False)["mode"].first().unstack("dataset")
    out.index.name, out.columns.name = "trained on", "evaluated on"
    return out


def run_dataset(run: Any, max_images: int | None = None, seed: int = 0,
                root: str | os.PathLike | None = None,
                base: str | os.PathLike | None = None) -> Dataset | None:
    """The dataset a U-Net run was trained on, reloaded from the root in its record.

    Parameters
    ----------
    run : UNetRun
    max_images, seed :
        The profile's cap (:func:`leukolib.data.limit_dataset`).
    root : path, optional
        The dataset folder, when the recorded one is not valid here.
    base : path, optional
        Folder a recorded relative root is taken from (default: the current one).

    Returns
    -------
    Dataset or None
        ``None`` for generated data, or when the folder cannot be read here.
    """
    from leukolib.data import limit_dataset, load_dataset
    from leukolib.errors import LeukolibError

    info = run.record.get("dataset", {})
    name, folder = info.get("name"), root or info.get("root")
    if not name or not folder or name == "synthetic":
        return None
    path = Path(folder)
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    try:
        return limit_dataset(load_dataset(name, path), max_images, seed)
    except (LeukolibError, OSError):
        return None
