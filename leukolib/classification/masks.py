"""Nucleus masks for the segmented classifiers: which segmenter, cached, never trained on the test.

A segmented classifier sees the image masked by a nucleus mask from one of:

``handcrafted`` (the default)
    The paper's Algorithm 1 with the book's defaults: no training, so no
    image can leak.
``ensemble`` / ``unet``
    leukolib's ensemble (or the U-Net alone) with a U-Net run
    (``model=RUN_DIR``). The run must never have trained on a classifier test
    image: :meth:`MaskSource.check_unseen` compares the run's recorded
    fingerprints with the test images' and refuses otherwise;
    :func:`train_segmenter_for` trains one on the training-validation part
    only. On the images it trained on, the U-Net side answers out of fold
    (each image by the fold model that held it out).
``oracle``
    The dataset's own ground-truth masks: the ablation that asks what a
    perfect segmentation would give (new images have no ground truth).

Masks are computed once per image and segmenter: :class:`MaskSource` keeps
them in memory by image fingerprint and, given a folder, on disk as PNG
files (``<folder>/<segmenter key>/<version>/<fingerprint>.png``; the version hashes
leukolib's version, the handcrafted defaults and the segmenters' source), so the eight models
of a grid, a resumed run and the later chapters segment every image once.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leukolib.data.duplicates import (
    image_thumbnails,
    matches_against,
    thumbnail_groups,
)
from leukolib.data.fingerprint import image_fingerprint
from leukolib.data.sample import Sample
from leukolib.errors import LeukolibError

__all__ = [
    "SEGMENTER_NAMES",
    "MaskSource",
    "SegmenterSpec",
    "train_segmenter_for",
]

#: The mask sources a segmented classifier can use.
SEGMENTER_NAMES = ("handcrafted", "ensemble", "unet", "oracle")


class SegmenterError(LeukolibError, ValueError):
    """A segmenter that cannot be used for a classifier (unknown, leaking, no masks)."""


@dataclass(frozen=True)
class SegmenterSpec:
    """Which masks a segmented classifier uses.

    Attributes
    ----------
    name : {"handcrafted", "ensemble", "unet", "oracle"}
    model : str or None
        The U-Net run directory (``ensemble`` and ``unet``).
    options : dict
        Method options (e.g. ``{"fusion": "and"}`` for the ensemble).

    Examples
    --------
    >>> SegmenterSpec().key
    'handcrafted'
    >>> SegmenterSpec("ensemble")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    leukolib.classification.masks.SegmenterError: segmenter 'ensemble' needs a U-Net run ...
    """

    name: str = "handcrafted"
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in SEGMENTER_NAMES:
            raise SegmenterError(f"unknown segmenter {self.name!r}; choose one of "
                                 f"{', '.join(SEGMENTER_NAMES)}")
        if self.name in ("ensemble", "unet") and not self.model:
            raise SegmenterError(f"segmenter {self.name!r} needs a U-Net run (model=RUN_DIR)")
        if self.name in ("handcrafted", "oracle") and self.model:
            raise SegmenterError(f"segmenter {self.name!r} takes no model")

    @property
    def key(self) -> str:
        """A name for the cache: the method, its options and, for a U-Net, the run's identity."""
        parts = [self.name]
        if self.options:
            parts.append(hashlib.sha1(json.dumps(self.options, sort_keys=True).encode())
                         .hexdigest()[:8])
        if self.model:
            parts.append(_run_identity(Path(self.model)))
        return "-".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """For run records: the name, options, U-Net run (path and identity) and cache key."""
        return {"name": self.name, "model": self.model, "options": dict(self.options),
                "key": self.key}


def _segmenter_version() -> str:
    """A short hash of what makes a cached mask, a folder of the mask cache.

    leukolib's version, the handcrafted defaults and the segmenters' source:
    a changed default or method never reuses stale masks (the U-Net's own
    identity is in :attr:`SegmenterSpec.key`).

    Examples
    --------
    >>> len(_segmenter_version())
    10
    """
    from dataclasses import asdict

    from leukolib import __version__
    from leukolib.data.fingerprint import file_sha256
    from leukolib.segmentation import ensemble, fold_fusion, handcrafted, tta

    # the U-Net's views and the fold rules change the ensemble's masks without its source
    ident = {"leukolib": __version__, "handcrafted": asdict(handcrafted.HandcraftedParams()),
             "sources": [file_sha256(m.__file__) for m in (handcrafted, ensemble)],
             "tta": tta.TTA, "fold_fusion": fold_fusion.FOLD_FUSION}
    return hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _run_identity(run_dir: Path) -> str:
    """A short hash of a U-Net run's record: its config, creation time and training pixels."""
    from leukolib.runs import RunError, read_json

    path = run_dir.expanduser() / "run.json"
    if not path.is_file():
        raise SegmenterError(f"{run_dir}: no run.json (not a U-Net run directory)")
    try:
        rec = read_json(path)
    except RunError as exc:
        raise SegmenterError(str(exc)) from None
    ident = {"config": rec.get("config"), "created": rec.get("created"),
             "prints": (rec.get("dataset") or {}).get("fingerprints")}
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:10]


