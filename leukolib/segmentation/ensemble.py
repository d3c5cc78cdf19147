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

**Out of its domain** a U-Net can be wrong (trained on fields, applied to
crops), and no fixed rule then protects the fusion. Two measures, per image,
let the ensemble keep the handcrafted mask alone (:func:`falls_back`):

* ``fallback_iou > 0``: how far the two methods disagree, the IoU between the
  handcrafted mask and ``p >= t`` (:func:`agreement`), below ``fallback_iou``.
  Disagreement alone cannot say which method is wrong: in its own domain the
  U-Net is usually the one that is right where the two differ.
* ``fallback_entropy > 0``: how unsure the U-Net itself is on the pixels it
  votes on, the mean binary entropy of ``p`` (bits) over the handcrafted
  mask (:func:`uncertainty`), above ``fallback_entropy``. A network on images
  like its training images gives probabilities near 0 or 1 there; out of its
  domain they drift towards 0.5 (the signal that out-of-distribution
  detectors read from a classifier's softmax).

Which measure, and its threshold, is chosen like the rest, by the selection
protocol of :mod:`leukolib.segmentation.selection`, across datasets.

**A whole image set** can be out of the U-Net's domain (another microscope,
another stain), and a per-image switch then misses the images on which the
network is only somewhat wrong. ``gate_entropy > 0``: when the median of the
U-Net's entropy over the set (up to :data:`GATE_SAMPLE` images, evenly spaced,
like the scale estimate) is above ``gate_entropy``, the ensemble keeps the
handcrafted mask of every image of the set (:func:`out_of_domain`,
:meth:`EnsembleSegmenter.calibrate`). A single image is a set of one.

**The** ensemble of leukolib (``--method ensemble`` in the command line, the
``ENSEMBLE`` row of every report, the book) is :class:`EnsembleParams`'s
default, and every output names its rule (:meth:`EnsembleParams.label`). Its
defaults were chosen by the selection protocol of
:mod:`leukolib.segmentation.selection`, on data that the book then reports
apart from the data that did not choose.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from leukolib.data.sample import Sample
from leukolib.segmentation.handcrafted import HandcraftedParams, area_filter, min_area_pixels
from leukolib.stats import evenly_spaced

__all__ = ["ENSEMBLE", "FUSIONS", "GATE_SAMPLE", "EnsembleParams", "EnsembleSegmenter",
           "agreement", "falls_back", "fuse", "keeps_handcrafted", "out_of_domain",
           "uncertainty"]

#: Available fusion rules.
FUSIONS: tuple[str, ...] = ("and", "or", "soft")

#: The method name of leukolib's ensemble (the default rule) in reports and outputs.
ENSEMBLE = "ENSEMBLE"

#: Images of a set whose U-Net entropy decides whether the set is out of its domain.
GATE_SAMPLE = 32


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
    fallback_entropy : float
        Keep the handcrafted mask alone on an image where the U-Net's mean
        entropy over the handcrafted mask (:func:`uncertainty`, bits) is above
        this (0: never).
    gate_entropy : float
        Keep the handcrafted masks of a whole image set where the median of
        the U-Net's entropy over the set (:func:`out_of_domain`, bits) is
        above this (0: never).
    """

    fusion: str = "and"
    threshold: float = 0.5
    soft_weight: float = 0.75
    min_area: int = 150  # chosen by the protocol: segmentation.json
    reference_area: int | None = HandcraftedParams().reference_area
    fallback_iou: float = 0.3  # chosen by the protocol (no-harm rule)
    fallback_entropy: float = 0.3  # chosen by the protocol (no-harm rule)
    gate_entropy: float = 0.15  # chosen by the protocol (no-harm rule)

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
        if not 0.0 <= self.fallback_entropy < 1.0:
            raise ValueError(f"fallback_entropy must be in [0, 1) bit, got {self.fallback_entropy}")
        if not 0.0 <= self.gate_entropy < 1.0:
            raise ValueError(f"gate_entropy must be in [0, 1) bit, got {self.gate_entropy}")

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
        >>> EnsembleParams(fallback_iou=0.0, fallback_entropy=0.0, gate_entropy=0.0).label()
        'AND, p >= 0.5, area opening 150 px at 256x256'
        >>> EnsembleParams(fallback_iou=0.3, fallback_entropy=0.5, gate_entropy=0).label()[-64:]
        "alone where IoU(HM, DEEP) < 0.3 or the U-Net's entropy > 0.5 bit"
        """
        area = "no area opening" if not self.min_area else (
            f"area opening {self.min_area} px"
            + (" at 256x256" if self.reference_area == 256 * 256 else
               f" at {self.reference_area} px" if self.reference_area else ""))
        return (f"{self.rule()}, p >= {self.threshold:g}, {area}{self.fallback_label()}"
                f"{self.gate_label()}")

    def fallback_label(self) -> str:
        """When the handcrafted mask is kept alone, in words (empty when never).

        Examples
        --------
        >>> EnsembleParams(fallback_iou=0.0, fallback_entropy=0.45).fallback_label()
        ", handcrafted alone where the U-Net's entropy > 0.45 bit"
        """
        parts = ([f"IoU(HM, DEEP) < {self.fallback_iou:g}"] if self.fallback_iou else []) + (
            [f"the U-Net's entropy > {self.fallback_entropy:g} bit"] if self.fallback_entropy
            else [])
        return f", handcrafted alone where {' or '.join(parts)}" if parts else ""

    def gate_label(self) -> str:
        """When a whole image set keeps its handcrafted masks, in words (empty when never).

        Examples
        --------
        >>> EnsembleParams(gate_entropy=0.3).gate_label()
        '; handcrafted alone on a whole image set whose median U-Net entropy > 0.3 bit'
        """
        return (f"; handcrafted alone on a whole image set whose median U-Net entropy > "
                f"{self.gate_entropy:g} bit" if self.gate_entropy else "")

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


