"""The paper's handcrafted nucleus segmentation (its Algorithm 1, Table A1).

White-blood-cell nuclei stained with Giemsa/Wright are the most saturated and
most magenta-violet objects of a smear, so the method multiplies two colour
features and thresholds the result:

====  ==========================================================================
step  operation (function)
====  ==========================================================================
1     read the RGB image
2     gray-world colour constancy (:func:`color_constancy`)
3-4   RGB to CMYK, keep the magenta channel M (:func:`cmyk_magenta`)
5-6   RGB to HSV, keep the saturation S (:func:`hsv_saturation`)
7     Hadamard product M * S (:func:`hadamard_product`)
8     bilateral filter, kernel 9, colour and spatial sigma 50 (:func:`bilateral`)
9     Otsu threshold (:func:`otsu_threshold`)
10    morphological closing, 3 x 3 (:func:`closing`)
11    hole filling (:func:`fill_holes`)
12    removal of objects under 150 px (:func:`area_filter`)
13    the RGB image masked by the result (:func:`apply_mask`)
====  ==========================================================================

plus the dilation of Table A1 (radius 2; 4 for basophils), which Algorithm 1
does not place. Where it goes, whether its radius and the area threshold
scale with the image size, and whether it is applied at all were decided by
the selection protocol of :mod:`leukolib.segmentation.selection` (chosen on
some datasets, reported on another); :class:`HandcraftedParams` documents
each choice, and ``leukolib/reference/segmentation.json`` holds the measurements.

:func:`segment_nucleus` returns the final mask; :func:`handcrafted_stages`
returns every intermediate image, for figures. Everything runs in vectorised
float32 numpy and OpenCV (no per-pixel Python loop; the bilateral filter is
most of the time, ``benchmarks/bench_handcrafted.py`` measures it). No global
OpenCV state (thread count) is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from leukolib.data.io import to_rgb_uint8
from leukolib.paper import HANDCRAFTED_PARAMS
from leukolib.segmentation.features import (
    bilateral,
    cmyk_magenta,
    color_constancy,
    hadamard_product,
    hsv_saturation,
    max_min_green,
    otsu_threshold,
)
from leukolib.segmentation.morphology import (
    apply_mask,
    area_filter,
    closing,
    dilate,
    dilation_radius,
    fill_holes,
    min_area_pixels,
)

__all__ = [
    "DILATION_POSITIONS",
    "HandcraftedParams",
    "apply_mask",
    "area_filter",
    "bilateral",
    "closing",
    "cmyk_magenta",
    "color_constancy",
    "dilate",
    "dilation_radius",
    "fill_holes",
    "hadamard_product",
    "handcrafted_stages",
    "hsv_saturation",
    "min_area_pixels",
    "otsu_threshold",
    "segment_nucleus",
]

DilationPosition = Literal["none", "after_otsu", "after_closing", "after_area_filter"]

#: Where the Table A1 dilation may be applied, in pipeline order.
DILATION_POSITIONS: tuple[str, ...] = ("none", "after_otsu", "after_closing", "after_area_filter")

_P = HANDCRAFTED_PARAMS


@dataclass(frozen=True)
class HandcraftedParams:
    """Parameters of the handcrafted segmentation (defaults: the paper's Table A1).

    The numbers come from the paper's Table A1
    (:data:`leukolib.paper.HANDCRAFTED_PARAMS`). The choices the paper leaves
    open (where the dilation goes, whether lengths and areas scale with the
    image) were made by the selection protocol of
    :mod:`leukolib.segmentation.selection`: the paper's reading is kept unless a
    candidate beats it by more than its spread between the choosing datasets.
    The same defaults serve every dataset: nothing is tuned per dataset.

    Attributes
    ----------
    bilateral_diameter : int
        Diameter of the bilateral filter's pixel neighbourhood (9).
    bilateral_sigma_color : float
        Colour (range) sigma of the bilateral filter (50), in grey levels of
        the M * S product **scaled to 0..255**. OpenCV's ``sigmaColor`` is in
        the units of the image and M * S lies in [0, 1]: filtered unscaled,
        sigma 50 would make the range kernel flat, i.e. a plain Gaussian blur.
        The paper's 50 reads as 8-bit grey levels, the usual convention.
    bilateral_sigma_space : float
        Spatial sigma of the bilateral filter, in pixels (50).
    closing_kernel : int
        Side of the square structuring element of the closing (3).
    min_area : int
        Objects with fewer pixels than this are removed (150), at an image of
        ``reference_area`` pixels (see ``scale_min_area``).
    reference_area : int
        The image area, in pixels, at which ``min_area`` and ``dilation`` are
        taken to hold: 256 * 256, the size the paper resizes every image to
        for its U-Net, the only working size it states.
    scale_min_area : bool
        Scale ``min_area`` by ``H * W / reference_area`` (:func:`min_area_pixels`),
        so that the filter removes objects of the same size *relative to the
        field of view* whatever the resolution: 33 px at 120 x 120, 151 px at
        257 x 257, 703 px at 640 x 480. ``False`` takes 150 px at every size.
    dilation : int
        Radius, in pixels (at ``reference_area`` when scaled), of the disk the
        mask is dilated with (Table A1: 2, and 4 for basophils; the method
        does not know the class, so pass ``dilation=HANDCRAFTED_PARAMS
        ["dilation_basophil"]`` yourself for a basophil). 0 disables it.
    scale_dilation : bool
        Scale the radius by ``sqrt(H * W / reference_area)``, rounded
        (:func:`dilation_radius`): 1 px at 120 x 120, 2 px at 257 x 257, 4 px
        at 640 x 480 (a radius is a length). ``False``: the radius in pixels
        at every size.
    dilation_position : str
        Where the dilation is applied, one of :data:`DILATION_POSITIONS`
        (Algorithm 1 does not place it; ``"none"`` skips it).
    connectivity : int
        Pixel connectivity of the objects of the area filter, 4 or 8 (8; the
        holes are 4-connected background, the consistent pair).
    """

    bilateral_diameter: int = int(_P["bilateral_diameter"])
    bilateral_sigma_color: float = float(_P["bilateral_sigma_color"])
    bilateral_sigma_space: float = float(_P["bilateral_sigma_space"])
    closing_kernel: int = int(_P["closing_kernel"])
    min_area: int = int(_P["min_area"])
    reference_area: int = 256 * 256
    scale_min_area: bool = True
    dilation: int = int(_P["dilation"])
    scale_dilation: bool = True
    dilation_position: DilationPosition = "after_area_filter"
    connectivity: int = 8

    def __post_init__(self) -> None:
        for name in ("bilateral_diameter", "closing_kernel"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("bilateral_sigma_color", "bilateral_sigma_space"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.min_area < 0 or self.dilation < 0:
            raise ValueError("min_area and dilation must be non-negative")
        if self.reference_area <= 0:
            raise ValueError(f"reference_area must be positive, got {self.reference_area}")
        if self.dilation_position not in DILATION_POSITIONS:
            raise ValueError(
                f"dilation_position must be one of {', '.join(DILATION_POSITIONS)}, "
                f"got {self.dilation_position!r}"
            )
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {self.connectivity}")

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for JSON run records)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}



# ----------------------------------------------------------------------------- pipeline


def _pipeline(
    image: np.ndarray, params: HandcraftedParams, stages: dict[str, Any] | None
) -> np.ndarray:
    rgb = to_rgb_uint8(image)
    corrected = color_constancy(rgb)
    # M and S share max(r, g, b): compute the channel extremes once.
    mx, mn, g = max_min_green(corrected)
    inv = 1.0 / np.maximum(mx, np.float32(1e-6))
    magenta = (mx - g) * inv
    saturation = (mx - mn) * inv
    product = hadamard_product(magenta, saturation)
    filtered = bilateral(
        product,
        params.bilateral_diameter,
        params.bilateral_sigma_color,
        params.bilateral_sigma_space,
    )
    mask, threshold = otsu_threshold(filtered)
    keep = stages.__setitem__ if stages is not None else (lambda name, value: None)
    for name, value in (
        ("rgb", rgb),
        ("corrected", corrected),
        ("magenta", magenta),
        ("saturation", saturation),
        ("product", product),
        ("filtered", filtered),
        ("threshold", threshold),
        ("otsu", mask),
    ):
        keep(name, value)

    radius = 0
    if params.dilation_position != "none":
        reference = params.reference_area if params.scale_dilation else None
        radius = dilation_radius(rgb.shape, params.dilation, reference)

    def maybe_dilate(position: str, m: np.ndarray) -> np.ndarray:
        if params.dilation_position == position:
            if radius:  # the scaled radius rounds to 0 on tiny images
                m = dilate(m, radius)
            keep("dilated", m)  # present whenever a position is set: stable keys
        return m

    mask = maybe_dilate("after_otsu", mask)
    mask = closing(mask, params.closing_kernel)
    keep("closed", mask)
    mask = maybe_dilate("after_closing", mask)
    mask = fill_holes(mask)
    keep("filled", mask)
    reference = params.reference_area if params.scale_min_area else None
    mask = area_filter(
        mask, min_area_pixels(rgb.shape, params.min_area, reference), params.connectivity
    )
    keep("area_filtered", mask)
    mask = maybe_dilate("after_area_filter", mask)
    keep("final", mask)
    if stages is not None:
        stages["masked_rgb"] = apply_mask(rgb, mask)
    return mask


def segment_nucleus(image: np.ndarray, params: HandcraftedParams | None = None) -> np.ndarray:
    """Segment the white-blood-cell nucleus of an RGB image (Algorithm 1).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3) or (H, W)
        RGB image, uint8 (other dtypes and gray are converted by
        :func:`leukolib.data.io.to_rgb_uint8`).
    params : HandcraftedParams, optional
        Defaults: the paper's Table A1.

    Returns
    -------
    ndarray of bool, shape (H, W)
        The nucleus mask; empty for a constant image.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((64, 64, 3), (230, 200, 200), np.uint8)  # pink background
    >>> yy, xx = np.mgrid[:64, :64]
    >>> img[(yy - 32) ** 2 + (xx - 32) ** 2 < 15**2] = (110, 40, 150)  # violet nucleus
    >>> mask = segment_nucleus(img)
    >>> int(mask.sum()), bool(mask[32, 32]), bool(mask[0, 0])  # the 697-px disk, dilated 1 px
    (785, True, False)
    >>> int(segment_nucleus(np.full((8, 8, 3), 128, np.uint8)).sum())  # constant: empty
    0
    """
    return _pipeline(image, params or HandcraftedParams(), None)


def handcrafted_stages(
    image: np.ndarray, params: HandcraftedParams | None = None
) -> dict[str, Any]:
    """Every intermediate result of :func:`segment_nucleus`, in pipeline order.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image.
    params : HandcraftedParams, optional
        Defaults: the paper's Table A1.

    Returns
    -------
    dict
        In order: ``rgb`` (uint8 input), ``corrected`` (float32 0..255),
        ``magenta``, ``saturation``, ``product`` (float32 0..1), ``filtered``
        (uint8 0..255), ``threshold`` (float, Otsu's value on ``filtered``),
        ``otsu``, ``closed``, ``filled``, ``area_filtered``, ``final`` (bool
        masks) and ``masked_rgb`` (uint8, the input outside the nucleus set to
        black). When the dilation is on, a ``dilated`` mask follows the step
        it is applied after (by default ``area_filtered``).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    >>> list(handcrafted_stages(img))  # doctest: +NORMALIZE_WHITESPACE
    ['rgb', 'corrected', 'magenta', 'saturation', 'product', 'filtered', 'threshold',
     'otsu', 'closed', 'filled', 'area_filtered', 'dilated', 'final', 'masked_rgb']
    """
    stages: dict[str, Any] = {}
    _pipeline(image, params or HandcraftedParams(), stages)
    return stages
