"""Datasets at the size a run profile takes them."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from leukolib.data.base import Dataset, Subset
from leukolib.data.datasets import load_dataset
from leukolib.profiles import TUNING_SEED_BASE, Profile, get_profile

__all__ = ["limit_dataset", "profile_dataset"]


def limit_dataset(dataset: Dataset, max_images: int | None, seed: int) -> Dataset:
    """A seeded random subset of at most ``max_images`` samples, stratified when labelled.

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> ds = load_dataset("synthetic", n_images=9, size=64, seed=0)
    >>> len(limit_dataset(ds, 6, seed=0)), limit_dataset(ds, None, 0) is ds
    (6, True)
    """
    n = len(dataset)
    if max_images is None or n <= max_images:
        return dataset
    labels = dataset.labels
    idx = None
    if labels is not None and len(np.unique(labels)) > 1:
        from sklearn.model_selection import train_test_split

        try:
            idx, _ = train_test_split(
                np.arange(n), train_size=max_images, stratify=labels, random_state=seed
            )
        except ValueError:  # a class too rare to stratify at this size: plain sampling
            idx = None
    if idx is None:
        idx = np.random.default_rng(seed).choice(n, size=max_images, replace=False)
    return Subset(dataset, sorted(int(i) for i in idx))


def profile_dataset(
    name: str,
    root: str | os.PathLike | None,
    profile: str | Profile,
    seed: int = 0,
    *,
    stage: str = "data",
    **kwargs: Any,
) -> Dataset:
    """A dataset at the size a profile runs it.

    ``synthetic``: the profile's number and size of smears (those of its
    ``classification`` stage with ``stage="classification"``), generated
    with ``seed``; a real dataset: a seeded, stratified subset of at most the
    profile's ``max_images`` (all of it under ``cpu`` and ``paper``).

    Examples
    --------
    >>> ds = profile_dataset("synthetic", None, "smoke")
    >>> len(ds), ds[0].image.shape
    (12, (128, 128, 3))
    """
    prof = get_profile(profile)
    if name == "synthetic":
        if seed >= TUNING_SEED_BASE:
            raise ValueError(f"synthetic seeds from {TUNING_SEED_BASE} up are reserved for "
                             f"choosing settings (leukolib.profiles), got {seed}")
        sizes = prof.classification if stage == "classification" else prof.data
        options = {"n_images": sizes.synthetic_images, "size": sizes.synthetic_size, "seed": seed}
        return load_dataset("synthetic", **{**options, **kwargs})
    return limit_dataset(load_dataset(name, root, **kwargs), prof.data.max_images, seed)
