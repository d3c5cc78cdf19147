"""Segmentation at the image's own scale: nucleus diameters, resampling, the scale rule.

A U-Net learns nuclei of the size it was shown. Squeezing every image into
one square (the paper's protocol, ``mode="square"``) shows it a 640 x 480
field's nucleus at a quarter of a 120 x 120 crop's, and distorted: a network
trained on one kind of image then fails on the other. Microscopy tools work
at a physical scale instead (Cellpose's ``diameter``, StarDist's tiling):

* **training** (``mode="diameter"``): each image is resampled, its aspect ratio
  kept, so that the training images' **median nucleus diameter** becomes
  :attr:`ScaleSpec.target_diameter` pixels; the network trains on random
  ``patch_size`` patches of the resampled images (two in three centred on a
  nucleus pixel), with a random zoom that covers the spread of nucleus sizes;
* **inference**: a new image is resampled so that *its* nucleus has the target
  diameter, segmented in overlapping patches blended with a Gaussian window
  (``monai.inferers.sliding_window_inference``), and the probabilities are
  resampled back to the image's own size.

The diameter comes, in this order, from the user (a value in pixels); for a
set of images (a dataset, a folder), from the handcrafted masks of up to 32 of
them (:func:`estimate_diameter`: the median, one scale for the whole set, as
the run's training images had one); for a single image, from its own
handcrafted mask (:func:`nucleus_diameter`); or from the run's recorded
training median. :func:`choose_diameter` returns the value and where it came
from, and every output says which.

One scale per set, not one per image: a network trained at its dataset's
median sees small and large nuclei at their own sizes. Resampling every image
so that *its* nucleus has the target size blows a small lymphocyte up two and a
half times, context and all, beyond anything the network trained on (measured on
ALL-IDB2's out-of-fold U-Net: DEEP 0.909 mean IoU per image against 0.931 at
the dataset's scale).

The target is a rule, not a score: a nucleus spans 3/8 of the patch side
(:data:`TARGET_FRACTION`), so a patch holds the nucleus with about one nucleus
radius of cytoplasm and background on each side. At the ``cpu`` profile's 128 px
patch that is 48 px, the size the crops of JTSC (45 px at 120 px, 48 px after
the old resize to 128) and ALL-IDB2 (106 px at 257 px, 53 px after it) already
had, while SMC_IDB's 126 px nuclei in 640 x 480 fields were squeezed to about
25 x 34 px.

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[:100, :100]
>>> disc = (yy - 50) ** 2 + (xx - 50) ** 2 <= 20 ** 2
>>> round(nucleus_diameter(disc), 1)
40.0
>>> spec = ScaleSpec(target_diameter=48, patch_size=128)
>>> round(spec.factor(96.0), 2)
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from leukolib.stats import evenly_spaced

__all__ = [
    "DIAMETER_SOURCES",
    "MAX_FACTOR",
    "TARGET_FRACTION",
    "ScaleSpec",
    "choose_diameter",
    "estimate_diameter",
    "median_diameter",
    "nucleus_centre",
    "nucleus_diameter",
    "nucleus_diameters",
    "resample",
    "resampled_shape",
]

#: The nucleus diameter as a share of the patch side (the rule that sets the target).
TARGET_FRACTION = 3 / 8

#: Largest resampling factor either way (a wrong estimate cannot blow an image up 100-fold).
MAX_FACTOR = 8.0

#: Where the diameter used at inference came from, in the order they are tried.
DIAMETER_SOURCES = ("given", "estimated for the image set", "handcrafted estimate",
                    "run's training median")

#: Images whose handcrafted masks estimate the scale of a set (evenly spaced over it).
ESTIMATE_SAMPLE = 32


def _nuclei(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the nuclei of a bool mask (lobes merged) and each label's own pixel count."""
    area = int(m.sum())
    if area == 0:
        return np.zeros(m.shape, np.int32), np.zeros(0, np.int64)
    radius = max(1, int(round(0.15 * np.sqrt(4.0 * area / np.pi))))
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    linked, n = ndi.label(ndi.binary_dilation(m, yy ** 2 + xx ** 2 <= radius ** 2))
    return linked, np.bincount(linked[m], minlength=n + 1)[1:]


