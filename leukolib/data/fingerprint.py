"""Image fingerprints, and the groups that keep duplicates together.

Public datasets hold exact duplicates under different names (JTSC ``112`` and
``139``, ALL-IDB2 ``Im223_0`` and ``Im257_0``). A split that puts twins on
both sides trains on the test image. Every split of leukolib is therefore made
by **group** (:mod:`leukolib.folds`): images with the same pixels always share
a group, so do near duplicates (the same cell shifted or exposed differently,
found by :mod:`leukolib.data.duplicates`), and a dataset's own identifiers
(patients, smears) can merge groups further (:func:`split_groups`).

Examples
--------
>>> import numpy as np
>>> a, b = np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8)
>>> duplicate_groups([image_fingerprint(x) for x in (a, b, a)]).tolist()
[0, 1, 0]
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from leukolib.data.base import Dataset

__all__ = [
    "dataset_fingerprints",
    "duplicate_groups",
    "file_sha256",
    "image_fingerprint",
    "merge_groups",
    "split_groups",
]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks (weights files, dataset manifests).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(delete=False) as f:
    ...     _ = f.write(b"abc")
    >>> file_sha256(f.name)[:12]
    'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def image_fingerprint(image: np.ndarray) -> str:
    """A short hash of an image's pixels and shape (16 hex digits of SHA-1)."""
    a = np.ascontiguousarray(image)
    h = hashlib.sha1(str(a.shape).encode())
    h.update(a.tobytes())
    return h.hexdigest()[:16]


def dataset_fingerprints(dataset: Dataset) -> list[str]:
    """The fingerprint of every image of ``dataset`` (decodes each image once)."""
    return [image_fingerprint(s.image) for s in dataset]


def duplicate_groups(fingerprints: Sequence[str]) -> np.ndarray:
    """Group index of every image: images with the same fingerprint share one.

    Groups are numbered in order of first appearance.
    """
    first: dict[str, int] = {}
    return np.array([first.setdefault(f, len(first)) for f in fingerprints], dtype=np.int64)


def merge_groups(*labelings: Sequence[Hashable] | None) -> np.ndarray:
    """Groups that keep together any two samples sharing a label in any labelling.

    E.g. ``merge_groups(duplicate_groups(prints), patient_ids)``: two images
    are in one group when they are duplicates **or** come from one patient
    (transitively). ``None`` labellings are ignored.

    Examples
    --------
    >>> merge_groups([0, 1, 2, 3], ["p", "q", "p", "r"], [5, 6, 7, 6]).tolist()
    [0, 1, 0, 1]
    """
    given = [list(x) for x in labelings if x is not None]
    if not given:
        raise ValueError("no labelling to merge")
    n = len(given[0])
    if any(len(x) != n for x in given):
        raise ValueError("every labelling must have one label per sample")
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for labels in given:
        seen: dict[Hashable, int] = {}
        for i, lab in enumerate(labels):
            j = seen.setdefault(lab, i)
            parent[root(i)] = root(j)
    return duplicate_groups([str(root(i)) for i in range(n)])


def split_groups(
    fingerprints: Sequence[str],
    dataset_groups: Sequence[Hashable] | None = None,
    groups: Sequence[Hashable] | None = None,
    *,
    near_duplicates: Sequence[Hashable] | None,
) -> np.ndarray:
    """The groups a split must keep together: duplicates, the dataset's and the caller's groups.

    Parameters
    ----------
    fingerprints : sequence of str
        One per sample (:func:`image_fingerprint`): identical pixels share a group.
    dataset_groups : sequence, optional
        The dataset's own identifiers (:attr:`leukolib.data.Dataset.groups`).
    groups : sequence, optional
        Identifiers given by the caller (e.g. patient IDs from a file).
    near_duplicates : sequence or None
        Near-duplicate groups (:func:`leukolib.data.near_duplicate_groups`:
        the same cell shifted or exposed differently). Required, so that no
        caller forgets them; ``None`` groups exact duplicates only, for data
        known to hold none (or to show what a split without them does).

    Returns
    -------
    ndarray of int
        Group index of every sample.

    Examples
    --------
    >>> split_groups(["a", "b", "a", "c"], near_duplicates=[0, 1, 2, 1]).tolist()
    [0, 1, 0, 1]
    """
    return merge_groups(duplicate_groups(fingerprints), dataset_groups, groups, near_duplicates)