def uncertainty(handcrafted: np.ndarray, deep_proba: np.ndarray) -> float:
    """Mean binary entropy (bits) of ``deep_proba`` on the handcrafted mask's pixels.

    These are the pixels on which AND lets the U-Net vote (keep or veto): 0
    for a U-Net sure of each of them (probabilities 0 or 1), 1 for one that
    answers 0.5 everywhere; 0 when the handcrafted mask is empty.

    Examples
    --------
    >>> import numpy as np
    >>> hm = np.zeros((10, 10), bool); hm[:, :5] = True
    >>> sure, unsure = np.where(hm, 0.99, 0.01), np.where(hm, 0.6, 0.01)
    >>> round(uncertainty(hm, sure), 3), round(uncertainty(hm, unsure), 3)
    (0.081, 0.971)
    """
    hm = np.asarray(handcrafted, dtype=bool)
    if not hm.any():
        return 0.0
    q = np.clip(np.asarray(deep_proba, dtype=np.float64)[hm], 1e-6, 1.0 - 1e-6)
    return float(np.mean(-(q * np.log2(q) + (1.0 - q) * np.log2(1.0 - q))))


def keeps_handcrafted(params: EnsembleParams, agreement_iou: float, entropy: float) -> bool:
    """The fallback decision from the two measures (:func:`agreement`, :func:`uncertainty`).

    Examples
    --------
    >>> p = EnsembleParams(fallback_iou=0.3, fallback_entropy=0.5)
    >>> [keeps_handcrafted(p, a, u) for a, u in ((0.9, 0.2), (0.2, 0.2), (0.9, 0.6))]
    [False, True, True]
    """
    return bool((params.fallback_iou and agreement_iou < params.fallback_iou)
                or (params.fallback_entropy and entropy > params.fallback_entropy))


def falls_back(handcrafted: np.ndarray, deep_proba: np.ndarray,
               params: EnsembleParams | None = None) -> bool:
    """Whether the ensemble keeps the handcrafted mask alone on this image.

    Examples
    --------
    >>> import numpy as np
    >>> hm = np.zeros((10, 10), bool); hm[:, :5] = True
    >>> unsure = np.where(hm, 0.6, 0.01)
    >>> falls_back(hm, unsure, EnsembleParams(fallback_iou=0.0, fallback_entropy=0.0))
    False
    >>> falls_back(hm, unsure, EnsembleParams(fallback_iou=0.0, fallback_entropy=0.5))
    True
    """
    params = params or EnsembleParams()
    a = agreement(handcrafted, deep_proba, params.threshold) if params.fallback_iou else 1.0
    u = uncertainty(handcrafted, deep_proba) if params.fallback_entropy else 0.0
    return keeps_handcrafted(params, a, u)


