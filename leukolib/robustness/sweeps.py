"""Classifiers and segmentations under corrupted images: the paper's setting and severity sweeps.

A classifier is seen here as a :class:`Pipeline`: ``predict(images, masks)
-> logits`` and, for a model that uses a nucleus mask, ``segment(images) ->
masks`` (the segmenter the model was trained with). A segmented model uses
the mask to black out everything but the nucleus; a raw model on whole smear
fields may use it to crop a window around the cell. Corrupting the microscope
image reaches such a model twice, through its mask and through its pixels;
the sweeps separate the two:

``before`` (the realistic pipeline)
    the image is corrupted, then segmented, and the model sees the corrupted
    pixels inside the mask found on the corrupted image;
``after``
    the clean image's mask over the corrupted image: only the pixels change.

A model without a mask has one way (``raw``). Every model sees the very same corrupted
images (seeded per image id), and masks are computed once per segmenter and
image, so the comparisons are paired, image by image. Results are per-image
tables (one row per model, corruption, severity, way and image); the
summaries and tests are in :mod:`leukolib.robustness.report`.

:func:`segmentation_sweep` runs the segmentation methods (HM, DEEP, the
ensemble) over a dataset under the same corruptions through the one
evaluation path, :func:`leukolib.segmentation.evaluate_segmentation`. A U-Net
evaluated on the dataset it was trained on answers out of fold: each
corrupted image goes to the fold models that never saw its clean original.

:func:`run_pipeline` and :func:`test_samples` adapt a
:class:`~leukolib.classification.ClassifierRun`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.base import Dataset
from leukolib.data.fingerprint import image_fingerprint
from leukolib.data.sample import Sample
from leukolib.robustness.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    CorruptedDataset,
    corrupt_images,
    image_seed,
    paper_transform,
)

__all__ = [
    "WAYS",
    "Pipeline",
    "classifier_sweep",
    "paper_setting",
    "run_pipeline",
    "segmentation_sweep",
    "test_samples",
]

#: How the corruption reaches a segmented model (a raw model's way is ``"raw"``).
WAYS: tuple[str, ...] = ("before", "after")

Images = Sequence[np.ndarray]


@dataclass
class Pipeline:
    """A classifier as the robustness experiments use it.

    Attributes
    ----------
    name : str
        The model's key (``"segmented-mish-medium"``).
    predict : callable
        ``predict(images, masks) -> logits (N, C)``; ``masks`` is ``None`` for
        a model that uses none.
    segment : callable, optional
        ``segment(images) -> list of bool masks``, the model's segmenter;
        ``None`` for a model that uses no mask.
    segmenter : str
        Names the segmenter: pipelines with the same name share masks.
    """

    name: str
    predict: Callable[[Images, Images | None], np.ndarray]
    segment: Callable[[Images], list[np.ndarray]] | None = None
    segmenter: str = ""

    @property
    def uses_mask(self) -> bool:
        """Whether the model's input depends on a nucleus mask (segmented, or cropped)."""
        return self.segment is not None

    @property
    def realistic_way(self) -> str:
        """The way a corruption reaches this model in practice: ``before`` or ``raw``."""
        return "before" if self.uses_mask else "raw"


def _masks_by_segmenter(pipelines: Sequence[Pipeline], images: Images) -> dict[str, list]:
    out: dict[str, list] = {}
    for p in pipelines:
        if p.segment is not None and p.segmenter not in out:
            out[p.segmenter] = [np.asarray(m, bool) for m in p.segment(images)]
    return out


def _rows(p: Pipeline, logits: np.ndarray, labels, ids, **keys: Any) -> list[dict[str, Any]]:
    pred = np.asarray(logits).argmax(axis=1)
    return [{"model": p.name, **keys, "id": i, "label": int(y), "pred": int(q),
             "correct": bool(q == y)} for i, y, q in zip(ids, labels, pred, strict=True)]


def _predict_ways(pipelines, images, clean_masks, labels, ids, ways, **keys) -> list[dict]:
    """Every pipeline on ``images``, each way; masks of ``images`` computed once per segmenter."""
    rows: list[dict[str, Any]] = []
    found = _masks_by_segmenter([p for p in pipelines if "before" in ways], images)
    for p in pipelines:
        if not p.uses_mask:
            rows += _rows(p, p.predict(images, None), labels, ids, way="raw", **keys)
            continue
        for way in ways:
            masks = found[p.segmenter] if way == "before" else clean_masks[p.segmenter]
            rows += _rows(p, p.predict(images, masks), labels, ids, way=way, **keys)
    return rows


