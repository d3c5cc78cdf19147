"""The paper's eight classifiers, trained into one folder (Table 1's grid).

:func:`train_grid` trains (or resumes, or finds complete) every combination of
input x activation x head into ``out_dir/<key>`` with the same split, the same
masks and the same views, so they compare image by image.
:func:`classifier_runs` names the folder notebook 05 trains into and notebooks 06
and 07 read (they call :func:`train_grid` themselves when it is missing, so each
chapter still runs alone, in Colab). ``fold=K`` trains fold ``K`` of every
model, a job's share of the grid's units (model x fold);
:func:`~leukolib.classification.merge.merge_grid_runs` merges the jobs' folders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Sequence
from itertools import product
from pathlib import Path
from typing import Any

from leukolib.classification.inputs import InputSpec, input_size, resolve_crop
from leukolib.classification.masks import MaskSource, SegmenterSpec
from leukolib.classification.views import ImageSet, build_views, spec_key
from leukolib.data.base import Dataset
from leukolib.device import select_device
from leukolib.profiles import Profile, get_profile

__all__ = [
    "GRID",
    "SegmenterFallbackWarning",
    "classifier_runs",
    "grid_keys",
    "resolve_segmenter",
    "train_grid",
]

#: Table 1: (input, activation, head) of the eight models, segmented first.
GRID: tuple[tuple[str, str, str], ...] = tuple(
    product(("segmented", "raw"), ("relu", "mish"), ("linear", "medium")))


def grid_keys(inputs: Sequence[str] = ("segmented", "raw"), acts: Sequence[str] = ("relu", "mish"),
              heads: Sequence[str] = ("linear", "medium")) -> list[str]:
    """The keys of a grid, in :data:`GRID` order.

    Examples
    --------
    >>> grid_keys(inputs=["raw"], heads=["linear"])
    ['raw-relu-linear', 'raw-mish-linear']
    """
    return [f"{i}-{a}-{h}" for i, a, h in GRID if i in inputs and a in acts and h in heads]


def classifier_runs(output_dir: str | os.PathLike, dataset: str | Dataset, profile: str | Profile,
                    seed: int) -> Path:
    """The folder of a notebook run's eight classifiers.

    ``output_dir/classifiers_<dataset>_<profile>_seed<seed>``, or under
    ``$LEUKOLIB_RUNS`` keyed by the profile's classification settings and the
    data (:func:`leukolib.run_cache.run_folder`).

    Examples
    --------
    >>> classifier_runs("outputs", "synthetic", "cpu", 0).as_posix()
    'outputs/classifiers_synthetic_cpu_seed0'
    """
    from leukolib.run_cache import run_folder

    prof = get_profile(profile)
    name = dataset if isinstance(dataset, str) else dataset.name
    settings = {"classification": prof.classification, "seed": int(seed)}
    return run_folder(output_dir, f"classifiers_{name}_{prof.name}_seed{int(seed)}", settings,
                      dataset)


class SegmenterFallbackWarning(UserWarning):
    """A grid whose profile asks for the ensemble's mask uses the handcrafted one instead."""


def resolve_segmenter(dataset: Dataset, out_dir: str | os.PathLike, profile: str | Profile,
                      seed: int, segmenter: str | SegmenterSpec = "profile",
                      seg_model: str | os.PathLike | None = None, *,
                      groups: Sequence[Hashable] | None = None, device: str | None = None,
                      progress: bool = True) -> SegmenterSpec:
    """The mask source of a classifier run: the profile's, with a U-Net that never saw the test.

    Parameters
    ----------
    dataset : Dataset
    out_dir : path
        The run's folder: a U-Net it needs is trained into ``out_dir/segmenter``.
    profile, seed :
        Of the classifier (its test split is the U-Net's exclusion).
    segmenter : str or SegmenterSpec
        ``"profile"``: the profile's ``segmenter``; else a name of
        :data:`~leukolib.classification.masks.SEGMENTER_NAMES` (a spec passes
        through).
    seg_model : path, optional
        A U-Net run for ``ensemble`` or ``unet`` (checked for leaks when the
        classifier trains). Without one, a U-Net is trained on the
        training-validation part only
        (:func:`~leukolib.classification.masks.train_segmenter_for`); a
        dataset without nucleus masks falls back to the handcrafted mask,
        with a :class:`SegmenterFallbackWarning`.
    groups, device, progress :
        As :func:`train_grid`.

    Examples
    --------
    >>> from leukolib.data.synthetic import SyntheticDataset
    >>> resolve_segmenter(SyntheticDataset(n_images=4), "runs", "cpu", 0).name
    'handcrafted'
    """
    import warnings

    from leukolib.classification.masks import train_segmenter_for

    if isinstance(segmenter, SegmenterSpec):
        return segmenter
    prof = get_profile(profile)
    name = prof.classification.segmenter if segmenter == "profile" else segmenter
    if name in ("ensemble", "unet") and not seg_model:
        if dataset.has_masks:
            seg_model = Path(out_dir) / "segmenter"
            train_segmenter_for(dataset, seg_model, prof, seed, groups=groups,
                                progress=progress, device=device)
        else:
            warnings.warn(f"{dataset.name}: the {name} needs a U-Net trained on nucleus masks, "
                          "and this dataset has none: the segmented models use the handcrafted "
                          "mask", SegmenterFallbackWarning, stacklevel=2)
            name = "handcrafted"
    return SegmenterSpec(name, str(seg_model) if seg_model else None)