class MaskSource:
    """Nucleus masks of images by one segmenter, computed once per image.

    Parameters
    ----------
    spec : SegmenterSpec or str
    cache_dir : path, optional
        Folder of the on-disk cache (``None``: memory only).
    device : str, optional
        Of the U-Net.
    """

    def __init__(self, spec: SegmenterSpec | str = "handcrafted",
                 cache_dir: str | os.PathLike | None = None, device: str | None = None) -> None:
        self.spec = SegmenterSpec(spec) if isinstance(spec, str) else spec
        self.cache_dir = None if cache_dir is None \
            else Path(cache_dir) / self.spec.key / _segmenter_version()
        self.device = device
        self._memory: dict[str, np.ndarray] = {}
        self._segmenter = None
        self._unet = None

    @property
    def unet(self):
        """The U-Net run (``ensemble`` and ``unet``), loaded on first use; else ``None``."""
        if self._unet is None and self.spec.model:
            from leukolib.segmentation.unet import load_unet_run

            self._unet = load_unet_run(self.spec.model, device=self.device)
        return self._unet

    def check_unseen(self, fingerprints: Sequence[str], ids: Sequence[str],
                     thumbnails: np.ndarray | None = None) -> None:
        """Refuse a U-Net run that trained (or selected) on any of these images or a near duplicate.

        Parameters
        ----------
        fingerprints : sequence of str
            The images' fingerprints (identical pixels).
        ids : sequence of str
            Their names, for the message.
        thumbnails : ndarray, optional
            Their near-duplicate thumbnails (:attr:`ImageSet.thumbnails`):
            without them only identical pixels are recognised.

        Raises
        ------
        SegmenterError
            Naming the images (by id) the run saw, and how to get a clean run.
        """
        if self.unet is None:
            return
        # every image of a k-fold run is in the training part of some fold
        trained = set(((self.unet.record.get("dataset") or {}).get("fingerprints") or {}).values())
        seen = [i for f, i in zip(fingerprints, ids, strict=True) if f in trained]
        kept = self.unet.training_thumbnails
        if thumbnails is not None and kept is not None and len(thumbnails):
            _, ref, rule = kept
            hits = matches_against(np.asarray(thumbnails, np.float32), ref, rule)
            seen += [i for i, h in zip(ids, hits, strict=True) if len(h) and i not in seen]
        if seen:
            shown = ", ".join(map(str, seen[:5])) + (" ..." if len(seen) > 5 else "")
            raise SegmenterError(
                f"{self.spec.model}: this U-Net run trained on {len(seen)} of the classifier's "
                f"test images ({shown}); its masks would carry what it learned on them. Train "
                "one on the training-validation part only (train_segmenter_for) or use the "
                "handcrafted segmenter")

    def _build(self):
        if self._segmenter is None and self.spec.name != "oracle":
            from leukolib.segmentation import get_method

            model = self.unet if self.spec.model else None
            self._segmenter = get_method(self.spec.name, model=model, **self.spec.options)
        return self._segmenter

    def _compute(self, sample: Sample) -> np.ndarray:
        if self.spec.name == "oracle":
            if sample.nucleus is None:
                raise SegmenterError(f"{sample.id}: the oracle segmenter needs ground-truth "
                                     "masks, and this image has none")
            return np.asarray(sample.nucleus, bool)
        return np.asarray(self._build()(sample), bool)

    def mask(self, sample: Sample | np.ndarray, fingerprint: str | None = None) -> np.ndarray:
        """The nucleus mask of a sample (or of an image: not for ``oracle``)."""
        if not isinstance(sample, Sample):
            sample = Sample(np.asarray(sample), None, None, None, "image")
        fp = fingerprint or image_fingerprint(sample.image)
        if fp in self._memory:
            return self._memory[fp]
        m = self._read(fp) if self.spec.name != "oracle" else None
        if m is None or m.shape != sample.image.shape[:2]:
            m = self._compute(sample)
            self._write(fp, m)
        self._memory[fp] = m
        return m

    def _read(self, fp: str) -> np.ndarray | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{fp}.png"
        if not path.is_file():
            return None
        import cv2

        a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        return None if a is None else a > 127

    def _write(self, fp: str, mask: np.ndarray) -> None:
        if self.cache_dir is None or self.spec.name == "oracle":
            return
        import cv2

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / f"{fp}.tmp.png"
        if cv2.imwrite(str(tmp), mask.astype(np.uint8) * 255):
            os.replace(tmp, self.cache_dir / f"{fp}.png")

    def __repr__(self) -> str:
        return f"<MaskSource {self.spec.key}>"


def train_segmenter_for(
    dataset,
    out_dir: str | os.PathLike,
    profile: str = "cpu",
    seed: int = 0,
    *,
    test_fraction: float | None = None,
    groups: Sequence | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """Train a U-Net on a classifier's training-validation part only (its test split excluded).

    The split is the classifier's (:func:`leukolib.classification.splits.classifier_split`
    with the same profile, seed and groups), so the run can segment every
    classifier of that protocol without having seen a test image.

    Parameters
    ----------
    dataset : Dataset
        With nucleus masks.
    out_dir : path
        The U-Net run directory (resumable, as :func:`~leukolib.segmentation.training.train_unet`).
    profile, seed :
        Of both the classifier split and the U-Net.
    test_fraction : float, optional
        Default: the profile's classification ``test_fraction``.
    groups : sequence, optional
        The caller's groups (patients, smears), as given to the classifier.
    **kwargs
        Passed to ``train_unet``.

    Returns
    -------
    dict
        The U-Net run record.
    """
    from leukolib.classification.splits import classifier_split
    from leukolib.data.base import Subset
    from leukolib.profiles import get_profile
    from leukolib.segmentation.training import train_unet

    prof = get_profile(profile)
    frac = prof.classification.test_fraction if test_fraction is None else test_fraction
    thumbs, prints = image_thumbnails(dataset)
    near = thumbnail_groups(thumbs, prints)
    split = classifier_split(prints, dataset.labels, frac, prof.classification.folds, seed,
                             near_duplicates=near, dataset_groups=dataset.groups, groups=groups)
    return train_unet(Subset(dataset, split.trainval), out_dir, profile=prof, seed=seed,
                      progress=progress, **kwargs)
