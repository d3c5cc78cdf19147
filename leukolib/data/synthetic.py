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
``shortcut`` (in ``[0, 1]``) plants a spurious cue outside the nucleus. A
nuisance value ``u`` in ``[0, 1]`` sets both the red-cell density (``u = 0``:
fewest red cells, ``u = 1``: most) and the background tint (``u = 0``:
yellowish, ``u = 1``: pinkish)::

    u = shortcut * label / 2 + (1 - shortcut) * v,    v ~ Uniform(0, 1)

With ``shortcut = 0`` the red-cell density and tint are independent of the
class; with ``shortcut = 1`` they are fully determined by it (L1: 10 red cells
on a yellow background, L2: 25 on an intermediate tint, L3: 40 on a pink
background); in between, the cue is partially predictive. A classifier
trained on whole images with a strong shortcut can learn to count red cells
instead of looking at the blast, and fails when the cue is removed; one that
only sees the segmented nucleus cannot cheat. This is the book's argument for
segmentation as hard attention. Brightness, tint strength, colour cast and
illumination gradient stay independent of the class at any ``shortcut``.

Determinism
-----------
An image is a pure function of ``(label, seed, config)``. Only a numpy
:class:`~numpy.random.Generator`, integer OpenCV drawing, bit-exact OpenCV
operations on 8-bit images (``INTER_LINEAR_EXACT`` resizing, 8-bit Gaussian
blur) and elementwise IEEE arithmetic (``+ - * / sqrt``, a lookup table for
``exp``) touch the pixels, so the same seed gives the same bytes on any
machine with the same numpy and OpenCV versions, whatever the access order or
thread. In :class:`SyntheticDataset`, sample ``i`` is drawn from
``np.random.SeedSequence(seed).spawn(n)[i]``, built directly in O(1).
"""

from __future__ import annotations

import math
import numbers
import threading
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

_REFERENCE_SIZE = 256  # geometry constants below are pixels at this size
_MIN_SIZE = 64

# Absorbance (optical density, natural log) per unit of stain, RGB order.
_YELLOW_OD = np.array([0.015, 0.045, 0.20], np.float32)  # yellowish plasma
_PINK_OD = np.array([0.015, 0.12, 0.075], np.float32)  # pinkish plasma
_RBC_OD = np.array([0.09, 0.37, 0.35], np.float32)  # pale pink red cell
_RBC_OVERLAP = 0.4  # relative darkening where red cells overlap (1: Beer-Lambert sum)
_PLATELET_OD = np.array([0.50, 0.95, 0.35], np.float32)  # purple
_NUCLEUS_OD = np.array([0.92, 1.55, 0.55], np.float32)  # purple / violet
_CYTO_OD = {  # pale blue-lilac (L1, L2), deep blue (L3)
    0: np.array([0.34, 0.26, 0.11], np.float32),
    1: np.array([0.36, 0.31, 0.12], np.float32),
    2: np.array([0.89, 0.60, 0.27], np.float32),
}


@dataclass(frozen=True)
class _CellShape:
    """Class-specific geometry of a blast (pixels at 256 x 256)."""

    nucleus_radius: tuple[float, float]  # semi-major axis of the nucleus
    aspect: tuple[float, float]  # minor / major axis of the nucleus
    irregularity: float  # amplitude of the low harmonics of the contour
    notch_probability: float  # chance of a cleft / indentation
    notch_depth: tuple[float, float]  # relative depth of the cleft
    rim: tuple[float, float]  # cytoplasm thickness around the nucleus
    nucleoli: tuple[int, int]  # number of nucleoli (inclusive range)
    nucleolus_radius: tuple[float, float]
    chromatin: float  # relative amplitude of the chromatin texture
    chromatin_cells: int  # resolution of the chromatin random field
    vacuoles: tuple[int, int]  # number of cytoplasmic vacuoles
    vacuole_radius: tuple[float, float]


_SHAPES = {
    0: _CellShape(  # L1: small, scant cytoplasm, round homogeneous nucleus
        nucleus_radius=(14.0, 18.0),
        aspect=(0.90, 1.0),
        irregularity=0.02,
        notch_probability=0.0,
        notch_depth=(0.0, 0.0),
        rim=(2.5, 5.0),
        nucleoli=(0, 0),
        nucleolus_radius=(0.0, 0.0),
        chromatin=0.10,
        chromatin_cells=7,
        vacuoles=(0, 0),
        vacuole_radius=(0.0, 0.0),
    ),
    1: _CellShape(  # L2: larger, variable, cleft nucleus with nucleoli, more cytoplasm
        nucleus_radius=(17.0, 27.0),
        aspect=(0.72, 0.95),
        irregularity=0.07,
        notch_probability=0.8,
        notch_depth=(0.2, 0.45),
        rim=(6.0, 14.0),
        nucleoli=(1, 2),
        nucleolus_radius=(2.5, 4.0),
        chromatin=0.26,
        chromatin_cells=6,
        vacuoles=(0, 0),
        vacuole_radius=(0.0, 0.0),
    ),
    2: _CellShape(  # L3: large, round / oval nucleus, nucleoli, vacuolated blue cytoplasm
        nucleus_radius=(24.5, 30.0),
        aspect=(0.82, 1.0),
        irregularity=0.02,
        notch_probability=0.0,
        notch_depth=(0.0, 0.0),
        rim=(8.0, 13.0),
        nucleoli=(2, 4),
        nucleolus_radius=(2.5, 4.0),
        chromatin=0.20,
        chromatin_cells=12,
        vacuoles=(5, 12),
        vacuole_radius=(1.4, 3.0),
    ),
}

_OD_STEPS = 1024  # lookup table resolution, steps per unit optical density
_OD_LUT = np.exp(-(np.arange(12 * _OD_STEPS, dtype=np.float64) + 0.5) / _OD_STEPS).astype(
    np.float32
)
_NOISE_BANK = 512  # side of the cached tile of standard normal noise
_POLY_SHIFT = 4  # fractional bits of polygon vertices (1/16 px)
_N_VERTICES = 72


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
        In ``[0, 1]``: how much the red-cell density and the background tint
        (yellowish to pinkish) depend on the class. 0: independent of the
        class; 1: fully determined by it (L1 fewest red cells and yellow, L3
        most and pink). See the module documentation.
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
    >>> config = SmearConfig(size=(192, 320), shortcut=0.5)
    >>> config.shape
    (192, 320)
    >>> SmearConfig(shortcut=2.0)
    Traceback (most recent call last):
    ...
    ValueError: shortcut must be in [0, 1], got 2.0
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
        if isinstance(size, numbers.Integral) and not isinstance(size, bool):
            shape = (int(size), int(size))
        elif (
            isinstance(size, (tuple, list))
            and len(size) == 2
            and all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size)
        ):
            shape = (int(size[0]), int(size[1]))
        else:
            raise ValueError(f"size must be an int or a (height, width) pair of ints, got {size!r}")
        if min(shape) < _MIN_SIZE:
            raise ValueError(f"size must be at least {_MIN_SIZE} pixels on each side, got {size!r}")
        # Store plain ints and tuples, so that configs compare and hash by value.
        object.__setattr__(self, "size", shape[0] if isinstance(size, numbers.Integral) else shape)
        for name in ("rbc_count", "platelet_count", "blur_sigma", "brightness", "tint_strength"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        _check_range("rbc_count", self.rbc_count, 0, None, integer=True)
        _check_range("platelet_count", self.platelet_count, 0, None, integer=True)
        _check_unit("two_wbc_probability", self.two_wbc_probability)
        _check_unit("shortcut", self.shortcut)
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
        if isinstance(self.size, numbers.Integral):
            return (int(self.size), int(self.size))
        return (int(self.size[0]), int(self.size[1]))


def _check_unit(name: str, value: object) -> None:
    _check_scalar(name, value, 0.0, 1.0)


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
    upper = math.inf if hi is None else hi
    if not (lo <= a <= b <= upper):
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
    >>> layers = generate_smear_layers(0, seed=1, config=SmearConfig(shortcut=1.0))
    >>> layers.nuisance, layers.rbc_count
    (0.0, 10)
    >>> bool((layers.platelets & layers.sample.nucleus).any())
    False
    """
    if isinstance(label, bool) or not isinstance(label, numbers.Integral):
        raise ValueError(f"label must be an int in 0..{len(CLASS_NAMES) - 1}, got {label!r}")
    label = int(label)
    if not 0 <= label < len(CLASS_NAMES):
        raise ValueError(f"label must be 0, 1 or 2 (one of {', '.join(CLASS_NAMES)}), got {label}")
    if not isinstance(config, SmearConfig):
        raise ValueError(f"config must be a SmearConfig, got {type(config).__name__}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, np.random.SeedSequence) or (
        isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0
    ):
        rng = np.random.default_rng(seed)
    else:
        raise ValueError(
            f"seed must be a non-negative int, a SeedSequence or a Generator, got {seed!r}"
        )
    return _render(label, rng, config, str(id))


