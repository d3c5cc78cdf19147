"""A dataset's network views, computed once for every model that shares them.

:func:`build_views` reads every image of a dataset once: its fingerprint,
its nucleus mask (from a :class:`~leukolib.classification.masks.MaskSource`,
when an input needs one) and its view for each requested
:class:`~leukolib.classification.inputs.InputSpec`. The eight models of a grid
share two views (segmented and raw), so the images are read and segmented once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from leukolib.classification.inputs import InputSpec, network_view
from leukolib.classification.masks import MaskSource
from leukolib.data.base import Dataset
from leukolib.data.duplicates import thumbnail, thumbnail_groups
from leukolib.data.fingerprint import image_fingerprint

__all__ = ["ImageSet", "build_views", "spec_key"]


def spec_key(spec: InputSpec) -> str:
    """A short name of an input spec, e.g. ``"segmented-64-crop0.25-gray"``.

    Examples
    --------
    >>> spec_key(InputSpec("raw", 64, 72))
    'raw-64-72'
    """
    key = f"{spec.input}-{spec.image_size}-{spec.resize}"
    if spec.crop is not None:
        key += f"-crop{spec.crop:g}" + (f"min{spec.crop_min:g}" if spec.crop_min else "")
    return key + ("-gray" if spec.color == "gray" else "")


@dataclass
class ImageSet:
    """Everything training needs from a dataset, in dataset order.

    Attributes
    ----------
    name : str
        The dataset's name.
    ids : list of str
    labels : ndarray of int
    class_names : tuple of str
    fingerprints : list of str
    groups : list or None
        The dataset's own groups.
    views : dict
        ``spec_key -> uint8 (N, S, S, 3)``.
    masks : dict
        ``spec_key -> bool (N, S, S)`` nucleus masks at input resolution (or ``None``).
    segmenter : dict or None
        The mask source's record (:meth:`SegmenterSpec.to_dict`).
    empty_masks : list of str
        Ids of images whose nucleus mask came out empty.
    thumbnails : ndarray of float16, shape (N, T, T)
        The near-duplicate thumbnails of the original images
        (:func:`leukolib.data.duplicates.thumbnail`).
    near_duplicates : ndarray of int
        Near-duplicate group of every image (identical pixels included):
        what every split keeps together.
    """

    name: str
    ids: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]
    fingerprints: list[str]
    groups: list | None
    views: dict[str, np.ndarray] = field(default_factory=dict)
    masks: dict[str, np.ndarray | None] = field(default_factory=dict)
    segmenter: dict | None = None
    empty_masks: list[str] = field(default_factory=list)
    thumbnails: np.ndarray | None = None
    near_duplicates: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


def build_views(
    dataset: Dataset,
    specs: Mapping[str, InputSpec] | InputSpec,
    masks: MaskSource | None = None,
    progress: bool = True,
) -> ImageSet:
    """Read a labelled dataset once into network views.

    Parameters
    ----------
    dataset : Dataset
        With class labels.
    specs : InputSpec or mapping of key to InputSpec
        The views to compute (a single spec is keyed by :func:`spec_key`).
    masks : MaskSource, optional
        Required when a spec needs a mask.
    progress : bool

    Returns
    -------
    ImageSet

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> ds = load_dataset("synthetic", n_images=3, size=64, seed=0)
    >>> s = build_views(ds, InputSpec("segmented", 32, 36), MaskSource("oracle"), progress=False)
    >>> s.views["segmented-32-36"].shape, s.masks["segmented-32-36"].shape
    ((3, 32, 32, 3), (3, 32, 32))
    """
    if isinstance(specs, InputSpec):
        specs = {spec_key(specs): specs}
    labels = dataset.labels
    if labels is None:
        raise ValueError(f"{dataset.name}: a classifier needs class labels, the dataset has none")
    need_mask = any(s.needs_mask for s in specs.values())
    if need_mask and masks is None:
        raise ValueError("a segmented or cropped input needs a MaskSource")
    out = ImageSet(dataset.name, [str(i) for i in dataset.ids], np.asarray(labels, np.int64),
                   tuple(dataset.class_names), [], dataset.groups,
                   segmenter=masks.spec.to_dict() if (masks is not None and need_mask) else None)
    views = {k: [] for k in specs}
    vmasks = {k: [] for k in specs}
    thumbs = []
    for s in tqdm(dataset, total=len(dataset), desc=f"prepare {dataset.name}",
                  disable=not progress, leave=False):
        fp = image_fingerprint(s.image)
        out.fingerprints.append(fp)
        thumbs.append(thumbnail(s.image))
        m = masks.mask(s, fp) if need_mask else None
        if m is not None and not m.any():
            out.empty_masks.append(str(s.id))
        for k, spec in specs.items():
            v = network_view(s.image, m, spec)  # raw views keep the mask too, for figures
            views[k].append(v.image)
            vmasks[k].append(v.mask)
    for k in specs:
        out.views[k] = np.stack(views[k])
        out.masks[k] = None if vmasks[k][0] is None else np.stack(vmasks[k])
    out.thumbnails = np.stack(thumbs).astype(np.float16)
    out.near_duplicates = thumbnail_groups(np.stack(thumbs), out.fingerprints)
    return out
