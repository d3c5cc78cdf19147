"""Nucleus segmentation methods, by name, and their evaluation.

The stage's modules: :mod:`~leukolib.segmentation.handcrafted` (the paper's
Algorithm 1), :mod:`~leukolib.segmentation.unet` with
:mod:`~leukolib.segmentation.training`, :mod:`~leukolib.segmentation.losses`,
:mod:`~leukolib.segmentation.augment` and :mod:`~leukolib.segmentation.hparams`
(the deep model), :mod:`~leukolib.segmentation.ensemble` (their fusion),
:mod:`~leukolib.segmentation.evaluate` (the one evaluation path),
:mod:`~leukolib.segmentation.report` and
:mod:`~leukolib.segmentation.generalization` (tables beside the paper, across
datasets) and :mod:`~leukolib.segmentation.selection` (how the defaults were
chosen).

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
from leukolib.segmentation.evaluate import (
    Evaluation,
    Methods,
    evaluate_segmentation,
    handcrafted_methods,
)
from leukolib.segmentation.handcrafted import (
    HandcraftedParams,
    handcrafted_stages,
    segment_nucleus,
)

__all__ = [
    "SEGMENTERS",
    "Evaluation",
    "HandcraftedParams",
    "HandcraftedSegmenter",
    "MethodError",
    "MethodSpec",
    "Methods",
    "Segmenter",
    "evaluate_segmentation",
    "get_method",
    "methods_for",
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


def _unet_predictor(model: Any = None, dataset: Any = None, threshold: float | None = None,
                    diameter: float | None = None, tta: str | None = None):
    # torch is imported here, so that `import leukolib.segmentation` stays light
    import copy

    from leukolib.segmentation.ensemble import EnsembleParams
    from leukolib.segmentation.tta import check_tta
    from leukolib.segmentation.unet import SegmentationPredictor, UNetRun, load_unet_run

    t = EnsembleParams().threshold if threshold is None else float(threshold)
    try:
        tta = None if tta is None else check_tta(tta)
    except (TypeError, ValueError) as exc:
        raise MethodError(f"test-time augmentation: {exc}") from None
    run = model if isinstance(model, UNetRun) else load_unet_run(model, tta=tta)
    if tta is not None and tta != run.tta:  # the caller's run keeps its own views
        run = copy.copy(run)
        run.tta = tta
    if diameter is not None and not float(diameter) > 0:
        raise MethodError(f"the nucleus diameter must be a positive number of pixels, "
                          f"got {diameter}")
    d = None if diameter is None else float(diameter)
    if dataset is not None:
        return run.predictor_for(dataset, threshold=t, diameter=d)
    return SegmentationPredictor(run, "fold-average", "new images: all folds averaged", t, d)


def _ensemble_params(options: dict[str, Any]):
    from leukolib.segmentation.ensemble import EnsembleParams

    try:
        return EnsembleParams(**options)
    except (TypeError, ValueError) as exc:
        raise MethodError(f"method 'ensemble': {exc}") from None


def _ensemble(model: Any = None, dataset: Any = None, diameter: float | None = None,
              tta: str | None = None, **options: Any) -> Segmenter:
    from leukolib.segmentation.ensemble import EnsembleSegmenter

    params = _ensemble_params(options)
    # a rule the user names is applied as named: no fold picks another one
    return EnsembleSegmenter(_unet_predictor(model, dataset, params.threshold, diameter, tta),
                             params=params, fold_fusion=_fold_fusion_on(options))


def _fold_fusion_on(options: dict[str, Any]) -> bool:
    """Whether each fold's own rule may apply.

    The library's decision, unless the user named the fusion, threshold or soft
    weight: then that rule holds everywhere.
    """
    from leukolib.segmentation.fold_fusion import FOLD_FUSION

    return FOLD_FUSION and not {"fusion", "threshold", "soft_weight"} & set(options)


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
    "leukolib's ensemble: the handcrafted and U-Net masks fused (its rule is printed; "
    "--fusion and|or|soft to change it), then an area opening (needs --model RUN_DIR)",
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


def methods_for(name: str, model: Any = None, dataset: Any = None, **options: Any) -> Methods:
    """The :class:`~leukolib.segmentation.evaluate.Methods` that evaluate one named method.

    The same method as :func:`get_method` builds, scored through the one
    evaluation path (U-Net inference batched by fold model, out-of-fold on the
    run's own images). ``handcrafted`` is reported as ``HM``, ``unet`` as
    ``DEEP``, ``ensemble`` as ``ENSEMBLE`` (its rule in ``info``).

    Raises
    ------
    MethodError
        As :func:`get_method`.
    """
    from leukolib.segmentation import fold_fusion
    from leukolib.segmentation.ensemble import ENSEMBLE, fuse

    key = str(name).lower()
    if key not in SEGMENTERS:
        raise MethodError(f"unknown segmentation method {name!r}; known: {', '.join(SEGMENTERS)}")
    if SEGMENTERS[key].needs_model and model is None:
        raise MethodError(f"method {key!r} needs a trained model (--model PATH)")
    if key == "handcrafted":
        segmenter = _handcrafted(model, **options)
        return handcrafted_methods(segmenter.params)
    if key == "unet":
        deep = _unet_predictor(model, dataset, **options)
        t = deep.threshold
        return Methods({"DEEP": lambda _, p: p >= t}, deep=deep, threshold=t,
                       info={"mode": deep.mode, "reason": deep.reason, "threshold": t,
                             "tta": deep.run.tta})
    if key == "ensemble":
        diameter, tta = options.pop("diameter", None), options.pop("tta", None)
        params = _ensemble_params(options)
        deep = _unet_predictor(model, dataset, params.threshold, diameter, tta)
        per_fold = (_fold_fusion_on(options)
                    and deep.fold_fusions(params, segment_nucleus) is not None)
        rule = (fold_fusion.FoldFusionRule(deep, params, segment_nucleus) if per_fold
                else lambda hm, p: fuse(hm, p, params))
        label = params.label() + (fold_fusion.PER_FOLD_LABEL if per_fold else "")
        folds = deep.fold_fusions(params, segment_nucleus).to_dict() if per_fold else None
        return Methods({ENSEMBLE: rule}, segment_nucleus, deep,
                       threshold=params.threshold,
                       info={"mode": deep.mode, "reason": deep.reason, "ensemble": label,
                             "fusion": params.fusion, "fallback_iou": params.fallback_iou,
                             "fallback_entropy": params.fallback_entropy, "fold_rules": folds,
                             "tta": deep.run.tta})
    return Methods(segmenter=get_method(key, model, **options), segmenter_name=key)
