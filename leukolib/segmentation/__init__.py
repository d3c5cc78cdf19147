"""Nucleus segmentation methods, by name, and their evaluation.

Every method is a *segmenter*: a callable taking a :class:`~leukolib.data.Sample`
and returning the boolean nucleus mask of its image. It takes the sample, not
only the image, so that a method can depend on which sample it is (a U-Net
evaluated on the dataset it was trained on uses, for each sample id, the model
of the cross-validation fold that did not see it).

:data:`SEGMENTERS` maps a method name to a :class:`MethodSpec`;
:func:`get_method` builds the segmenter. Adding a method is one call to
:func:`register_method` (or one entry), e.g. for the U-Net of a later module::

    register_method("unet", _unet_factory, "U-Net (needs --model)", needs_model=True)

Examples
--------
>>> import numpy as np
>>> from leukolib.data import Sample
>>> segment = get_method("handcrafted")
>>> image = np.full((32, 32, 3), 200, np.uint8)
>>> bool(segment(Sample(image, None, None, None, "blank")).any())
False
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from leukolib.data.sample import Sample
from leukolib.errors import LeukolibError
from leukolib.segmentation.evaluate import EvaluationResult, evaluate_dataset
from leukolib.segmentation.handcrafted import (
    HandcraftedParams,
    handcrafted_stages,
    segment_nucleus,
)

__all__ = [
    "SEGMENTERS",
    "EvaluationResult",
    "HandcraftedParams",
    "HandcraftedSegmenter",
    "MethodError",
    "MethodSpec",
    "Segmenter",
    "evaluate_dataset",
    "get_method",
    "handcrafted_stages",
    "register_method",
    "segment_nucleus",
]

#: A segmentation method: ``segmenter(sample) -> bool mask (H, W)``.
Segmenter = Callable[[Sample], np.ndarray]


class MethodError(LeukolibError, ValueError):
    """An unknown method name, or a method used without what it needs (a model)."""


@dataclass(frozen=True)
class MethodSpec:
    """How to build one segmentation method.

    Attributes
    ----------
    name : str
        Registry key (``"handcrafted"``, later ``"unet"``, ``"ensemble"``).
    description : str
        One line for ``leukolib segment --help`` and the docs.
    factory : callable
        ``factory(model, **options) -> Segmenter``; ``model`` is ``None`` or
        whatever the user passed (a path, a loaded model).
    needs_model : bool
        Whether ``model`` is required.
    """

    name: str
    description: str
    factory: Callable[..., Segmenter]
    needs_model: bool = False


class HandcraftedSegmenter:
    """The handcrafted method as a segmenter (takes a Sample or an image).

    Parameters
    ----------
    params : HandcraftedParams, optional
        Defaults: the paper's Table A1.
    """

    def __init__(self, params: HandcraftedParams | None = None) -> None:
        self.params = params or HandcraftedParams()

    def __call__(self, sample: Sample | np.ndarray) -> np.ndarray:
        """The nucleus mask of ``sample.image`` (or of ``sample`` if it is an image)."""
        image = sample.image if isinstance(sample, Sample) else sample
        return segment_nucleus(image, self.params)

    def __repr__(self) -> str:
        return f"HandcraftedSegmenter({self.params!r})"


def _handcrafted(model: Any = None, **options: Any) -> Segmenter:
    if model is not None:
        raise MethodError("method 'handcrafted' takes no model (it has no trained weights)")
    try:
        params = HandcraftedParams(**options)
    except TypeError as exc:  # an unknown option name
        raise MethodError(f"method 'handcrafted': {exc}") from None
    return HandcraftedSegmenter(params)


#: Segmentation methods by name.
SEGMENTERS: dict[str, MethodSpec] = {}


def register_method(
    name: str, factory: Callable[..., Segmenter], description: str, needs_model: bool = False
) -> MethodSpec:
    """Add (or replace) a method in :data:`SEGMENTERS`.

    Parameters
    ----------
    name : str
        Method name, lower case.
    factory : callable
        ``factory(model, **options) -> Segmenter``.
    description : str
        One line shown by the CLI.
    needs_model : bool
        Whether :func:`get_method` must be given a model.

    Returns
    -------
    MethodSpec
    """
    spec = MethodSpec(name.lower(), description, factory, needs_model)
    SEGMENTERS[spec.name] = spec
    return spec


register_method(
    "handcrafted",
    _handcrafted,
    "colour features + bilateral filter + Otsu + morphology (the paper's Algorithm 1)",
)


def _unet_predictor(model: Any = None, dataset: Any = None, threshold: float = 0.5):
    # torch is imported here, so that `import leukolib.segmentation` stays light
    from leukolib.segmentation.unet import SegmentationPredictor, UNetRun, load_unet_run

    run = model if isinstance(model, UNetRun) else load_unet_run(model)
    if dataset is not None:
        return run.predictor_for(dataset, threshold=threshold)
    return SegmentationPredictor(run, "fold-average", "new images: all folds averaged", threshold)


def _ensemble(model: Any = None, dataset: Any = None, **options: Any) -> Segmenter:
    from leukolib.segmentation.ensemble import EnsembleParams, EnsembleSegmenter

    try:
        params = EnsembleParams(**options)
    except (TypeError, ValueError) as exc:
        raise MethodError(f"method 'ensemble': {exc}") from None
    return EnsembleSegmenter(_unet_predictor(model, dataset, params.threshold), params=params)


register_method(
    "unet",
    _unet_predictor,
    "MONAI U-Net trained by `leukolib train-unet` (needs --model RUN_DIR; out-of-fold on its "
    "training set, all folds averaged elsewhere)",
    needs_model=True,
)
register_method(
    "ensemble",
    _ensemble,
    "handcrafted and U-Net masks fused (--fusion soft|and|or, default soft), then an area "
    "opening (needs --model RUN_DIR)",
    needs_model=True,
)


def get_method(name: str, model: Any = None, **options: Any) -> Segmenter:
    """Build the segmenter called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`SEGMENTERS` (case-insensitive).
    model : optional
        The trained model (or its path) of methods that need one.
    **options
        Method options (for ``handcrafted``: fields of
        :class:`HandcraftedParams`, e.g. ``dilation_position="none"``).

    Returns
    -------
    Segmenter
        ``segmenter(sample) -> ndarray of bool``.

    Raises
    ------
    MethodError
        Unknown name (the message lists the known ones), a missing model, or
        a bad option.
    """
    key = str(name).lower()
    spec = SEGMENTERS.get(key)
    if spec is None:
        raise MethodError(f"unknown segmentation method {name!r}; known: {', '.join(SEGMENTERS)}")
    if spec.needs_model and model is None:
        raise MethodError(f"method {spec.name!r} needs a trained model (--model PATH)")
    try:
        return spec.factory(model, **options)
    except TypeError as exc:  # an option the method does not take
        raise MethodError(f"method {spec.name!r}: {exc}") from None