def classifier_sweep(
    pipelines: Sequence[Pipeline],
    images: Images,
    labels: Sequence[int],
    ids: Sequence[str],
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    ways: Sequence[str] = WAYS,
    progress: bool = True,
) -> pd.DataFrame:
    """Every model on the clean images and under every corruption and severity.

    Parameters
    ----------
    pipelines : sequence of Pipeline
    images : sequence of ndarray (H, W, 3) uint8
        The clean test images.
    labels, ids : sequence
        Their classes and ids (an id, with ``seed``, fixes its corruption).
    corruptions : sequence of str, optional
        Keys of :data:`~leukolib.robustness.corruptions.CORRUPTIONS` (default all).
    severities : sequence of int
    seed : int
    ways : sequence of str
        Of :data:`WAYS`, for models that use a mask.
    progress : bool

    Returns
    -------
    DataFrame
        One row per model, corruption, severity, way and image: ``model,
        corruption, severity, way, id, label, pred, correct``; the clean
        images are ``corruption="none", severity=0`` (way ``"clean"`` for a
        model that uses a mask, ``"raw"`` for one that does not).
    """
    from tqdm import tqdm

    names = list(corruptions or CORRUPTIONS)
    bad = [w for w in ways if w not in WAYS]
    if bad:
        raise ValueError(f"unknown ways {bad}; choose from {', '.join(WAYS)}")
    clean = _masks_by_segmenter(pipelines, images)
    rows = _predict_ways(pipelines, images, clean, labels, ids, ("after",), corruption="none",
                         severity=0)
    for r in rows:
        r["way"] = "clean" if r["way"] == "after" else r["way"]
    steps = [(c, int(s)) for c in names for s in severities]
    for c, s in tqdm(steps, desc="corruptions", disable=not progress, file=sys.stderr,
                     leave=False):
        bad_images = corrupt_images(images, c, s, seed, ids)
        rows += _predict_ways(pipelines, bad_images, clean, labels, ids, ways, corruption=c,
                              severity=s)
    return pd.DataFrame(rows)


def paper_setting(
    pipelines: Sequence[Pipeline],
    images: Images,
    labels: Sequence[int],
    ids: Sequence[str],
    seed: int = 0,
    p: float = 0.5,
    augmentation: Callable[[int], Any] | None = None,
    ways: Sequence[str] = WAYS,
) -> pd.DataFrame:
    """Every model on the test images corrupted as the paper's Table 7 did.

    Each image gets its own draw of the training augmentation (when given),
    motion blur, multiplicative and Gaussian noise
    (:func:`~leukolib.robustness.corruptions.paper_transform`); the clean
    masks of every segmenter move with the augmentation's geometric
    transforms, for the ``after`` way.

    Parameters
    ----------
    augmentation : callable, optional
        ``augmentation(seed) -> albumentations transform`` (e.g.
        :func:`leukolib.classification.augment.training_transforms`), built
        per image with the image's seed.
    p : float
        Probability of each of the three corruptions.

    Returns
    -------
    DataFrame
        As :func:`classifier_sweep`, with ``corruption="paper"``,
        ``severity=1``, plus the clean rows.
    """
    clean = _masks_by_segmenter(pipelines, images)
    keys = list(clean)
    moved: dict[str, list] = {k: [] for k in keys}
    bad_images = []
    for i, (image, key) in enumerate(zip(images, ids, strict=True)):
        s = image_seed(seed, "paper", key)
        aug = None if augmentation is None else augmentation(s)
        t = paper_transform(s, p, aug)
        masks = [clean[k][i].astype(np.uint8) for k in keys] or [np.zeros(image.shape[:2],
                                                                          np.uint8)]
        out = t(image=image, masks=masks)
        bad_images.append(out["image"])
        for k, m in zip(keys, out["masks"], strict=False):
            moved[k].append(np.asarray(m) > 0)
    rows = _predict_ways(pipelines, images, clean, labels, ids, ("after",), corruption="none",
                         severity=0)
    for r in rows:
        r["way"] = "clean" if r["way"] == "after" else r["way"]
    rows += _predict_ways(pipelines, bad_images, moved, labels, ids, ways, corruption="paper",
                          severity=1)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- segmentation


class _CleanFolds:
    """A U-Net run that picks, for a corrupted image, the folds of its clean original.

    The run recognises its training images by their pixels; a corrupted image
    has new pixels, and would get every fold model, some of which trained on
    it. The dataset view records which clean image each corrupted one came
    from.
    """

    def __init__(self, run: Any, folds: Sequence[tuple[int, ...] | None],
                 source: Mapping[str, int]) -> None:
        self.run, self._folds, self._source = run, list(folds), source
        self.dataset_name = run.dataset_name

    def folds_for(self, image: np.ndarray) -> tuple[int, ...] | None:
        return self._folds[self._source[image_fingerprint(image)]]

    @property
    def scale(self) -> Any:
        """The run's scale (a corrupted image is segmented at its own estimated scale)."""
        return self.run.scale

    def predict_many(self, images, folds=None, batch_size: int = 16, **kwargs: Any):
        return self.run.predict_many(images, folds, batch_size, **kwargs)

    def predict_proba(self, image, folds=None, **kwargs: Any):
        return self.run.predict_proba(image, folds, **kwargs)

    def predict_proba_with_source(self, image, folds=None, *args: Any, **kwargs: Any):
        return self.run.predict_proba_with_source(image, folds, *args, **kwargs)


