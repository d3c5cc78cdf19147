"""The ensemble of the handcrafted and the deep nucleus masks (the paper's eq. 12).

The paper keeps a pixel when **both** methods call it nucleus (logical AND)
and then removes small objects with an **area opening**. The handcrafted mask
is precise on the nucleus boundary but lets granular cytoplasm through; the
U-Net rarely does that but smooths the boundary: AND keeps what both agree
on. The book also asks whether AND is the best choice, so the other obvious
rules are here too:

``"and"``
    ``HM & (p >= t)``, the paper's rule.
``"or"``
    ``HM | (p >= t)``: recovers what either method misses, at the price of
    both methods' false positives.
``"soft"``
    A weighted vote on probabilities, ``w * p + (1 - w) * HM >= 0.5``: where
    the handcrafted method says nucleus the U-Net's probability only has to
    exceed ``(w - 0.5) / w``, elsewhere ``0.5 / w``; the handcrafted mask
    shifts the U-Net's threshold instead of vetoing it.

Every rule is followed by the area opening: connected objects smaller than
``min_area`` pixels at a 256 x 256 image, scaled with the image area like the
handcrafted filter (:func:`~leukolib.segmentation.handcrafted.min_area_pixels`),
are removed.

**Out of its domain** a U-Net can be confidently wrong (trained on fields,
applied to crops), and no fixed rule then protects the fusion. With
``fallback_iou > 0`` the ensemble measures, per image, how far the two
methods disagree, the IoU between the handcrafted mask and ``p >= t``
(:func:`agreement`), and keeps the handcrafted mask alone where it is below
``fallback_iou`` (:func:`falls_back`). Its value is chosen like the rest, by the
selection protocol of :mod:`leukolib.segmentation.selection`, across datasets.

**The** ensemble of leukolib (``--method ensemble`` in the command line, the
``ENSEMBLE`` row of every report, the book) is :class:`EnsembleParams`'s
default, and every output names its rule (:meth:`EnsembleParams.label`). Its
defaults were chosen by the selection protocol of
:mod:`leukolib.segmentation.selection`, on data that the book then reports
apart from the data that did not choose.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from leukolib.data.sample import Sample
from leukolib.segmentation.handcrafted import HandcraftedParams, area_filter, min_area_pixels

__all__ = ["ENSEMBLE", "FUSIONS", "EnsembleParams", "EnsembleSegmenter", "agreement",
           "falls_back", "fuse"]

#: Available fusion rules.
FUSIONS: tuple[str, ...] = ("and", "or", "soft")

#: The method name of leukolib's ensemble (the default rule) in reports and outputs.
ENSEMBLE = "ENSEMBLE"


@dataclass(frozen=True)
class EnsembleParams:
    """How the two masks are combined.

    Attributes
    ----------
    fusion : str
        One of :data:`FUSIONS`.
    threshold : float
        The U-Net's probability threshold (DEEP is ``p >= threshold``).
    soft_weight : float
        Weight ``w`` of the U-Net probability in the ``"soft"`` vote.
    min_area : int
        Area opening threshold, in pixels at ``reference_area``; 0 disables it.
    reference_area : int or None
        Image area at which ``min_area`` holds (256 * 256); ``None``: absolute.
    fallback_iou : float
        Keep the handcrafted mask alone on an image where the IoU of the two
        methods' masks is below this (0: never).
    """

    fusion: str = "and"
    threshold: float = 0.5
    soft_weight: float = 0.75
    min_area: int = 300  # chosen by the protocol: segmentation.json
    reference_area: int | None = HandcraftedParams().reference_area
    fallback_iou: float = 0.3  # chosen by the protocol (no-harm rule)

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if not 0.5 < self.soft_weight <= 1.0:
            raise ValueError(f"soft_weight must be in (0.5, 1], got {self.soft_weight}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.min_area < 0:
            raise ValueError(f"min_area must be >= 0, got {self.min_area}")
        if not 0.0 <= self.fallback_iou < 1.0:
            raise ValueError(f"fallback_iou must be in [0, 1), got {self.fallback_iou}")

    def rule(self) -> str:
        """The fusion rule in words: ``"AND"``, ``"OR"`` or ``"SOFT w=0.75"``.

        Examples
        --------
        >>> EnsembleParams("soft", soft_weight=0.6).rule(), EnsembleParams().rule()
        ('SOFT w=0.6', 'AND')
        """
        return f"SOFT w={self.soft_weight:g}" if self.fusion == "soft" else self.fusion.upper()

    def label(self) -> str:
        """The rule, the U-Net threshold and the area opening, for outputs and tables.

        Examples
        --------
        >>> EnsembleParams(fallback_iou=0.0).label()
        'AND, p >= 0.5, area opening 300 px at 256x256'
        """
        area = "no area opening" if not self.min_area else (
            f"area opening {self.min_area} px"
            + (" at 256x256" if self.reference_area == 256 * 256 else
               f" at {self.reference_area} px" if self.reference_area else ""))
        fallback = (f", handcrafted alone where IoU(HM, DEEP) < {self.fallback_iou:g}"
                    if self.fallback_iou else "")
        return f"{self.rule()}, p >= {self.threshold:g}, {area}{fallback}"

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict."""
        return asdict(self)