def out_of_domain(entropies: Sequence[float], params: EnsembleParams | None = None) -> bool:
    """Whether an image set is out of the U-Net's domain: its median entropy is above the gate.

    Parameters
    ----------
    entropies : sequence of float
        The U-Net's entropy (:func:`uncertainty`) on the images that decide
        (:data:`GATE_SAMPLE` of the set, :func:`~leukolib.stats.evenly_spaced`).
    params : EnsembleParams, optional
        Its ``gate_entropy`` (0: never out of domain).

    Examples
    --------
    >>> p = EnsembleParams(gate_entropy=0.3)
    >>> out_of_domain([0.1, 0.5, 0.6], p), out_of_domain([0.1, 0.1, 0.6], p), out_of_domain([], p)
    (True, False, False)
    """
    params = params or EnsembleParams()
    values = np.asarray(list(entropies), dtype=float)
    return bool(params.gate_entropy and values.size
                and float(np.median(values)) > params.gate_entropy)


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
    >>> rule = {"fallback_iou": 0.0, "fallback_entropy": 0.0}  # the fusion alone
    >>> and_, or_, soft = (EnsembleParams(f, **rule) for f in ("and", "or", "soft"))
    >>> int(fuse(hm, p, and_).sum()), int(fuse(hm, p, or_).sum()), int(fuse(hm, p, soft).sum())
    (100, 188, 144)
    >>> p[4:16, 4:16] = 0.6  # an unsure U-Net (0.67 bit on HM): the default keeps HM alone
    >>> int(fuse(hm, p).sum()) == int(hm.sum())
    True
    """
    params = params or EnsembleParams()
    hm = np.asarray(handcrafted, dtype=bool)
    p = np.asarray(deep_proba, dtype=np.float32)
    if hm.shape != p.shape:
        raise ValueError(f"handcrafted mask {hm.shape} and probability {p.shape} differ in shape")
    # the set gate is a decision on a whole image set (EnsembleSegmenter.calibrate), not here
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
    fold_fusion : bool, optional
        Take each fold's own rule on the U-Net's training images (default:
        :data:`~leukolib.segmentation.fold_fusion.FOLD_FUSION`, the protocol's
        decision); ``False``: ``params`` everywhere.

    With a set gate (``params.gate_entropy``), :meth:`calibrate` on the image
    set decides once whether the whole set keeps its handcrafted masks; an
    image segmented without it is a set of one (its own entropy decides).

    On the U-Net's own training images (out of fold), each image takes the
    rule its fold chose on its validation images
    (:mod:`~leukolib.segmentation.fold_fusion`) where ``fold_fusion`` is on
    and the predictor knows its set; elsewhere ``params``.
    """

    def __init__(
        self,
        deep: Any,
        handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
        params: EnsembleParams | None = None,
        fold_fusion: bool | None = None,
    ) -> None:
        from leukolib.segmentation import fold_fusion as ff
        from leukolib.segmentation.handcrafted import segment_nucleus

        self.deep = deep
        self.handcrafted = handcrafted or segment_nucleus
        self.params = params or EnsembleParams()
        per_fold = ff.FOLD_FUSION if fold_fusion is None else fold_fusion
        self._fold_rule = (ff.FoldFusionRule(deep, self.params, handcrafted)
                           if per_fold and hasattr(deep, "fold_fusions") else None)
        self.fallbacks = 0  # images on which the handcrafted mask was kept alone
        self.set_entropy: float | None = None  # the calibrated set's median entropy
        self.set_out_of_domain: bool | None = None  # None: not calibrated
        self._takes_mask = "handcrafted_mask" in inspect.signature(deep.proba).parameters

    @property
    def mode(self) -> str:
        """The U-Net side's mode (``"out-of-fold"`` or ``"fold-average"``)."""
        return getattr(self.deep, "mode", "unknown")

    @property
    def reason(self) -> str:
        """Why the U-Net side runs in its mode."""
        return getattr(self.deep, "reason", "")

    def _parts(self, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
        hm = np.asarray(self.handcrafted(sample.image), dtype=bool)
        # the handcrafted mask also gives a scale-aware U-Net its nucleus diameter
        p = (self.deep.proba(sample, handcrafted_mask=hm) if self._takes_mask
             else self.deep.proba(sample))
        return hm, p

    def calibrate(self, samples: Sequence[Any]) -> bool:
        """Decide the set gate on an image set (is it out of the U-Net's domain?).

        The U-Net's entropy (:func:`uncertainty`) on up to :data:`GATE_SAMPLE`
        of ``samples`` (evenly spaced, :func:`~leukolib.stats.evenly_spaced`;
        a sample that cannot be read is skipped) is compared, as a median,
        with ``params.gate_entropy``. Then every call keeps the handcrafted
        mask when the set is out of domain.

        Parameters
        ----------
        samples : sequence of Sample
            The set (read on access: only the picked ones are loaded).

        Returns
        -------
        bool
            Whether the set keeps its handcrafted masks (always ``False``
            without a gate, and nothing is computed).
        """
        if not self.params.gate_entropy:
            self.set_entropy, self.set_out_of_domain = None, False
            return False
        values = []
        for i in evenly_spaced(len(samples), GATE_SAMPLE):
            try:
                hm, p = self._parts(samples[i])
            except Exception:  # noqa: BLE001 - an unreadable image is reported when segmented
                continue
            values.append(uncertainty(hm, p))
        self.set_entropy = float(np.median(values)) if values else None
        self.set_out_of_domain = out_of_domain(values, self.params)
        return self.set_out_of_domain

    def __call__(self, sample: Sample) -> np.ndarray:
        """The fused nucleus mask of ``sample``."""
        if self.set_out_of_domain:  # the whole set keeps its handcrafted masks: no U-Net
            self.fallbacks += 1
            return np.asarray(self.handcrafted(sample.image), dtype=bool)
        hm, p = self._parts(sample)
        gated = (self.set_out_of_domain is None
                 and out_of_domain([uncertainty(hm, p)], self.params))
        params = self.params if self._fold_rule is None else self._fold_rule.params_for(sample)
        if gated or falls_back(hm, p, params):  # counted here, decided once
            self.fallbacks += 1
            return hm.copy()
        return fuse(hm, p, replace(params, fallback_iou=0.0, fallback_entropy=0.0))

    def __repr__(self) -> str:
        return f"EnsembleSegmenter({self.params.label()!r}, deep={self.deep!r})"