def train_grid(
    dataset: Dataset,
    out_dir: str | os.PathLike,
    profile: str | Profile = "cpu",
    seed: int = 0,
    *,
    keys: Sequence[str] | None = None,
    segmenter: str | SegmenterSpec = "profile",
    seg_model: str | os.PathLike | None = None,
    crop: float | str | None = "auto",
    crop_min: float = 0.0,
    color: str = "rgb",
    weights: str | os.PathLike | None = "profile",
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    groups: Sequence[Hashable] | None = None,
    data: ImageSet | None = None,
    mask_cache: str | os.PathLike | None = None,
    fold: int | None = None,
    on_model_end: Callable[[str, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> dict[str, dict[str, Any]]:
    """Train (or resume) the eight classifiers of Table 1 into ``out_dir/<key>``.

    Parameters
    ----------
    dataset : Dataset
    out_dir : path
        The grid folder; each model in a sub-folder named by its key, the
        mask cache in ``out_dir/masks``.
    profile, seed :
        As :func:`~leukolib.classification.training.train_classifier`.
    keys : sequence of str, optional
        Only these models (e.g. ``["segmented-relu-linear"]``); default all eight.
    crop : float, None or "auto"
        ``"auto"`` (the default): the dataset's
        :func:`~leukolib.classification.inputs.default_crop` (a fixed window
        around the nucleus for whole smear fields, nothing for cell crops),
        ``crop_min`` included.
    segmenter : str or SegmenterSpec
        ``"profile"`` (the default): the profile's ``segmenter``. An
        ``ensemble`` or ``unet`` without ``seg_model`` gets a U-Net trained
        on the training-validation part only, in ``out_dir/segmenter``
        (:func:`~leukolib.classification.masks.train_segmenter_for`); a
        dataset without nucleus masks cannot train one, and falls back to
        the handcrafted mask with a :class:`SegmenterFallbackWarning`.
    seg_model, crop_min, color, weights, device, progress, overwrite, groups :
        As :func:`~leukolib.classification.training.train_classifier`.
    data : ImageSet, optional
        Views already built (with the keys of both inputs).
    mask_cache : path, optional
        Folder of the mask cache (default ``out_dir/masks``).
    fold : int, optional
        Only this fold of each model; the runs stay ``"partial"`` until their
        other folds are trained (or merged in from other folders).
    on_model_end : callable, optional
        ``on_model_end(key, record)`` after each model.
    **overrides
        ``epochs``, ``folds``, ``image_size``, ``resize``, ``batch_size``, ``lr``, ``arch``.

    Returns
    -------
    dict
        ``key -> run record``, in :data:`GRID` order (partial ones with ``fold``).
    """
    from leukolib.classification.training import train_classifier
    from leukolib.classification.weights import resolve_weights

    prof = get_profile(profile)
    c = prof.classification
    wanted = list(keys) if keys is not None else grid_keys()
    unknown = [k for k in wanted if k not in grid_keys()]
    if unknown:
        raise ValueError(f"unknown classifier keys {unknown}; known: {', '.join(grid_keys())}")
    out = Path(out_dir)
    if isinstance(crop, str):
        if crop != "auto":
            raise ValueError(f"crop must be a margin, None or 'auto', got {crop!r}")
        crop, crop_min, _ = resolve_crop(dataset, progress=progress)
    size, resize = input_size(dataset, c.image_size, c.resize, crop, crop_min, c.native_size)
    size = int(overrides.get("image_size") or size)
    resize = int(overrides.get("resize") or max(resize, size))
    specs = {i: InputSpec(i, size, resize, crop, color, crop_min)
             for i in ("segmented", "raw") if any(k.startswith(i + "-") for k in wanted)}
    needs = any(s.needs_mask for s in specs.values())
    # no model of this grid uses a mask: no U-Net is trained for one
    seg = resolve_segmenter(dataset, out, prof, seed, segmenter if needs else "handcrafted",
                            seg_model if needs else None, groups=groups, device=device,
                            progress=progress)
    if data is None:
        cache = Path(mask_cache) if mask_cache is not None else out / "masks"
        masks = MaskSource(seg, cache, select_device(device)) if needs else None
        data = build_views(dataset, {spec_key(s): s for s in specs.values()}, masks, progress)
    # once for all eight: one download, one warning
    source, path = resolve_weights(weights, prof, arch=overrides.get("arch") or c.arch)
    weights = None if source == "random" else path
    records = {}
    for key in wanted:
        inp, act, head = key.split("-")
        records[key] = train_classifier(
            dataset, out / key, input=inp, head=head, act=act, profile=prof, seed=seed,
            segmenter=seg, crop=crop, crop_min=crop_min, color=color, weights=weights,
            device=device, progress=progress, overwrite=overwrite, groups=groups, data=data,
            fold=fold,
            **{**overrides, "image_size": size, "resize": resize})  # the views' own sizes
        if on_model_end is not None:
            on_model_end(key, records[key])
    return records