# --------------------------------------------------------------------------- rendering


def _render(label: int, rng: np.random.Generator, cfg: SmearConfig, sample_id: str) -> SmearLayers:
    h, w = cfg.shape
    scale = min(h, w) / _REFERENCE_SIZE  # pixels per reference pixel
    area_ratio = (h * w) / min(h, w) ** 2  # field area relative to a square field

    # Nuisance value behind the shortcut: red-cell density and background tint.
    v = float(rng.random())
    u = cfg.shortcut * label / 2.0 + (1.0 - cfg.shortcut) * v
    u = min(max(u, 0.0), 1.0)
    lo, hi = cfg.rbc_count
    n_rbc = int(math.floor((lo + u * (hi - lo)) * area_ratio + 0.5))

    # Staining and illumination, independent of the class.
    tint = float(rng.uniform(*cfg.tint_strength))
    tint_od = (tint * ((1.0 - u) * _YELLOW_OD + u * _PINK_OD)).astype(np.float32)
    stain = (1.0 + rng.uniform(-1.0, 1.0) * cfg.stain_jitter) * (
        1.0 + rng.uniform(-0.5, 0.5, 3) * cfg.stain_jitter
    )
    stain = stain.astype(np.float32)
    brightness = float(rng.uniform(*cfg.brightness))
    cast = 1.0 - rng.uniform(0.0, cfg.color_cast, 3)
    gradient = float(rng.uniform(0.0, cfg.illumination_gradient))
    angle = float(rng.uniform(0.0, 2 * math.pi))
    blur_sigma = float(rng.uniform(*cfg.blur_sigma))

    # Optical density, channel-planar (3, H, W): tinted plasma with a faint mottling.
    ws = _workspace(h, w, scale)
    od, tmp = ws.od, ws.plane
    low = rng.integers(0, 256, size=(4, 4), dtype=np.uint8)
    cv2.resize(low, (w, h), dst=ws.plane8, interpolation=cv2.INTER_LINEAR_EXACT)
    np.multiply(ws.plane8, np.float32(0.6 / 255.0), out=tmp)  # 1 + 0.3 * field(-1..1)
    tmp += np.float32(0.7)
    for c in range(3):
        np.multiply(tmp, tint_od[c], out=od[c])

    # White cells: geometry first, so that the red cells can avoid them.
    shape = _SHAPES[label]
    wbcs = [_wbc_geometry(rng, shape, scale, h, w, None)]
    if rng.random() < cfg.two_wbc_probability:
        second = _wbc_geometry(rng, shape, scale, h, w, wbcs[0])
        if second is not None:
            wbcs.append(second)
    assert wbcs[0] is not None  # a single cell always fits (size >= 64)

    # Red cells: a density map of overlapping biconcave discs.
    density, rbc_drawn = _draw_rbcs(rng, ws.canvas, n_rbc, scale, wbcs, h, w)
    # Overlaps darken less than the sum of the thicknesses (cells deform and
    # spread), which keeps stacked red cells from looking like purple nuclei.
    np.subtract(density, np.float32(1.0), out=tmp)
    np.maximum(tmp, np.float32(0.0), out=tmp)
    tmp *= np.float32(_RBC_OVERLAP)
    np.minimum(density, np.float32(1.0), out=density)
    density += tmp
    rbc_od = _RBC_OD * stain
    for c in range(3):
        np.multiply(density, rbc_od[c], out=tmp)
        od[c] += tmp

    # Platelets: small purple blobs away from the white cells and each other.
    n_lo, n_hi = cfg.platelet_count
    n_plt = int(math.floor(int(rng.integers(n_lo, n_hi + 1)) * area_ratio + 0.5))
    platelets = np.zeros((h, w), np.uint8)
    _draw_platelets(rng, od, platelets, n_plt, scale, wbcs, _PLATELET_OD * stain)

    # White cells on top of everything (red cells are hidden under them).
    nucleus_mask = np.zeros((h, w), bool)
    cell_mask = np.zeros((h, w), bool)
    for geometry in wbcs:
        _paint_wbc(rng, od, nucleus_mask, cell_mask, geometry, shape, label, scale, tint_od, stain)

    # Transmitted light via a lookup table for exp(-od): exact on every machine.
    od *= np.float32(_OD_STEPS)
    od2d = od.reshape(3 * h, w)
    cv2.min(od2d, float(_OD_LUT.size - 1), dst=od2d)
    np.copyto(ws.index, od, casting="unsafe")  # truncation towards zero
    light = ws.light
    np.take(_OD_LUT, ws.index, out=light, mode="clip")

    # Light: brightness, colour cast and a linear illumination ramp.
    ys = (np.arange(h, dtype=np.float32) - np.float32((h - 1) / 2)) / np.float32(max(h, w))
    xs = (np.arange(w, dtype=np.float32) - np.float32((w - 1) / 2)) / np.float32(max(h, w))
    ys *= np.float32(gradient * math.sin(angle))
    xs *= np.float32(gradient * math.cos(angle))
    xs += np.float32(1.0)
    np.add(ys[:, None], xs[None, :], out=tmp)
    light *= tmp
    for c in range(3):
        light[c] *= np.float32(255.0 * brightness * cast[c])
    light += np.float32(0.5)
    light2d = light.reshape(3 * h, w)
    cv2.min(light2d, 255.0, dst=light2d)
    np.copyto(ws.planes8, light, casting="unsafe")
    cv2.merge([ws.planes8[0], ws.planes8[1], ws.planes8[2]], dst=ws.merged)

    # Slight optical blur (bit-exact 8-bit filter), then sensor noise.
    image8 = np.empty((h, w, 3), np.uint8)
    if blur_sigma > 0.05:
        cv2.GaussianBlur(ws.merged, (0, 0), blur_sigma, dst=image8, borderType=cv2.BORDER_REFLECT)
    else:
        image8[...] = ws.merged
    if cfg.noise_sigma > 0:
        final = ws.noisy
        np.multiply(_noise_tile(rng, h, w), np.float32(cfg.noise_sigma), out=final)
        final += image8
        final += np.float32(0.5)
        np.clip(final, 0.0, 255.0, out=final)
        np.copyto(image8, final, casting="unsafe")

    cytoplasm_mask = cell_mask & ~nucleus_mask
    sample = Sample(
        image=image8,
        nucleus=nucleus_mask,
        cytoplasm=cytoplasm_mask,
        label=label,
        id=sample_id,
        path=None,
    )
    return SmearLayers(
        sample=sample,
        rbc=(density > 0) & ~cell_mask,
        platelets=platelets.view(bool),
        rbc_count=rbc_drawn,
        wbc_count=len(wbcs),
        nuisance=u,
    )