def nucleus_diameters(mask: np.ndarray) -> np.ndarray:
    """Equivalent diameters ``sqrt(4 A / pi)`` of the nuclei of a mask, in pixels.

    The lobes of one nucleus (a neutrophil's, or a nucleus cut by the
    segmentation) are one nucleus: components closer than 15 % of the mask's
    overall equivalent diameter are merged (a dilation by that radius links
    them), and a nucleus's area is its own pixels, not the dilation's.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    ndarray of float
        One diameter per nucleus (empty for an empty mask).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((60, 60), bool); m[10:20, 10:20] = True; m[10:20, 22:32] = True
    >>> nucleus_diameters(m).round(1)   # two lobes 2 px apart: one nucleus of 200 px
    array([16.])
    """
    m = np.asarray(mask, dtype=bool)
    linked, areas = _nuclei(m)
    areas = areas[areas > 0]
    return np.sqrt(4.0 * areas / np.pi)


def nucleus_centre(mask: np.ndarray) -> tuple[int, int] | None:
    """Centre ``(row, col)`` of the largest nucleus of a mask (lobes merged), ``None`` if empty.

    A patch centred here shows one whole nucleus; the centre of all the mask's
    pixels may fall between two cells.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((50, 80), bool); m[10:14, 5:9] = True; m[30:40, 60:70] = True
    >>> nucleus_centre(m)
    (34, 64)
    """
    m = np.asarray(mask, dtype=bool)
    linked, areas = _nuclei(m)
    if not areas.size:
        return None
    rows, cols = np.nonzero(m & (linked == int(np.argmax(areas)) + 1))
    return int(rows.mean()), int(cols.mean())


def nucleus_diameter(mask: np.ndarray) -> float | None:
    """The median nucleus diameter of a mask (:func:`nucleus_diameters`), ``None`` if empty."""
    d = nucleus_diameters(mask)
    return float(np.median(d)) if d.size else None


def median_diameter(masks: Sequence[np.ndarray]) -> float:
    """The median over images of each image's nucleus diameter (empty masks skipped).

    Raises
    ------
    ValueError
        When every mask is empty.
    """
    d = [x for x in (nucleus_diameter(m) for m in masks) if x is not None]
    if not d:
        raise ValueError("no nucleus in any mask: the nucleus diameter cannot be measured")
    return float(np.median(d))