def agreement(handcrafted: np.ndarray, deep_proba: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of the handcrafted mask and ``deep_proba >= threshold`` (1 when both are empty).

    Examples
    --------
    >>> import numpy as np
    >>> hm = np.zeros((10, 10), bool); hm[:, :5] = True
    >>> p = np.zeros((10, 10)); p[:, :4] = 0.9
    >>> agreement(hm, p)
    0.8
    """
    hm = np.asarray(handcrafted, dtype=bool)
    deep = np.asarray(deep_proba) >= threshold
    union = int((hm | deep).sum())
    return float((hm & deep).sum() / union) if union else 1.0


def falls_back(handcrafted: np.ndarray, deep_proba: np.ndarray,
               params: EnsembleParams | None = None) -> bool:
    """Whether the ensemble keeps the handcrafted mask alone on this image."""
    params = params or EnsembleParams()
    return bool(params.fallback_iou and
                agreement(handcrafted, deep_proba, params.threshold) < params.fallback_iou)


def fuse(
    handcrafted: np.ndarray, deep_proba: np.ndarray, params: EnsembleParams | None = None
) -> np.ndarray:
    """Combine a handcrafted mask and a U-Net probability map into one mask.

    Parameters
    ----------
    handcrafted : ndarray of bool, shape (H, W)
        The handcrafted nucleus mask.
    deep_proba : ndarray of float, shape (H, W)
        The U-Net's nucleus probability (a boolean mask works too, as 0/1).
    params : EnsembleParams, optional
        Rule and area opening (default: ``EnsembleParams()``, leukolib's ensemble).

    Returns
    -------
    ndarray of bool, shape (H, W)

    Examples
    --------
    >>> import numpy as np
    >>> hm = np.zeros((20, 20), bool); hm[2:14, 2:14] = True
    >>> p = np.zeros((20, 20)); p[4:16, 4:16] = 0.9
    >>> and_, or_, soft = EnsembleParams("and"), EnsembleParams("or"), EnsembleParams("soft")
    >>> int(fuse(hm, p, and_).sum()), int(fuse(hm, p, or_).sum()), int(fuse(hm, p, soft).sum())
    (100, 188, 144)
    """
    params = params or EnsembleParams()
    hm = np.asarray(handcrafted, dtype=bool)
    p = np.asarray(deep_proba, dtype=np.float32)
    if hm.shape != p.shape:
        raise ValueError(f"handcrafted mask {hm.shape} and probability {p.shape} differ in shape")
    if falls_back(hm, p, params):  # the U-Net is out of its domain here: no vote
        return hm.copy()
    if params.fusion == "and":
        mask = hm & (p >= params.threshold)
    elif params.fusion == "or":
        mask = hm | (p >= params.threshold)
    else:  # soft: a weighted vote
        w = params.soft_weight
        mask = (w * p + (1.0 - w) * hm) >= 0.5
    if not params.min_area:
        return mask
    return area_filter(mask, min_area_pixels(mask.shape, params.min_area, params.reference_area))


class EnsembleSegmenter:
    """``callable(sample) -> bool mask`` fusing the handcrafted method and a U-Net.

    Parameters
    ----------
    deep : object with ``proba(sample) -> ndarray``
        The U-Net side, e.g. a
        :class:`~leukolib.segmentation.unet.SegmentationPredictor` (out-of-fold on
        its training set, fold average elsewhere).
    handcrafted : callable, optional
        ``handcrafted(image) -> bool mask``; default: the handcrafted defaults.
    params : EnsembleParams, optional
    """

    def __init__(
        self,
        deep: Any,
        handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
        params: EnsembleParams | None = None,
    ) -> None:
        from leukolib.segmentation.handcrafted import segment_nucleus

        self.deep = deep
        self.handcrafted = handcrafted or segment_nucleus
        self.params = params or EnsembleParams()
        self.fallbacks = 0  # images on which the handcrafted mask was kept alone
        self._no_fallback = replace(self.params, fallback_iou=0.0)
        self._takes_mask = "handcrafted_mask" in inspect.signature(deep.proba).parameters

    @property
    def mode(self) -> str:
        """The U-Net side's mode (``"out-of-fold"`` or ``"fold-average"``)."""
        return getattr(self.deep, "mode", "unknown")

    @property
    def reason(self) -> str:
        """Why the U-Net side runs in its mode."""
        return getattr(self.deep, "reason", "")

    def __call__(self, sample: Sample) -> np.ndarray:
        """The fused nucleus mask of ``sample``."""
        hm = np.asarray(self.handcrafted(sample.image), dtype=bool)
        # the handcrafted mask also gives a scale-aware U-Net its nucleus diameter
        p = (self.deep.proba(sample, handcrafted_mask=hm) if self._takes_mask
             else self.deep.proba(sample))
        if falls_back(hm, p, self.params):  # counted here, decided once
            self.fallbacks += 1
            return hm.copy()
        return fuse(hm, p, self._no_fallback)

    def __repr__(self) -> str:
        return f"EnsembleSegmenter({self.params.label()!r}, deep={self.deep!r})"