class _Workspace:
    """Scratch buffers reused between images of one size by one thread.

    Reusing them avoids fresh large allocations, whose page faults cost a third
    of the rendering time; every buffer is fully overwritten before use.
    """

    def __init__(self, h: int, w: int, half: int) -> None:
        self.key = (h, w, half)
        self.od = np.empty((3, h, w), np.float32)
        self.light = np.empty((3, h, w), np.float32)
        self.index = np.empty((3, h, w), np.uint16)
        self.planes8 = np.empty((3, h, w), np.uint8)
        self.merged = np.empty((h, w, 3), np.uint8)
        self.noisy = np.empty((h, w, 3), np.float32)
        self.plane = np.empty((h, w), np.float32)
        self.plane8 = np.empty((h, w), np.uint8)
        pad = 2 * half + 2
        self.canvas = np.empty((h + 2 * pad, w + 2 * pad), np.float32)


_THREAD_LOCAL = threading.local()


def _rbc_half(scale: float) -> int:
    """Half side of the box that holds one red cell."""
    return int(math.ceil(14.0 * scale)) + 2


def _workspace(h: int, w: int, scale: float) -> _Workspace:
    key = (h, w, _rbc_half(scale))
    ws = getattr(_THREAD_LOCAL, "workspace", None)
    if ws is None or ws.key != key:
        ws = _Workspace(*key)
        _THREAD_LOCAL.workspace = ws
    return ws


