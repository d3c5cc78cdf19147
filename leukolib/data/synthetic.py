"""Synthetic blood smears: the embedded default dataset.

Every notebook of the book runs on these images without any download. Each
image is a field of a stained peripheral blood smear with one lymphoblast
(sometimes two) whose look follows the French-American-British (FAB)
criteria for the three morphological subtypes of acute lymphoblastic
leukemia:

====== ============================ ======================================
class  cell                         nucleus
====== ============================ ======================================
``L1`` small, scant cytoplasm        small, round, homogeneous chromatin,
       (thin pale blue rim)          no visible nucleoli
``L2`` larger, variable size, more   irregular, often cleft or notched,
       pale blue-lilac cytoplasm     heterogeneous chromatin, 1-2 nucleoli
``L3`` large, deeply basophilic      large, round or oval, finely stippled
       (deep blue) cytoplasm with    chromatin, 2-4 prominent nucleoli
       vacuoles (clear holes)
====== ============================ ======================================

Nucleus area therefore separates the classes: L1 is clearly the smallest, L3
the largest, L2 lies in between and varies most (at 256 x 256 pixels the
nucleus covers about 600-1100 px for L1, 700-2100 px for L2 and 1650-2900 px
for L3, so a threshold on nucleus area alone separates L1 from L3).

How an image is drawn
---------------------
The image is rendered in optical density (Beer-Lambert law): every stained
object adds an RGB absorbance and the pixel is ``light * exp(-density)``, so
overlapping red cells look darker where they overlap, as in a real smear.

* **Background**: plasma tinted between yellowish and pinkish, with a random
  tint strength (saturation), a slight illuminant colour cast, a random
  brightness, a smooth linear illumination gradient and a low-frequency
  mottling. Colour constancy therefore matters.
* **Red blood cells** (10-40 at 256 x 256): pale pink, slightly elliptic discs
  with a lighter central pallor and a soft edge, overlapping each other and
  clipped at the borders. They may overlap the rim of a white cell but are
  hidden under it.
* **Platelets** (1-5): small purple blobs of 10-70 px (always under 150 px)
  at 256 x 256, scaled with the image; they never touch each other nor a
  white cell, so an area filter removes them from a nucleus segmentation.
* **White cells**: one, or two with probability 0.15, never overlapping each
  other; cytoplasm plus a purple nucleus textured by upsampled low-resolution
  random fields, with pale nucleoli and (L3) vacuoles.
* Finally a slight Gaussian blur (sigma at most 1 px) and a mild Gaussian
  pixel noise are applied to the image only.

The ground-truth masks are the very shapes that were painted: the nucleus
mask is where nucleus colour was painted and the cytoplasm mask is the rest
of the white cell(s); with two white cells both are in the masks. Outlines
are anti-aliased in the image only: a pixel belongs to a mask when the shape
covers at least half of it, and only the one-pixel border of a shape is a
blend of colours. Blur and noise never change the masks.

The shortcut
------------
``shortcut`` (in ``[-1, 1]``) plants a spurious cue outside the nucleus. A
nuisance value ``u`` in ``[0, 1]`` sets both the red-cell density (``u = 0``:
fewest red cells, ``u = 1``: most) and the background tint (``u = 0``:
yellowish, ``u = 1``: pinkish). With ``s = |shortcut|`` and
``v ~ Uniform(0, 1)``::

    u = s * label / 2       + (1 - s) * v    if shortcut >= 0
    u = s * (2 - label) / 2 + (1 - s) * v    if shortcut < 0

With ``shortcut = 0`` the red-cell density and tint are independent of the
class; with ``shortcut = 1`` they are fully determined by it (L1: 10 red cells
on a yellow background, L2: 25 on an intermediate tint, L3: 40 on a pink
background); in between, the cue is partially predictive. A negative
``shortcut`` reverses the cue (``shortcut = -1``: L1 40 red cells on pink, L3
10 on yellow), to test a classifier on a shortcut that no longer holds. A
classifier trained on whole images with a strong shortcut can learn to count
red cells instead of looking at the blast, and fails when the cue is removed
or reversed; one that only sees the segmented nucleus cannot cheat. This is
the book's argument for segmentation as hard attention. Brightness, tint
strength, colour cast and illumination gradient stay independent of the class
at any ``shortcut``.

Determinism
-----------
An image is a pure function of ``(label, seed, config)``: only a numpy
:class:`~numpy.random.Generator` draws random numbers, and no state is shared
between calls but a read-only tile of noise. The same seed gives the same bytes
on the same machine with the same numpy and OpenCV versions, whatever the
access order or thread. In :class:`SyntheticDataset`, sample ``i`` is drawn
from ``np.random.SeedSequence(seed).spawn(n)[i]``, built directly in O(1).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from leukolib.data.base import Dataset
from leukolib.data.sample import Sample

__all__ = [
    "CLASS_NAMES",
    "SmearConfig",
    "SmearLayers",
    "SyntheticDataset",
    "generate_smear",
    "generate_smear_layers",
]

CLASS_NAMES: tuple[str, ...] = ("L1", "L2", "L3")
"""FAB subtypes of acute lymphoblastic leukemia, in label order."""

_REFERENCE_SIZE = 256  # the geometry below is in pixels of a 256 x 256 image
_MIN_SIZE = 64

# Absorbance (optical density, natural log) of each stain, RGB order.
_YELLOW_OD = np.array([0.015, 0.045, 0.20], np.float32)  # yellowish plasma
_PINK_OD = np.array([0.015, 0.12, 0.075], np.float32)  # pinkish plasma
_RBC_OD = np.array([0.09, 0.37, 0.35], np.float32)  # pale pink red cell
_RBC_OVERLAP = 0.4  # darkening where red cells overlap, relative to the Beer-Lambert sum
_PLATELET_OD = np.array([0.50, 0.95, 0.35], np.float32)  # purple
_NUCLEUS_OD = np.array([0.92, 1.55, 0.55], np.float32)  # purple / violet
_CYTOPLASM_OD = (  # by label: pale blue-lilac (L1, L2), deep blue (L3)
    np.array([0.34, 0.26, 0.11], np.float32),
    np.array([0.36, 0.31, 0.12], np.float32),
    np.array([0.89, 0.60, 0.27], np.float32),
)


@dataclass(frozen=True)
class _CellShape:
    """Class-specific look of a blast; lengths in pixels at 256 x 256, ranges inclusive."""

    nucleus_radius: tuple[float, float]  # semi-major axis of the nucleus
    aspect: tuple[float, float]  # minor / major axis of the nucleus
    irregularity: float  # amplitude of the low harmonics of the nucleus outline
    rim: tuple[float, float]  # cytoplasm thickness around the nucleus
    chromatin: float  # contrast of the chromatin texture
    chromatin_cells: int  # coarseness of the chromatin texture (more: finer)
    notch_probability: float = 0.0  # chance of a cleft / indentation
    notch_depth: tuple[float, float] = (0.0, 0.0)  # relative to the radius
    nucleoli: tuple[int, int] = (0, 0)
    nucleolus_radius: tuple[float, float] = (0.0, 0.0)
    vacuoles: tuple[int, int] = (0, 0)
    vacuole_radius: tuple[float, float] = (0.0, 0.0)


# fmt: off
_SHAPES = (  # by label
    _CellShape(  # L1: small, scant cytoplasm, round homogeneous nucleus
        nucleus_radius=(14.0, 18.0), aspect=(0.90, 1.0), irregularity=0.02, rim=(2.5, 5.0),
        chromatin=0.10, chromatin_cells=7,
    ),
    _CellShape(  # L2: larger, variable, cleft nucleus with nucleoli, more cytoplasm
        nucleus_radius=(17.0, 27.0), aspect=(0.72, 0.95), irregularity=0.07, rim=(6.0, 14.0),
        chromatin=0.26, chromatin_cells=6, notch_probability=0.8, notch_depth=(0.2, 0.45),
        nucleoli=(1, 2), nucleolus_radius=(2.5, 4.0),
    ),
    _CellShape(  # L3: large, round / oval nucleus, nucleoli, vacuolated blue cytoplasm
        nucleus_radius=(24.5, 30.0), aspect=(0.82, 1.0), irregularity=0.02, rim=(8.0, 13.0),
        chromatin=0.20, chromatin_cells=12, nucleoli=(2, 4), nucleolus_radius=(2.5, 4.0),
        vacuoles=(5, 12), vacuole_radius=(1.4, 3.0),
    ),
)
# fmt: on


@dataclass(frozen=True)
class SmearConfig:
    """Knobs of the synthetic smear generator.

    Geometry is specified at 256 x 256 pixels and scales with the shorter
    image side, so a larger ``size`` renders the same field at a higher
    resolution. A non-square image widens the field, and the red-cell and
    platelet counts scale with the extra area.

    Attributes
    ----------
    size : int or tuple of int
        Image size in pixels: ``n`` for ``n x n``, or ``(height, width)``.
        The shorter side must be at least 64.
    rbc_count : tuple of int
        Inclusive range of the number of red blood cells in a 256 x 256 field.
        Where a count falls in the range is set by the nuisance value (see
        ``shortcut``).
    platelet_count : tuple of int
        Inclusive range of the number of platelets in a 256 x 256 field.
    two_wbc_probability : float
        Probability, in ``[0, 1]``, that the field holds two white cells of
        the same class instead of one.
    shortcut : float
        In ``[-1, 1]``: how much the red-cell density and the background tint
        (yellowish to pinkish) depend on the class. 0: independent of the
        class; 1: fully determined by it (L1 fewest red cells and yellow, L3
        most and pink); -1: fully determined, reversed (L1 most red cells and
        pink, L3 fewest and yellow). See the module documentation.
    noise_sigma : float
        Standard deviation of the additive Gaussian pixel noise, in grey
        levels (0-255 scale).
    blur_sigma : tuple of float
        Range of the standard deviation, in pixels, of the Gaussian blur
        applied to the image (not the masks). At most 1.
    brightness : tuple of float
        Range of the light intensity, as a fraction of full scale.
    illumination_gradient : float
        Maximum relative change of the light across the field (a linear
        ramp in a random direction), e.g. 0.12 for +-6 %.
    color_cast : float
        Maximum relative attenuation of each RGB channel of the light,
        drawn independently per channel (an illuminant colour cast).
    tint_strength : tuple of float
        Range of the background tint strength (its saturation), relative to
        the nominal yellow / pink plasma absorbance.
    stain_jitter : float
        Maximum relative change of the staining intensity (all stains), plus
        half of it per RGB channel (a slight stain hue change).

    Raises
    ------
    ValueError
        If a value is out of range.

    Examples
    --------
    >>> config = SmearConfig(size=(192, 320), shortcut=-0.5)
    >>> config.shape, config.shortcut
    ((192, 320), -0.5)
    >>> SmearConfig(shortcut=2.0)
    Traceback (most recent call last):
    ...
    ValueError: shortcut must be in [-1, 1], got 2.0
    """

    size: int | tuple[int, int] = 256
    rbc_count: tuple[int, int] = (10, 40)
    platelet_count: tuple[int, int] = (1, 5)
    two_wbc_probability: float = 0.15
    shortcut: float = 0.0
    noise_sigma: float = 2.5
    blur_sigma: tuple[float, float] = (0.5, 0.9)
    brightness: tuple[float, float] = (0.86, 1.0)
    illumination_gradient: float = 0.12
    color_cast: float = 0.05
    tint_strength: tuple[float, float] = (0.5, 1.3)
    stain_jitter: float = 0.12

    def __post_init__(self) -> None:
        size = self.size
        if _is_int(size):
            shape = (int(size), int(size))
        elif isinstance(size, (tuple, list)) and len(size) == 2 and all(map(_is_int, size)):
            shape = (int(size[0]), int(size[1]))
        else:
            raise ValueError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
        if min(shape) < _MIN_SIZE:
            raise ValueError(f"size must be at least {_MIN_SIZE} pixels on each side, got {size!r}")
        # Store plain ints and tuples, so that configs compare and hash by value.
        object.__setattr__(self, "size", shape[0] if _is_int(size) else shape)
        for name in ("rbc_count", "platelet_count", "blur_sigma", "brightness", "tint_strength"):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        _check_range("rbc_count", self.rbc_count, 0, None, integer=True)
        _check_range("platelet_count", self.platelet_count, 0, None, integer=True)
        _check_scalar("two_wbc_probability", self.two_wbc_probability, 0.0, 1.0)
        _check_scalar("shortcut", self.shortcut, -1.0, 1.0)
        _check_scalar("noise_sigma", self.noise_sigma, 0.0, 50.0)
        _check_range("blur_sigma", self.blur_sigma, 0.0, 1.0)
        _check_range("brightness", self.brightness, 0.1, 1.0)
        _check_scalar("illumination_gradient", self.illumination_gradient, 0.0, 1.0)
        _check_scalar("color_cast", self.color_cast, 0.0, 0.5)
        _check_range("tint_strength", self.tint_strength, 0.0, 5.0)
        _check_scalar("stain_jitter", self.stain_jitter, 0.0, 0.5)

    @property
    def shape(self) -> tuple[int, int]:
        """Image ``(height, width)`` in pixels."""
        if _is_int(self.size):
            return (int(self.size), int(self.size))
        return (int(self.size[0]), int(self.size[1]))


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_scalar(name: str, value: object, lo: float, hi: float) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not lo <= float(value) <= hi:  # also rejects NaN
        raise ValueError(f"{name} must be in [{lo:g}, {hi:g}], got {value!r}")


def _check_range(
    name: str, value: object, lo: float, hi: float | None, integer: bool = False
) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
    ):
        what = "ints" if integer else "numbers"
        raise ValueError(f"{name} must be a (low, high) pair of {what}, got {value!r}")
    a, b = value
    if not lo <= a <= b <= (math.inf if hi is None else hi):
        bound = f"[{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise ValueError(f"{name} must satisfy low <= high, both {bound}, got {value!r}")


@dataclass(frozen=True)
class SmearLayers:
    """A synthetic smear with the layers behind it, for tests and teaching.

    Attributes
    ----------
    sample : Sample
        The image and its nucleus / cytoplasm ground truth.
    rbc : ndarray of bool, shape (H, W)
        Visible red-cell pixels (red cells are hidden under white cells).
    platelets : ndarray of bool, shape (H, W)
        Platelet pixels.
    rbc_count : int
        Number of red cells drawn (some may be clipped or partly hidden).
    wbc_count : int
        Number of white cells (1 or 2).
    nuisance : float
        The nuisance value ``u`` in ``[0, 1]`` that set the red-cell density
        and the background tint (see :class:`SmearConfig` ``shortcut``).
    """

    sample: Sample
    rbc: np.ndarray
    platelets: np.ndarray
    rbc_count: int
    wbc_count: int
    nuisance: float


def generate_smear(
    label: int,
    seed: int | np.random.SeedSequence | np.random.Generator,
    config: SmearConfig = SmearConfig(),  # noqa: B008 - frozen, immutable default
    id: str = "",
) -> Sample:
    """Render one synthetic blood smear of an ALL subtype.

    Parameters
    ----------
    label : int
        Class index: 0 (L1), 1 (L2) or 2 (L3); see :data:`CLASS_NAMES`.
    seed : int, SeedSequence or Generator
        Randomness. An int or a SeedSequence always gives the same image; a
        Generator is advanced.
    config : SmearConfig, optional
        Image size and generator knobs.
    id : str, optional
        Identifier stored in the sample.

    Returns
    -------
    Sample
        ``image`` uint8 (H, W, 3) RGB, ``nucleus`` and ``cytoplasm`` bool
        (H, W) (disjoint, both non-empty), ``label``, ``id`` and
        ``path=None``.

    Raises
    ------
    ValueError
        If ``label`` is not 0, 1 or 2, or ``seed`` is of a wrong kind.

    Examples
    --------
    >>> sample = generate_smear(2, seed=7)
    >>> sample.image.shape, sample.image.dtype, sample.label
    ((256, 256, 3), dtype('uint8'), 2)
    >>> bool((sample.nucleus & sample.cytoplasm).any())
    False
    >>> again = generate_smear(2, seed=7)
    >>> bool((again.image == sample.image).all())
    True
    """
    return generate_smear_layers(label, seed, config, id).sample


def generate_smear_layers(
    label: int,
    seed: int | np.random.SeedSequence | np.random.Generator,
    config: SmearConfig = SmearConfig(),  # noqa: B008 - frozen, immutable default
    id: str = "",
) -> SmearLayers:
    """Render a smear like :func:`generate_smear` and also return its layers.

    The image is identical to ``generate_smear(label, seed, config, id).image``.

    Parameters
    ----------
    label, seed, config, id
        As in :func:`generate_smear`.

    Returns
    -------
    SmearLayers
        The sample, the visible red-cell and platelet masks, the counts and
        the nuisance value behind the shortcut.

    Examples
    --------
    A full shortcut gives L1 the fewest red cells; reversed, the most:

    >>> layers = generate_smear_layers(0, seed=1, config=SmearConfig(shortcut=1.0))
    >>> layers.nuisance, layers.rbc_count
    (0.0, 10)
    >>> reversed_ = generate_smear_layers(0, seed=1, config=SmearConfig(shortcut=-1.0))
    >>> reversed_.nuisance, reversed_.rbc_count > 30
    (1.0, True)
    >>> bool((layers.platelets & layers.sample.nucleus).any())
    False
    """
    if not _is_int(label):
        raise ValueError(f"label must be an int in 0..{len(CLASS_NAMES) - 1}, got {label!r}")
    if not 0 <= label < len(CLASS_NAMES):
        raise ValueError(f"label must be 0, 1 or 2 (one of {', '.join(CLASS_NAMES)}), got {label}")
    if not isinstance(config, SmearConfig):
        raise ValueError(f"config must be a SmearConfig, got {type(config).__name__}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, np.random.SeedSequence) or (_is_int(seed) and seed >= 0):
        rng = np.random.default_rng(seed)
    else:
        raise ValueError(
            f"seed must be a non-negative int, a SeedSequence or a Generator, got {seed!r}"
        )
    return _render(int(label), rng, config, str(id))


# --------------------------------------------------------------------------- rendering


def _render(label: int, rng: np.random.Generator, cfg: SmearConfig, sample_id: str) -> SmearLayers:
    """Draw the whole smear: random choices first, then the layers from back to front."""
    h, w = cfg.shape
    scale = min(h, w) / _REFERENCE_SIZE  # pixels per reference pixel
    area_ratio = h * w / min(h, w) ** 2  # field area relative to a square field

    # The nuisance value behind the shortcut sets the red-cell count and the tint.
    u = _nuisance(cfg.shortcut, label, rng.random())
    lo, hi = cfg.rbc_count
    n_rbc = math.floor((lo + u * (hi - lo)) * area_ratio + 0.5)

    # Staining and illumination, independent of the class.
    tint_od = rng.uniform(*cfg.tint_strength) * ((1.0 - u) * _YELLOW_OD + u * _PINK_OD)
    stain = (1.0 + rng.uniform(-1.0, 1.0) * cfg.stain_jitter) * (
        1.0 + rng.uniform(-0.5, 0.5, 3) * cfg.stain_jitter
    )
    stain = stain.astype(np.float32)
    lamp = 255.0 * rng.uniform(*cfg.brightness) * (1.0 - rng.uniform(0.0, cfg.color_cast, 3))
    gradient = rng.uniform(0.0, cfg.illumination_gradient)
    angle = rng.uniform(0.0, 2 * math.pi)
    blur_sigma = rng.uniform(*cfg.blur_sigma)

    # Optical density, channel-planar (3, H, W) so that a per-channel colour times a
    # (H, W) map broadcasts over the fast axis. Plasma first, with a faint mottling.
    mottling = 1.0 + 0.3 * _field(rng, (4, 4), (h, w))
    od = tint_od[:, None, None] * mottling

    # White cells are placed first, so that red cells and platelets can avoid them.
    shape = _SHAPES[label]
    wbcs = [_place_wbc(rng, shape, scale, h, w, None)]
    if rng.random() < cfg.two_wbc_probability:
        second = _place_wbc(rng, shape, scale, h, w, wbcs[0])
        if second is not None:
            wbcs.append(second)

    density, rbc_drawn = _rbc_density(rng, n_rbc, scale, wbcs, h, w)
    # Overlaps darken less than the sum of the thicknesses (cells deform and
    # spread), which keeps stacked red cells from looking like purple nuclei.
    thickness = np.minimum(density, 1.0) + _RBC_OVERLAP * np.maximum(density - 1.0, 0.0)
    od += (_RBC_OD * stain)[:, None, None] * thickness

    n_plt = int(rng.integers(cfg.platelet_count[0], cfg.platelet_count[1] + 1))
    n_plt = math.floor(n_plt * area_ratio + 0.5)
    platelets = _draw_platelets(rng, od, n_plt, scale, wbcs, _PLATELET_OD * stain)

    # White cells on top of everything: they hide the red cells under them.
    nucleus = np.zeros((h, w), bool)
    cell = np.zeros((h, w), bool)
    for wbc in wbcs:
        _paint_wbc(rng, od, nucleus, cell, wbc, label, scale, tint_od, stain)

    image = _photograph(od, lamp, gradient, angle, blur_sigma)
    if cfg.noise_sigma > 0:  # sensor noise: image + sigma * noise, rounded and saturated
        noise = _sensor_noise(rng, h, w)
        image = cv2.addWeighted(image, 1.0, noise, float(cfg.noise_sigma), 0.0, dtype=cv2.CV_8U)

    sample = Sample(
        image=image, nucleus=nucleus, cytoplasm=cell & ~nucleus, label=label, id=sample_id
    )
    return SmearLayers(
        sample=sample,
        rbc=(density > 0) & ~cell,
        platelets=platelets,
        rbc_count=rbc_drawn,
        wbc_count=len(wbcs),
        nuisance=u,
    )


def _nuisance(shortcut: float, label: int, v: float) -> float:
    """Nuisance value ``u`` in [0, 1] from the class and a uniform draw ``v`` (see the module)."""
    s = abs(shortcut)
    cue = label / 2 if shortcut >= 0 else (2 - label) / 2  # a negative shortcut reverses the cue
    return min(max(s * cue + (1.0 - s) * v, 0.0), 1.0)


def _photograph(
    od: np.ndarray, lamp: np.ndarray, gradient: float, angle: float, blur_sigma: float
) -> np.ndarray:
    """8-bit RGB image (H, W, 3) of the light ``lamp`` (3,) transmitted through ``od``."""
    _, h, w = od.shape
    # Illumination: a linear ramp in direction ``angle``, +-gradient/2 across the field.
    side = max(h, w)
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) * (gradient * math.sin(angle) / side)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) * (gradient * math.cos(angle) / side)
    ramp = 1.0 + y[:, None] + x[None, :]
    # Beer-Lambert: light = lamp * ramp * exp(-od), rounded and saturated to 8 bits.
    planes = [
        cv2.multiply(np.exp(-od[c]), ramp, scale=float(lamp[c]), dtype=cv2.CV_8U) for c in range(3)
    ]
    image = cv2.merge(planes)
    if blur_sigma > 0.05:  # slight optical blur (8-bit Gaussian blur is bit-exact in OpenCV)
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma, borderType=cv2.BORDER_REFLECT)
    return image


@dataclass(frozen=True)
class _Wbc:
    """Where a white cell lies: centre, bounding radius and outlines ((N, 2) x, y points)."""

    cx: float
    cy: float
    radius: float
    cell: np.ndarray
    nucleus: np.ndarray


def _place_wbc(
    rng: np.random.Generator, shape: _CellShape, scale: float, h: int, w: int, other: _Wbc | None
) -> _Wbc | None:
    """Draw the outlines of a white cell clear of ``other``, or None when it does not fit."""
    rn = rng.uniform(*shape.nucleus_radius) * scale
    aspect = rng.uniform(*shape.aspect)
    rim = rng.uniform(*shape.rim) * scale
    rotation = rng.uniform(0.0, math.pi)
    notch = None
    if rng.random() < shape.notch_probability:  # (angle, relative depth, angular width)
        angle, depth = rng.uniform(0.0, 2 * math.pi), rng.uniform(*shape.notch_depth)
        notch = (angle, depth, rng.uniform(0.25, 0.45))
    # The cell is the nucleus ellipse grown by the rim, slightly perturbed; the
    # nucleus sits a little off centre.
    ca = rn + rim
    cb = rn * aspect + rim * rng.uniform(0.85, 1.15)
    radius = max(ca, cb) * 1.06 + 1.0
    offset = rng.uniform(0.0, 0.35) * rim
    offset_angle = rng.uniform(0.0, 2 * math.pi)
    # 40 candidate centres inside the field; keep the first clear of the other cell.
    margin = radius + 2.0 * scale + 1.0
    xs = margin + rng.uniform(0.0, 1.0, 40) * max(w - 2 * margin, 0.0)
    ys = margin + rng.uniform(0.0, 1.0, 40) * max(h - 2 * margin, 0.0)
    k = 0
    if other is not None:
        free = np.hypot(xs - other.cx, ys - other.cy) > radius + other.radius + 4.0 * scale
        if not free.any():
            return None
        k = int(np.argmax(free))
    cx, cy = float(xs[k]), float(ys[k])
    cell = _outline(rng, cx, cy, ca, cb, rotation, 0.025)
    nx = cx + offset * math.cos(offset_angle)
    ny = cy + offset * math.sin(offset_angle)
    nucleus = _outline(rng, nx, ny, rn, rn * aspect, rotation, shape.irregularity, notch)
    return _Wbc(cx, cy, radius, cell, nucleus)


def _outline(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    a: float,
    b: float,
    rotation: float,
    irregularity: float,
    notch: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """(72, 2) points of an ellipse with a wavy radius and an optional Gaussian notch."""
    theta = np.linspace(0.0, 2 * math.pi, 72, endpoint=False)
    rho = np.ones_like(theta)
    if irregularity > 0:  # harmonics 2, 3, 4 with decreasing amplitudes
        amplitudes = irregularity * rng.uniform(0.3, 1.0, 3) / np.array([1.0, 1.5, 2.0])
        phases = rng.uniform(0.0, 2 * math.pi, 3)
        for k in range(3):
            rho += amplitudes[k] * np.cos((k + 2) * theta + phases[k])
    if notch is not None:
        at, depth, width = notch
        d = np.mod(theta - at + math.pi, 2 * math.pi) - math.pi  # angle from the notch
        rho *= 1.0 - depth * np.exp(-0.5 * (d / width) ** 2)
    x, y = a * rho * np.cos(theta), b * rho * np.sin(theta)
    c, s = math.cos(rotation), math.sin(rotation)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _rbc_density(
    rng: np.random.Generator, n: int, scale: float, wbcs: list[_Wbc], h: int, w: int
) -> tuple[np.ndarray, int]:
    """Summed stain thickness (H, W) of up to ``n`` red cells, and how many were drawn."""
    r = rng.uniform(10.5, 14.0, n) * scale
    # Centres anywhere, clipped at the borders, but not deep under a white cell:
    # 8 candidates per cell, keep the first free one (or drop the cell).
    cx = (w + r)[:, None] * rng.uniform(0.0, 1.0, (n, 8)) - 0.5 * r[:, None]
    cy = (h + r)[:, None] * rng.uniform(0.0, 1.0, (n, 8)) - 0.5 * r[:, None]
    free = np.ones(cx.shape, bool)
    for c in wbcs:
        free &= np.hypot(cx - c.cx, cy - c.cy) > c.radius + 0.4 * r[:, None]
    first = np.argmax(free, axis=1)
    keep = free[np.arange(n), first]
    cx, cy = cx[np.arange(n), first][keep], cy[np.arange(n), first][keep]
    elongation = rng.uniform(0.85, 1.0, n)
    rotation = rng.uniform(0.0, math.pi, n)
    pallor = rng.uniform(0.25, 0.5, n)
    strength = rng.uniform(0.85, 1.1, n)
    # The parameters of the cells kept, as (cells, 1, 1) columns to broadcast over boxes.
    r, elongation, rotation, pallor, strength = np.array(
        [r, elongation, rotation, pallor, strength], np.float32
    )[:, keep, None, None]

    # Every cell is drawn in a square box of side 2 * half + 1 around its centre
    # pixel, all cells at once: arrays of shape (cells, box, box).
    half = math.ceil(14.0 * scale) + 2
    ix, iy = np.floor(cx).astype(int), np.floor(cy).astype(int)
    offsets = np.arange(-half, half + 1, dtype=np.float32)
    dx = ((ix - cx).astype(np.float32)[:, None] + offsets)[:, None, :]  # from the centre
    dy = ((iy - cy).astype(np.float32)[:, None] + offsets)[:, :, None]
    cos, sin = np.cos(rotation), np.sin(rotation)
    along = (dx * cos + dy * sin) / r
    across = (dy * cos - dx * sin) / (r * elongation)
    rho = np.sqrt(along * along + across * across)  # 0 at the centre, 1 on the edge
    # Biconcave disc: a pale centre rising smoothly to a full rim, then a soft edge of 1.3 px.
    t = np.clip((rho - 0.15) / 0.55, 0.0, 1.0)
    profile = strength * (pallor + (1.0 - pallor) * t * t * (3.0 - 2.0 * t))
    profile *= np.clip((1.0 - rho) * r / 1.3, 0.0, 1.0)

    # Add the boxes onto a canvas padded so that boxes over the border fit.
    pad = 2 * half + 2
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
    for k in range(len(profile)):
        y0, x0 = iy[k] - half + pad, ix[k] - half + pad
        canvas[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1] += profile[k]
    return canvas[pad : pad + h, pad : pad + w], len(profile)


def _draw_platelets(
    rng: np.random.Generator,
    od: np.ndarray,
    n: int,
    scale: float,
    wbcs: list[_Wbc],
    platelet_od: np.ndarray,
) -> np.ndarray:
    """Add up to ``n`` platelets to ``od``, away from the white cells and each other.

    A platelet is 1-3 overlapping small discs (under 150 px at 256 x 256) with a
    granular texture. Returns the platelet mask.
    """
    _, h, w = od.shape
    mask = np.zeros((h, w), bool)
    centres: list[tuple[float, float]] = []
    half = math.ceil(6 * scale) + 2  # half side of the box that holds one platelet
    for _ in range(n):
        xs = half + rng.uniform(0.0, 1.0, 20) * (w - 2 * half - 1)
        ys = half + rng.uniform(0.0, 1.0, 20) * (h - 2 * half - 1)
        free = np.ones(20, bool)
        for c in wbcs:
            free &= np.hypot(xs - c.cx, ys - c.cy) > c.radius + 8 * scale
        for px, py in centres:
            free &= np.hypot(xs - px, ys - py) > 14 * scale
        if not free.any():
            continue
        k = int(np.argmax(free))
        centres.append((xs[k], ys[k]))
        x0, y0 = int(xs[k]) - half, int(ys[k]) - half
        x1, y1 = x0 + 2 * half + 1, y0 + 2 * half + 1
        blob = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            ox, oy = rng.uniform(-1.6, 1.6, 2) * scale
            radius = rng.uniform(2.0, 3.2) * scale
            _circle(blob, xs[k] + ox - x0, ys[k] + oy - y0, radius, antialiased=False)
        texture = 1.0 + 0.25 * _field(rng, (3, 3), blob.shape)
        od[:, y0:y1, x0:x1] += platelet_od[:, None, None] * (texture * blob * rng.uniform(0.8, 1.1))
        mask[y0:y1, x0:x1] |= blob > 0
    return mask


def _paint_wbc(
    rng: np.random.Generator,
    od: np.ndarray,
    nucleus_mask: np.ndarray,
    cell_mask: np.ndarray,
    wbc: _Wbc,
    label: int,
    scale: float,
    tint_od: np.ndarray,
    stain: np.ndarray,
) -> None:
    """Paint one white cell over ``od`` and add it to the masks.

    Outlines are drawn anti-aliased: colours are blended by coverage, and a
    pixel belongs to a mask when the shape covers at least half of it.
    """
    shape = _SHAPES[label]
    h, w = nucleus_mask.shape
    x0, y0 = max(int(wbc.cx - wbc.radius) - 3, 0), max(int(wbc.cy - wbc.radius) - 3, 0)
    x1, y1 = min(int(wbc.cx + wbc.radius) + 4, w), min(int(wbc.cy + wbc.radius) + 4, h)
    box = (y1 - y0, x1 - x0)
    nucleus_cover = _fill(wbc.nucleus - [x0, y0], box)  # coverage, 0-255
    cell_cover = np.maximum(_fill(wbc.cell - [x0, y0], box), nucleus_cover)
    nucleus, cell = nucleus_cover >= 128, cell_cover >= 128

    # Cytoplasm: a smooth colour variation and, for L3, clear vacuoles.
    cyto_density = 1.0 + 0.12 * _field(rng, (4, 4), box)
    n_vacuoles = int(rng.integers(shape.vacuoles[0], shape.vacuoles[1] + 1))
    if n_vacuoles:
        # Vacuoles lie inside the cytoplasm, at least their largest radius from its edge.
        reach = max(1, round(shape.vacuole_radius[1] * scale))
        cytoplasm = (cell & ~nucleus).view(np.uint8)
        inner = cv2.erode(cytoplasm, np.ones((3, 3), np.uint8), iterations=reach)
        ys, xs = np.nonzero(inner)
        if xs.size:
            holes = np.zeros(box, np.uint8)
            for k in rng.integers(0, xs.size, n_vacuoles):
                _circle(holes, xs[k], ys[k], rng.uniform(*shape.vacuole_radius) * scale)
            holes = cv2.GaussianBlur(holes, (0, 0), 0.5 * scale + 0.2)
            cyto_density *= 1.0 - (0.85 / 255) * holes.astype(np.float32)

    # Nucleus: chromatin texture at two scales, and pale nucleoli.
    k = shape.chromatin_cells
    chromatin = 0.6 * _field(rng, (k, k), box) + 0.4 * _field(rng, (3 * k, 3 * k), box)
    nuc_density = rng.uniform(0.92, 1.08) + shape.chromatin * chromatin
    n_nucleoli = int(rng.integers(shape.nucleoli[0], shape.nucleoli[1] + 1))
    if n_nucleoli:
        # Nucleoli are spread uniformly over a disc around the nucleus centre, well inside.
        centre = wbc.nucleus.mean(axis=0)
        extent = 0.45 * np.hypot(*(wbc.nucleus - centre).T).min()
        spots = np.zeros(box, np.uint8)
        for _ in range(n_nucleoli):
            angle = rng.uniform(0.0, 2 * math.pi)
            dist = math.sqrt(rng.random()) * extent
            radius = rng.uniform(*shape.nucleolus_radius) * scale
            x = centre[0] - x0 + dist * math.cos(angle)
            y = centre[1] - y0 + dist * math.sin(angle)
            _circle(spots, x, y, radius)
        spots = cv2.GaussianBlur(spots, (0, 0), 0.8 * scale + 0.3)
        nuc_density *= 1.0 - (0.5 / 255) * spots.astype(np.float32)

    # Blend by coverage: the cell hides what lies under it (the white cell sits in
    # the tinted plasma), and the nucleus hides the cytoplasm.
    roi = od[:, y0:y1, x0:x1]
    cyto_od = tint_od[:, None, None] + (_CYTOPLASM_OD[label] * stain)[:, None, None] * cyto_density
    nuc_od = tint_od[:, None, None] + (_NUCLEUS_OD * stain)[:, None, None] * nuc_density
    roi += (cell_cover.astype(np.float32) / 255) * (cyto_od - roi)
    roi += (nucleus_cover.astype(np.float32) / 255) * (nuc_od - roi)
    nucleus_mask[y0:y1, x0:x1] |= nucleus
    cell_mask[y0:y1, x0:x1] |= cell


# Shapes are drawn with OpenCV's integer rasteriser, with 4 fractional bits
# (1/16 px) of sub-pixel precision.
_SUBPIXEL_BITS = 4


def _fill(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Coverage (uint8, 0-255) of the polygon ``points`` ((N, 2) x, y) in an image of ``size``."""
    cover = np.zeros(size, np.uint8)
    fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(cover, [fixed], 255, cv2.LINE_AA, _SUBPIXEL_BITS)
    return cover