@dataclass(frozen=True)
class ScaleSpec:
    """How a U-Net run sees its images (recorded in every run as ``config["scale"]``).

    Attributes
    ----------
    mode : str
        ``"diameter"``: resample to the nucleus scale and work in patches;
        ``"square"``: resize every image to ``patch_size`` x ``patch_size``
        (the paper's protocol).
    patch_size : int
        Side of the network's input (a multiple of 8).
    target_diameter : float
        Nucleus diameter, in pixels, the images are resampled to (diameter mode).
    overlap : float
        Overlap of neighbouring patches at inference.
    zoom : (float, float)
        Range of the random zoom of training patches (diameter mode).
    colour : str
        ``"gray-world"``: the handcrafted method's colour constancy before the
        network (:func:`~leukolib.segmentation.augment.unet_input`); ``"rgb"``:
        the image as it is (the paper's protocol, and every run written before
        leukolib recorded it).
    """

    mode: str = "diameter"
    patch_size: int = 128
    target_diameter: float = 48.0
    overlap: float = 0.25
    zoom: tuple[float, float] = (0.8, 1.25)
    colour: str = "rgb"

    def __post_init__(self) -> None:
        if self.mode not in ("diameter", "square"):
            raise ValueError(f"scale mode must be 'diameter' or 'square', got {self.mode!r}")
        if self.patch_size < 8 or self.patch_size % 8:
            raise ValueError(f"the patch size must be a positive multiple of 8, "
                             f"got {self.patch_size}")
        if self.target_diameter <= 0:
            raise ValueError(f"the target diameter must be positive, got {self.target_diameter}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.colour not in ("rgb", "gray-world"):
            raise ValueError(f"colour must be 'rgb' or 'gray-world', got {self.colour!r}")

    @classmethod
    def for_patch(cls, patch_size: int, mode: str = "diameter", colour: str = "rgb") -> ScaleSpec:
        """The rule: a nucleus spans :data:`TARGET_FRACTION` of the patch side."""
        return cls(mode=mode, patch_size=int(patch_size),
                   target_diameter=float(round(TARGET_FRACTION * patch_size)), colour=colour)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ScaleSpec:
        """The spec of a run's config; a run without one resized to a square."""
        s = config.get("scale")
        if not s:
            return cls(mode="square", patch_size=int(config["image_size"]))
        return cls(mode=s["mode"], patch_size=int(s["patch_size"]),
                   target_diameter=float(s["target_diameter"]), overlap=float(s["overlap"]),
                   zoom=tuple(float(z) for z in s["zoom"]), colour=s.get("colour", "rgb"))

    def factor(self, diameter: float) -> float:
        """Resampling factor that gives a nucleus of ``diameter`` px the target diameter."""
        if not diameter or diameter <= 0:
            raise ValueError(f"a nucleus diameter must be positive, got {diameter}")
        return float(np.clip(self.target_diameter / float(diameter), 1 / MAX_FACTOR, MAX_FACTOR))

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain dict (JSON)."""
        d = asdict(self)
        d["zoom"] = list(self.zoom)
        return d

    def label(self) -> str:
        """In words, for outputs."""
        colour = ", gray-world colour constancy" if self.colour == "gray-world" else ""
        if self.mode == "square":
            return f"every image resized to {self.patch_size} x {self.patch_size} px{colour}"
        return (f"nucleus resampled to {self.target_diameter:g} px, "
                f"{self.patch_size} px patches overlapping by {self.overlap:g}{colour}")


def resampled_shape(shape: Sequence[int], factor: float, minimum: int = 8) -> tuple[int, int]:
    """``(H, W)`` scaled by ``factor``, rounded, at least ``minimum`` px each."""
    h, w = int(shape[0]), int(shape[1])
    return max(minimum, int(round(h * factor))), max(minimum, int(round(w * factor)))


def resample(x: torch.Tensor, factor: float, *, mask: bool = False) -> torch.Tensor:
    """Resample ``(C, H, W)`` by ``factor``, aspect ratio kept.

    Bilinear (antialiased when shrinking); a mask (``mask=True``) is
    resampled bilinearly and thresholded at 0.5.
    """
    hw = resampled_shape(x.shape[-2:], factor)
    if tuple(x.shape[-2:]) == hw:
        return x
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    y = F.interpolate(x[None].float(), size=hw, mode="bilinear", align_corners=False,
                      antialias=shrink)[0]
    return (y >= 0.5).float() if mask else y


def estimate_diameter(images: Sequence[Any], handcrafted: Callable | None = None,
                      n: int = ESTIMATE_SAMPLE) -> tuple[float | None, int]:
    """The nucleus diameter of a set of images: the median over up to ``n`` of them.

    Each image's diameter is its handcrafted mask's (:func:`nucleus_diameter`);
    the images are evenly spaced over the set, so the estimate is the same
    whenever the set is.

    Parameters
    ----------
    images : sequence
        Images ``(H, W, 3)``, or samples (anything with an ``image``), e.g. a
        :class:`~leukolib.data.Dataset`.
    handcrafted : callable, optional
        ``handcrafted(image) -> bool mask`` (default: the handcrafted defaults).
    n : int

    Returns
    -------
    (float or None, int)
        The median diameter (``None`` when no mask has a nucleus) and how many
        images gave one.
    """
    if handcrafted is None:
        from leukolib.segmentation.handcrafted import segment_nucleus as handcrafted
    total = len(images)
    if total == 0:
        return None, 0
    found = []
    for i in evenly_spaced(total, n):
        item = images[i]
        d = nucleus_diameter(handcrafted(getattr(item, "image", item)))
        if d is not None:
            found.append(d)
    return (float(np.median(found)) if found else None), len(found)


def choose_diameter(
    image: np.ndarray,
    given: float | None = None,
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
    fallback: float | None = None,
) -> tuple[float, str]:
    """The nucleus diameter to resample an image by, and where it came from.

    Parameters
    ----------
    image : ndarray (H, W, 3)
    given : float, optional
        A diameter in pixels from the user (``--diameter``): used as is.
    handcrafted : callable, optional
        ``handcrafted(image) -> bool mask``; its median nucleus diameter is the
        estimate (default: the handcrafted method's defaults).
    fallback : float, optional
        The run's training median, used when the handcrafted mask is empty.

    Returns
    -------
    (float, str)
        The diameter and its source, one of :data:`DIAMETER_SOURCES`.

    Raises
    ------
    ValueError
        When ``given`` is not positive, or nothing gives a diameter.
    """
    if given is not None:
        if not given > 0:
            raise ValueError(f"the nucleus diameter must be positive, got {given}")
        return float(given), DIAMETER_SOURCES[0]
    if handcrafted is None:
        from leukolib.segmentation.handcrafted import segment_nucleus as handcrafted
    d = nucleus_diameter(handcrafted(image))
    if d is not None:
        return d, DIAMETER_SOURCES[2]
    if fallback:
        return float(fallback), DIAMETER_SOURCES[3]
    raise ValueError("no nucleus diameter: the handcrafted mask is empty and no fallback given")