def _field(rng: np.random.Generator, cells: tuple[int, int], out: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [-1, 1]: uniform noise upsampled bit-exactly."""
    low = rng.integers(0, 256, size=cells, dtype=np.uint8)
    up = cv2.resize(low, (out[1], out[0]), interpolation=cv2.INTER_LINEAR_EXACT)
    field = up.astype(np.float32)
    field *= np.float32(2.0 / 255.0)
    field -= np.float32(1.0)
    return field


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed tile of standard normal noise, shared by all images."""
    bank = np.random.default_rng(0x5EED_B100D).standard_normal(
        (_NOISE_BANK, _NOISE_BANK, 3), dtype=np.float32
    )
    bank.flags.writeable = False
    return bank


def _noise_tile(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """An (h, w, 3) window of the noise bank at a random offset (wrapping)."""
    bank = _noise_bank()
    oy = int(rng.integers(0, max(_NOISE_BANK - h, 0) + 1))
    ox = int(rng.integers(0, max(_NOISE_BANK - w, 0) + 1))
    if oy + h <= _NOISE_BANK and ox + w <= _NOISE_BANK:
        return bank[oy : oy + h, ox : ox + w]
    rows = (oy + np.arange(h)) % _NOISE_BANK
    cols = (ox + np.arange(w)) % _NOISE_BANK
    return bank[rows[:, None], cols[None, :]]


@dataclass(frozen=True)
class _Wbc:
    cx: float
    cy: float
    radius: float  # bounding radius of the cell
    cell: np.ndarray  # (N, 2) float64 contour of the cell
    nucleus: np.ndarray  # (N, 2) float64 contour of the nucleus


def _contour(
    rng: np.random.Generator,
    cx: float,
    cy: float,
    a: float,
    b: float,
    rotation: float,
    irregularity: float,
    notch: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Closed contour of a perturbed ellipse; ``notch`` is (angle, depth, width)."""
    theta = np.linspace(0.0, 2 * math.pi, _N_VERTICES, endpoint=False)
    rho = np.ones_like(theta)
    if irregularity > 0:
        amps = irregularity * rng.uniform(0.3, 1.0, 3) / np.array([1.0, 1.5, 2.0])
        phases = rng.uniform(0.0, 2 * math.pi, 3)
        for k, (amp, phase) in enumerate(zip(amps, phases, strict=True)):
            rho += amp * np.cos((k + 2) * theta + phase)
    if notch is not None:
        at, depth, width = notch
        d = np.mod(theta - at + math.pi, 2 * math.pi) - math.pi
        rho *= 1.0 - depth * np.exp(-0.5 * (d / width) ** 2)
    x = a * rho * np.cos(theta)
    y = b * rho * np.sin(theta)
    c, s = math.cos(rotation), math.sin(rotation)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _wbc_geometry(
    rng: np.random.Generator,
    shape: _CellShape,
    scale: float,
    h: int,
    w: int,
    other: _Wbc | None,
) -> _Wbc | None:
    rn = rng.uniform(*shape.nucleus_radius) * scale
    aspect = rng.uniform(*shape.aspect)
    rim = rng.uniform(*shape.rim) * scale
    rotation = rng.uniform(0.0, math.pi)
    notch = None
    if rng.random() < shape.notch_probability:
        notch = (
            float(rng.uniform(0.0, 2 * math.pi)),
            float(rng.uniform(*shape.notch_depth)),
            float(rng.uniform(0.25, 0.45)),
        )
    # Cell: the nucleus ellipse grown by the rim, slightly perturbed.
    ca = rn + rim
    cb = rn * aspect + rim * rng.uniform(0.85, 1.15)
    radius = max(ca, cb) * 1.06 + 1.0
    offset = rng.uniform(0.0, 0.35) * rim
    offset_angle = rng.uniform(0.0, 2 * math.pi)
    margin = 2.0 * scale + 1.0
    tries = rng.uniform(0.0, 1.0, (40, 2))
    xs = radius + margin + tries[:, 0] * max(w - 2 * (radius + margin), 0.0)
    ys = radius + margin + tries[:, 1] * max(h - 2 * (radius + margin), 0.0)
    if other is None:
        k = 0
    else:
        free = np.hypot(xs - other.cx, ys - other.cy) > radius + other.radius + 4.0 * scale
        if not free.any():
            return None
        k = int(np.argmax(free))
    cx, cy = float(xs[k]), float(ys[k])
    cell = _contour(rng, cx, cy, ca, cb, rotation, 0.025)
    nx = cx + offset * math.cos(offset_angle)
    ny = cy + offset * math.sin(offset_angle)
    nucleus = _contour(rng, nx, ny, rn, rn * aspect, rotation, shape.irregularity, notch)
    return _Wbc(cx, cy, radius, cell, nucleus)


def _draw_rbcs(
    rng: np.random.Generator,
    canvas: np.ndarray,
    n: int,
    scale: float,
    wbcs: list[_Wbc],
    h: int,
    w: int,
) -> tuple[np.ndarray, int]:
    """Stain thickness map of ``n`` overlapping red cells, and how many were drawn.

    ``canvas`` is scratch space of shape ``(h + 2 * pad, w + 2 * pad)``; the
    map returned is a view into it.
    """
    half = _rbc_half(scale)
    pad = 2 * half + 2
    canvas.fill(0.0)
    if n == 0:
        return canvas[pad : pad + h, pad : pad + w], 0
    r = rng.uniform(10.5, 14.0, n) * scale
    # Centres anywhere (clipped at the borders) but not deep under a white cell.
    tries = rng.uniform(0.0, 1.0, (n, 8, 2))
    cx = (w + r)[:, None] * tries[:, :, 0] - 0.5 * r[:, None]
    cy = (h + r)[:, None] * tries[:, :, 1] - 0.5 * r[:, None]
    free = np.ones(cx.shape, bool)
    for c in wbcs:
        free &= np.hypot(cx - c.cx, cy - c.cy) > c.radius + 0.4 * r[:, None]
    first = np.argmax(free, axis=1)
    rows = np.arange(n)
    keep = free[rows, first]
    cx, cy = cx[rows, first][keep], cy[rows, first][keep]
    elong = rng.uniform(0.85, 1.0, n)[keep]
    rot = rng.uniform(0.0, math.pi, n)[keep]
    pallor = rng.uniform(0.25, 0.5, n)[keep]
    strength = rng.uniform(0.85, 1.1, n)[keep]
    r = r[keep]
    m = int(keep.sum())
    if m == 0:
        return canvas[pad : pad + h, pad : pad + w], 0

    ix = np.floor(cx).astype(np.int64)
    iy = np.floor(cy).astype(np.int64)
    offs = np.arange(-half, half + 1, dtype=np.float32)
    dx = offs[None, :] + (ix - cx).astype(np.float32)[:, None]  # (m, B)
    dy = offs[None, :] + (iy - cy).astype(np.float32)[:, None]
    cos = (np.cos(rot) / r).astype(np.float32)[:, None, None]
    sin = (np.sin(rot) / r).astype(np.float32)[:, None, None]
    inv_b = (1.0 / elong).astype(np.float32)[:, None, None]
    pu = dy[:, :, None] * sin + dx[:, None, :] * cos  # (m, B, B)
    pv = dy[:, :, None] * cos - dx[:, None, :] * sin
    pv *= inv_b
    pu *= pu
    pv *= pv
    pu += pv
    rho = np.sqrt(pu)
    # Biconcave disc: central pallor rising to a full rim, then a soft edge.
    t = rho - np.float32(0.15)
    t *= np.float32(1.0 / 0.55)
    np.clip(t, 0.0, 1.0, out=t)
    profile = t * np.float32(-2.0)
    profile += np.float32(3.0)
    profile *= t
    profile *= t
    profile *= ((1.0 - pallor) * strength).astype(np.float32)[:, None, None]
    profile += (pallor * strength).astype(np.float32)[:, None, None]
    edge = np.float32(1.0) - rho
    edge *= (r / 1.3).astype(np.float32)[:, None, None]  # soft edge of 1.3 px
    np.clip(edge, 0.0, 1.0, out=edge)
    profile *= edge
    side = 2 * half + 1
    for k in range(m):
        y0, x0 = int(iy[k]) - half + pad, int(ix[k]) - half + pad
        canvas[y0 : y0 + side, x0 : x0 + side] += profile[k]
    return canvas[pad : pad + h, pad : pad + w], m


def _draw_platelets(
    rng: np.random.Generator,
    od: np.ndarray,
    mask: np.ndarray,
    n: int,
    scale: float,
    wbcs: list[_Wbc],
    platelet_od: np.ndarray,
) -> None:
    h, w = mask.shape
    centres: list[tuple[float, float]] = []
    pad = int(math.ceil(6 * scale)) + 2
    for _ in range(n):
        tries = rng.uniform(0.0, 1.0, (20, 2))
        xs = pad + tries[:, 0] * (w - 2 * pad - 1)
        ys = pad + tries[:, 1] * (h - 2 * pad - 1)
        free = np.ones(20, bool)
        for c in wbcs:
            free &= np.hypot(xs - c.cx, ys - c.cy) > c.radius + 8 * scale
        for px, py in centres:
            free &= np.hypot(xs - px, ys - py) > 14 * scale
        if not free.any():
            continue
        k = int(np.argmax(free))
        cx, cy = float(xs[k]), float(ys[k])
        centres.append((cx, cy))
        x0, y0 = int(cx) - pad, int(cy) - pad
        x1, y1 = x0 + 2 * pad + 1, y0 + 2 * pad + 1
        blob = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for _k in range(int(rng.integers(1, 4))):
            ox, oy = rng.uniform(-1.6, 1.6, 2) * scale
            radius = rng.uniform(2.0, 3.2) * scale
            _circle(blob, cx + ox - x0, cy + oy - y0, radius, 1, cv2.LINE_8)
        mask[y0:y1, x0:x1] |= blob
        weight = _field(rng, (3, 3), blob.shape)
        weight *= np.float32(0.25)
        weight += np.float32(1.0)
        weight *= blob
        weight *= np.float32(rng.uniform(0.8, 1.1))
        for c in range(3):
            od[c, y0:y1, x0:x1] += weight * platelet_od[c]


def _circle(image: np.ndarray, x: float, y: float, radius: float, value: int, line: int) -> None:
    """Filled circle with sub-pixel centre and radius (``line``: cv2.LINE_8 or LINE_AA)."""
    one = 1 << _POLY_SHIFT
    centre = (int(round(x * one)), int(round(y * one)))
    cv2.circle(image, centre, int(round(radius * one)), value, -1, line, _POLY_SHIFT)


def _poly(points: np.ndarray, x0: int, y0: int) -> list[np.ndarray]:
    fixed = np.round((points - [x0, y0]) * (1 << _POLY_SHIFT)).astype(np.int32)
    return [fixed.reshape(-1, 1, 2)]


def _paint_wbc(
    rng: np.random.Generator,
    od: np.ndarray,
    nucleus_mask: np.ndarray,
    cell_mask: np.ndarray,
    g: _Wbc,
    shape: _CellShape,
    label: int,
    scale: float,
    tint_od: np.ndarray,
    stain: np.ndarray,
) -> None:
    """Paint one white cell over ``od`` and add it to the masks.

    The outlines are drawn anti-aliased; a pixel belongs to a mask when the
    shape covers at least half of it, and colours are blended by coverage.
    """
    h, w = nucleus_mask.shape
    x0, y0 = max(int(g.cx - g.radius) - 3, 0), max(int(g.cy - g.radius) - 3, 0)
    x1, y1 = min(int(g.cx + g.radius) + 4, w), min(int(g.cy + g.radius) + 4, h)
    rh, rw = y1 - y0, x1 - x0
    nuc_cover = np.zeros((rh, rw), np.uint8)
    cv2.fillPoly(nuc_cover, _poly(g.nucleus, x0, y0), 255, cv2.LINE_AA, _POLY_SHIFT)
    cell_cover = np.zeros((rh, rw), np.uint8)
    cv2.fillPoly(cell_cover, _poly(g.cell, x0, y0), 255, cv2.LINE_AA, _POLY_SHIFT)
    np.maximum(cell_cover, nuc_cover, out=cell_cover)
    nuc = nuc_cover >= 128
    cell = cell_cover >= 128

    # Cytoplasm: smooth colour variation and, for L3, clear vacuoles.
    cyto_density = _field(rng, (4, 4), (rh, rw))
    cyto_density *= np.float32(0.12)
    cyto_density += np.float32(1.0)
    n_vac = int(rng.integers(shape.vacuoles[0], shape.vacuoles[1] + 1))
    if n_vac:
        cyto = (cell & ~nuc).view(np.uint8)
        reach = max(1, round(shape.vacuole_radius[1] * scale))
        inner = cv2.erode(cyto, np.ones((3, 3), np.uint8), iterations=reach)
        where = np.flatnonzero(inner)
        if where.size:
            holes = np.zeros((rh, rw), np.uint8)
            for k in rng.integers(0, where.size, n_vac):
                yy, xx = divmod(int(where[k]), rw)
                radius = rng.uniform(*shape.vacuole_radius) * scale
                _circle(holes, xx, yy, radius, 255, cv2.LINE_AA)
            holes = cv2.GaussianBlur(holes, (0, 0), 0.5 * scale + 0.2)
            cyto_density *= np.float32(1.0) - holes.astype(np.float32) * np.float32(0.85 / 255)
    # Nucleus: chromatin texture at two scales and pale nucleoli.
    k = shape.chromatin_cells
    chromatin = _field(rng, (k, k), (rh, rw))
    chromatin *= np.float32(0.6)
    chromatin += _field(rng, (3 * k, 3 * k), (rh, rw)) * np.float32(0.4)
    nuc_density = chromatin * np.float32(shape.chromatin)
    nuc_density += np.float32(rng.uniform(0.92, 1.08))
    n_nucleoli = int(rng.integers(shape.nucleoli[0], shape.nucleoli[1] + 1))
    if n_nucleoli:
        spots = np.zeros((rh, rw), np.uint8)
        centre = g.nucleus.mean(axis=0) - [x0, y0]
        extent = 0.45 * float(np.min(np.hypot(*(g.nucleus - g.nucleus.mean(axis=0)).T)))
        for _ in range(n_nucleoli):
            ang = rng.uniform(0.0, 2 * math.pi)
            dist = math.sqrt(rng.random()) * extent
            radius = rng.uniform(*shape.nucleolus_radius) * scale
            px = centre[0] + dist * math.cos(ang)
            py = centre[1] + dist * math.sin(ang)
            _circle(spots, px, py, radius, 255, cv2.LINE_AA)
        spots = cv2.GaussianBlur(spots, (0, 0), 0.8 * scale + 0.3)
        nuc_density *= np.float32(1.0) - spots.astype(np.float32) * np.float32(0.5 / 255)

    # Blend by coverage: the cell hides what lies under it, the nucleus the cytoplasm.
    cyto_od = _CYTO_OD[label] * stain
    nuc_od = _NUCLEUS_OD * stain
    cell_alpha = cell_cover.astype(np.float32)
    cell_alpha *= np.float32(1.0 / 255.0)
    nuc_alpha = nuc_cover.astype(np.float32)
    nuc_alpha *= np.float32(1.0 / 255.0)
    for c in range(3):
        roi = od[c, y0:y1, x0:x1]
        paint = cyto_density * cyto_od[c]
        paint += tint_od[c]
        paint -= roi
        paint *= cell_alpha
        roi += paint
        paint = nuc_density * nuc_od[c]
        paint += tint_od[c]
        paint -= roi
        paint *= nuc_alpha
        roi += paint
    nucleus_mask[y0:y1, x0:x1] |= nuc
    cell_mask[y0:y1, x0:x1] |= cell


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
        Strength in ``[0, 1]`` of the spurious background cue; shorthand for
        ``SmearConfig(shortcut=...)``. See :class:`SmearConfig`.
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
        if isinstance(n_images, bool) or not isinstance(n_images, numbers.Integral):
            raise ValueError(f"n_images must be an int, got {n_images!r}")
        if n_images < 1:
            raise ValueError(f"n_images must be at least 1, got {n_images}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if config is None:
            config = SmearConfig(size=size, shortcut=shortcut)
        elif not isinstance(config, SmearConfig):
            raise ValueError(f"config must be a SmearConfig, got {type(config).__name__}")
        else:
            given = SmearConfig(size=size, shortcut=shortcut)
            if size != 256 and given.shape != config.shape:
                raise ValueError(
                    f"size={size!r} disagrees with config.size={config.size!r}; give only one"
                )
            if shortcut != 0.0 and shortcut != config.shortcut:
                raise ValueError(
                    f"shortcut={shortcut!r} disagrees with config.shortcut={config.shortcut!r};"
                    " give only one"
                )
        self.config = config
        self.seed = int(seed)
        self._n = int(n_images)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed))
        pool = np.tile(np.arange(len(CLASS_NAMES), dtype=np.int64), -(-self._n // 3))
        labels = rng.permutation(pool)[: self._n]
        labels.flags.writeable = False
        self._labels = labels
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
        seed = np.random.SeedSequence(self.seed, spawn_key=(index,))
        return generate_smear(int(self._labels[index]), seed, self.config, self._ids[index])

    def __repr__(self) -> str:
        h, w = self.config.shape
        return (
            f"<SyntheticDataset {self._n} samples, {h}x{w}, seed={self.seed}, "
            f"shortcut={self.config.shortcut:g}>"
        )