def _circle(image: np.ndarray, x: float, y: float, radius: float, antialiased: bool = True) -> None:
    """Draw a filled circle with a sub-pixel centre: 255 anti-aliased, else 1 on pixels inside."""
    one = 1 << _SUBPIXEL_BITS
    centre = (int(round(x * one)), int(round(y * one)))
    value, line = (255, cv2.LINE_AA) if antialiased else (1, cv2.LINE_8)
    cv2.circle(image, centre, int(round(radius * one)), value, -1, line, _SUBPIXEL_BITS)


def _field(rng: np.random.Generator, cells: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [-1, 1] of ``size``: a ``cells`` grid of uniform noise, upsampled."""
    coarse = rng.integers(0, 256, size=cells, dtype=np.uint8)
    # Resizing 8-bit values with INTER_LINEAR_EXACT is bit-exact on every machine.
    fine = cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_LINEAR_EXACT)
    return fine.astype(np.float32) * (2 / 255) - 1.0


_NOISE_TILE = 512


@lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """A fixed (512, 512, 3) tile of standard normal noise, shared by all images."""
    tile = np.random.default_rng(0x5EED_B100D).standard_normal(
        (_NOISE_TILE, _NOISE_TILE, 3), dtype=np.float32
    )
    tile.flags.writeable = False  # shared between threads
    return tile


def _sensor_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Standard normal pixel noise (H, W, 3): a window of the noise tile at a random place.

    Drawing fresh normal numbers would make every image about 1.6 times slower to
    render; at a few grey levels, a shifted window of a fixed tile looks the same.
    """
    tile = _noise_tile()
    if h > _NOISE_TILE or w > _NOISE_TILE:  # a large image: repeat the tile
        tile = np.tile(tile, (-(-h // _NOISE_TILE), -(-w // _NOISE_TILE), 1))
    y = int(rng.integers(tile.shape[0] - h + 1))
    x = int(rng.integers(tile.shape[1] - w + 1))
    return tile[y : y + h, x : x + w]


# --------------------------------------------------------------------------- dataset


class SyntheticDataset(Dataset):
    """A balanced, deterministic dataset of synthetic L1 / L2 / L3 smears.

    Images are rendered on access (a few milliseconds each) and never cached.
    Sample ``i`` is always the same image for a given ``seed``, whatever the
    access order or thread, so the dataset can be read concurrently.

    Parameters
    ----------
    n_images : int, optional
        Number of samples.
    size : int or tuple of int, optional
        Image size, ``n`` or ``(height, width)``; shorthand for
        ``SmearConfig(size=...)``.
    seed : int, optional
        Non-negative seed of both the labels and the images.
    shortcut : float, optional
        Strength in ``[-1, 1]`` of the spurious background cue (negative:
        reversed); shorthand for ``SmearConfig(shortcut=...)``. See
        :class:`SmearConfig`.
    config : SmearConfig, optional
        Every generator knob. When given, ``size`` and ``shortcut`` must be
        left at their defaults or agree with it.

    Attributes
    ----------
    config : SmearConfig
        The generator settings in use.
    seed : int
        The seed.

    Notes
    -----
    Labels are ``[0, 1, 2] * ceil(n / 3)`` shuffled by
    ``np.random.default_rng(np.random.SeedSequence(seed))`` and truncated to
    ``n``, so every class has ``n // 3`` or ``n // 3 + 1`` samples. Sample
    ``i`` is rendered by :func:`generate_smear` from
    ``np.random.SeedSequence(seed, spawn_key=(i,))``, which equals
    ``np.random.SeedSequence(seed).spawn(n)[i]``.

    Examples
    --------
    >>> data = SyntheticDataset(n_images=6, size=128, seed=3)
    >>> len(data), data.ids[:2], data.class_names
    (6, ['syn_00000', 'syn_00001'], ('L1', 'L2', 'L3'))
    >>> sorted(data.labels.tolist())
    [0, 0, 1, 1, 2, 2]
    >>> sample = data[4]
    >>> sample.image.shape, sample.label == int(data.labels[4]), sample.id
    ((128, 128, 3), True, 'syn_00004')
    """

    name = "synthetic"
    class_names = CLASS_NAMES
    has_masks = True

    def __init__(
        self,
        n_images: int = 150,
        size: int | tuple[int, int] = 256,
        seed: int = 0,
        shortcut: float = 0.0,
        config: SmearConfig | None = None,
    ) -> None:
        if not _is_int(n_images):
            raise ValueError(f"n_images must be an int, got {n_images!r}")
        if n_images < 1:
            raise ValueError(f"n_images must be at least 1, got {n_images}")
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        given = SmearConfig(size=size, shortcut=shortcut)  # validates the shorthands
        if config is None:
            config = given
        elif not isinstance(config, SmearConfig):
            raise ValueError(f"config must be a SmearConfig, got {type(config).__name__}")
        elif size != 256 and given.shape != config.shape:
            raise ValueError(
                f"size={size!r} disagrees with config.size={config.size!r}; give only one"
            )
        elif shortcut != 0.0 and shortcut != config.shortcut:
            raise ValueError(
                f"shortcut={shortcut!r} disagrees with config.shortcut={config.shortcut!r};"
                " give only one"
            )
        self.config = config
        self.seed = int(seed)
        self._n = int(n_images)
        # Balanced labels: each class once per block of three, then shuffled.
        rng = np.random.default_rng(np.random.SeedSequence(self.seed))
        pool = np.tile(np.arange(len(CLASS_NAMES), dtype=np.int64), -(-self._n // 3))
        self._labels = rng.permutation(pool)[: self._n]
        self._labels.flags.writeable = False
        width = max(5, len(str(self._n - 1)))
        self._ids = [f"syn_{i:0{width}d}" for i in range(self._n)]

    def __len__(self) -> int:
        return self._n

    @property
    def ids(self) -> list[str]:
        """Sample identifiers ``syn_00000``, ``syn_00001``, ..., in index order."""
        return list(self._ids)

    @property
    def labels(self) -> np.ndarray:
        """Class index of every sample (read-only int array); renders nothing."""
        return self._labels

    def _load(self, index: int) -> Sample:
        # The i-th child of SeedSequence(seed), built directly: O(1) and order-free.
        seed = np.random.SeedSequence(self.seed, spawn_key=(index,))
        return generate_smear(int(self._labels[index]), seed, self.config, self._ids[index])

    def __repr__(self) -> str:
        h, w = self.config.shape
        return (
            f"<SyntheticDataset {self._n} samples, {h}x{w}, seed={self.seed}, "
            f"shortcut={self.config.shortcut:g}>"
        )