class _Recording(CorruptedDataset):
    """A corrupted view that records the clean index of every image it hands out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source: dict[str, int] = {}

    def _load(self, index: int) -> Sample:
        s = super()._load(index)
        self.source[image_fingerprint(s.image)] = index
        return s


def segmentation_sweep(
    dataset: Dataset,
    unet: Any = None,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    ensembles: Mapping[str, Any] | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """HM, DEEP and the ensemble on the clean dataset and under every corruption and severity.

    Parameters
    ----------
    dataset : Dataset
        With nucleus masks.
    unet : UNetRun, optional
        Without it only the handcrafted method (HM) is scored.
    corruptions, severities, seed :
        As :func:`classifier_sweep`.
    ensembles : mapping, optional
        Fusions to score besides leukolib's ensemble, by name (e.g. the
        paper's AND: ``{"AND": EnsembleParams("and")}``).
    batch_size : int
        U-Net images per forward pass.

    Returns
    -------
    DataFrame
        One row per corruption, severity, method and image: ``corruption,
        severity, method, id`` and the six metrics (clean: ``"none"``, 0).
    """
    from tqdm import tqdm

    from leukolib.segmentation.evaluate import (
        evaluate_segmentation,
        handcrafted_methods,
        standard_methods,
    )
    from leukolib.segmentation.unet import SegmentationPredictor

    folds = None if unet is None else [unet.folds_for(s.image) for s in dataset]
    steps = [("none", 0)] + [(c, int(s)) for c in (corruptions or CORRUPTIONS)
                             for s in severities]
    frames = []
    for c, s in tqdm(steps, desc="segmentation", disable=not progress, file=sys.stderr,
                     leave=False):
        view = _Recording(dataset, c, s, seed)
        if unet is None:
            methods = handcrafted_methods()
        else:
            deep = SegmentationPredictor(_CleanFolds(unet, folds, view.source), "out-of-fold",
                                         "folds of the clean original")
            methods = standard_methods(deep, alternatives=ensembles)
        ev = evaluate_segmentation(view, methods, batch_size=batch_size, progress=False)
        if ev.failures:
            raise RuntimeError(f"{dataset.name} {c} {s}: {len(ev.failures)} images failed, "
                               f"e.g. {ev.failures[0]}")
        frames.append(ev.per_image.assign(corruption=c, severity=s))
    out = pd.concat(frames, ignore_index=True)
    first = ["corruption", "severity", "method", "id"]
    return out[first + [k for k in out.columns if k not in first]]


# ------------------------------------------------------------ classifier runs


def test_samples(run: Any, dataset: Dataset) -> list[Sample]:
    """The samples of ``dataset`` that form ``run``'s test split, checked by their pixels.

    Raises
    ------
    ValueError
        When a test image is missing from ``dataset`` or has other pixels
        than the run trained around (another dataset, or another size).
    """
    from leukolib.data.base import Subset

    test_ids = [str(i) for i in run.saved_logits()["test_ids"]]
    where = {sid: k for k, sid in enumerate(dataset.ids)}
    missing = [i for i in test_ids if i not in where]
    if missing:
        raise ValueError(f"{run.run_dir}: {len(missing)} test images are not in dataset "
                         f"{dataset.name!r} (e.g. {missing[0]}); load the dataset the run "
                         "was trained on")
    samples = list(Subset(dataset, [where[i] for i in test_ids]))
    prints = (run.record.get("dataset") or {}).get("fingerprints") or {}
    wrong = [s.id for s in samples if s.id in prints and prints[s.id] != image_fingerprint(s.image)]
    if wrong:
        raise ValueError(f"{run.run_dir}: test image {wrong[0]} of {dataset.name!r} has other "
                         f"pixels than the run's ({len(wrong)} such images)")
    return samples


def run_pipeline(run: Any, folds: str | int = "best") -> Pipeline:
    """A :class:`~leukolib.classification.ClassifierRun` as a :class:`Pipeline`.

    Parameters
    ----------
    run : ClassifierRun
    folds : ``"best"``, ``"mean"`` or int
        The best fold's model (selected on validation), the average of every
        fold's logits, or one fold.
    """
    ks = run.best_fold if folds == "best" else None if folds == "mean" else int(folds)
    source = run.mask_source if run.spec.needs_mask else None

    def predict(images: Images, masks: Images | None) -> np.ndarray:
        return run.predict_images(images, masks, folds=ks)

    def segment(images: Images) -> list[np.ndarray]:
        return [source.mask(im) for im in images]

    return Pipeline(run.key, predict, segment if source is not None else None,
                    source.spec.key if source is not None else "")
