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

import numpy as np

from leukolib.data.base import Dataset
from leukolib.data.sample import Sample
from leukolib.data.smear_drawing import SmearLayers, draw_smear

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

_MIN_SIZE = 64




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
    return draw_smear(int(label), rng, config, str(id))


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
