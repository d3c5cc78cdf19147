"""Per-image statistics of a dataset: sizes, mask areas, classes."""

from __future__ import annotations

import pandas as pd
from tqdm.auto import tqdm

from leukolib.data.base import Dataset

__all__ = ["describe", "class_balance", "pick_per_class", "summary_numbers"]


def describe(dataset: Dataset, progress: bool = True) -> pd.DataFrame:
    """One row per image: id, class, height, width and mask areas (pixels).

    Parameters
    ----------
    dataset : Dataset
    progress : bool
        Show a progress bar (images are decoded).

    Returns
    -------
    pandas.DataFrame
        Columns ``id, label, class, height, width, nucleus_px, cytoplasm_px,
        nucleus_fraction`` (areas are missing when the dataset has no masks).
    """
    rows = []
    for s in tqdm(dataset, total=len(dataset), disable=not progress, desc=dataset.name):
        h, w = s.image.shape[:2]
        nuc = None if s.nucleus is None else int(s.nucleus.sum())
        cyt = None if s.cytoplasm is None else int(s.cytoplasm.sum())
        rows.append(
            {
                "id": s.id,
                "label": s.label,
                "class": dataset.class_names[s.label] if s.label is not None else None,
                "height": h,
                "width": w,
                "nucleus_px": nuc,
                "cytoplasm_px": cyt,
                "nucleus_fraction": None if nuc is None else nuc / (h * w),
            }
        )
    return pd.DataFrame(rows)


def class_balance(dataset: Dataset) -> pd.DataFrame:
    """Number and share of images per class (empty frame when unlabelled)."""
    labels = dataset.labels
    if labels is None:
        return pd.DataFrame(columns=["class", "images", "share"])
    counts = pd.Series(labels).value_counts().reindex(range(len(dataset.class_names)), fill_value=0)
    return pd.DataFrame(
        {
            "class": list(dataset.class_names),
            "images": counts.to_numpy(),
            "share": (counts / counts.sum()).round(3).to_numpy(),
        }
    )


def pick_per_class(dataset: Dataset, n_per_class: int = 2, seed: int = 0) -> list[int]:
    """Indices of up to ``n_per_class`` random samples of each class (or of the set).

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> ds = load_dataset("synthetic", n_images=9, size=96, seed=0)
    >>> len(pick_per_class(ds, 2))
    6
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = dataset.labels
    if labels is None:
        k = min(len(dataset), n_per_class * 4)
        return sorted(int(i) for i in rng.choice(len(dataset), size=k, replace=False))
    picked: list[int] = []
    for c in range(len(dataset.class_names)):
        idx = np.flatnonzero(labels == c)
        if idx.size:
            picked += sorted(int(i) for i in rng.choice(idx, min(n_per_class, idx.size), False))
    return picked


def summary_numbers(table: pd.DataFrame) -> dict[str, object]:
    """Key numbers of a :func:`describe` table (for a notebook's JSON)."""
    out: dict[str, object] = {
        "n_images": int(len(table)),
        "height": {"min": int(table.height.min()), "median": float(table.height.median()),
                   "max": int(table.height.max())},
        "width": {"min": int(table.width.min()), "median": float(table.width.median()),
                  "max": int(table.width.max())},
    }
    if table["class"].notna().all():
        out["class_counts"] = {str(k): int(v) for k, v in table["class"].value_counts().items()}
    if table["nucleus_fraction"].notna().all():
        by = table.groupby("class")["nucleus_fraction"] if "class_counts" in out else None
        out["nucleus_fraction_mean"] = float(table.nucleus_fraction.mean())
        if by is not None:
            out["nucleus_fraction_by_class"] = {str(k): float(v) for k, v in by.mean().items()}
    return out
