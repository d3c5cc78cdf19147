"""Image corruptions: the paper's blur and noise, and graded sweeps of six microscope faults.

Every corruption is an albumentations 2.x transform acting on the ``uint8``
RGB microscope image, seeded per image (:func:`image_seed`): the same seed,
corruption, severity and image id give the same corrupted pixels, whatever
the order of the images, so that every model of a comparison sees the same
corrupted images.

The paper's setting (its Table 7)
---------------------------------
The paper adds ``MotionBlur`` (``blur_limit=5``), ``MultiplicativeNoise`` and
``GaussNoise`` (variance 10, mean 0) of albumentations 1.x to its test split,
together with its training augmentation. Albumentations 2.x renamed and
rescaled some parameters; :func:`paper_transform` uses this mapping
(:data:`PAPER_SETTING` records it):

=========================  ===============================  =====================================
albumentations 1.x         2.x, as used here                note
=========================  ===============================  =====================================
``MotionBlur(blur_limit    ``MotionBlur(blur_limit=5)``     kernel side drawn from {3, 5} in both;
=5)``                                                       2.x draws the line's angle in [0, 360)
                                                            and its direction in [-1, 1]
``MultiplicativeNoise()``  ``MultiplicativeNoise()``        unchanged: one factor in [0.9, 1.1]
                                                            for the whole image
``GaussNoise(var_limit     ``GaussNoise(std_range=(s, s),   1.x draws a variance in (0, 10) grey
=10, mean=0)``             mean_range=(0, 0))`` with        levels squared and adds noise of SD
                           ``s = sqrt(v) / 255``, ``v``     ``sqrt(v)`` grey levels; 2.x takes the
                           drawn from U(0, 10) per image    SD as a fraction of 255, so the draw of
                                                            ``v`` is done here, per image, and the
                                                            SD is at most 3.2 grey levels (1.2 %)
=========================  ===============================  =====================================

Albumentations' own migration note maps 1.x's default variances (10, 50) to
``std_range=(0.2, 0.44)``, i.e. ``sqrt(var / 255)``: that treats a variance
in squared grey levels as a fraction and gives noise 16 times stronger than
1.x added (SD 51 instead of 3.2 grey levels for a variance of 10). leukolib
keeps 1.x's noise. The paper states no probabilities: each transform keeps
albumentations' default ``p=0.5``, as the paper's code most likely did (both
versions share that default), so about one test image in eight is left
clean; ``p`` is a parameter.

Beyond the paper: severity sweeps
---------------------------------
:data:`CORRUPTIONS` holds six faults of a microscope image, each at five
severities (1 the mildest) applied to every image (``p=1``), with sizes
given for a 256-pixel image and scaled with the shorter image side (the
blurs):

==================  ==================================================  =================
name                transform (albumentations 2.x), severities 1-5      fault
==================  ==================================================  =================
``motion_blur``     ``MotionBlur``, kernel 3, 5, 9, 13, 17 px           stage or camera
                                                                        movement
``defocus_blur``    ``Defocus``, radius 1, 2, 3, 4, 6 px                out of focus
``gaussian_noise``  ``GaussNoise``, SD 2, 4, 8, 12, 18 % of 255         sensor noise, low
                                                                        light
``jpeg``            ``ImageCompression``, quality 80, 50, 30, 15, 7     lossy storage
``brightness_       ``RandomBrightnessContrast``, brightness +s,        over-exposure: the
contrast``          contrast -s, s = 0.1 ... 0.5 (the image blended     image washed out
                    towards white by the fraction s)
``stain_shift``     ``HueSaturationValue``, hue +3 ... +15 OpenCV       another stain
                    units (6-30 degrees), saturation -8 ... -40         batch, a faded
                                                                        stain
==================  ==================================================  =================

Examples
--------
>>> image = np.full((64, 64, 3), 128, np.uint8)
>>> corrupt(image, "gaussian_noise", 0) is image
True
>>> a = corrupt(image, "gaussian_noise", 3, seed=0, key="x")
>>> b = corrupt(image, "gaussian_noise", 3, seed=0, key="x")
>>> bool((a == b).all()), bool((a != image).any())
(True, True)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.base import Dataset
from leukolib.data.sample import Sample

__all__ = [
    "CORRUPTIONS",
    "PAPER_SETTING",
    "SEVERITIES",
    "Corruption",
    "CorruptedDataset",
    "corrupt",
    "corrupt_images",
    "image_seed",
    "paper_corrupt",
    "paper_mapping",
    "paper_transform",
    "severity_levels",
]

#: The severities of every sweep (0 is the clean image).
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
#: The image side at which the blur sizes of :data:`CORRUPTIONS` hold.
REFERENCE_SIDE = 256


def _odd(k: float) -> int:
    k = max(3, int(round(k)))
    return k if k % 2 else k + 1


@dataclass(frozen=True)
class Corruption:
    """One fault of a microscope image, at five severities.

    Attributes
    ----------
    name : str
        Registry key.
    label : str
        For figures and tables.
    levels : tuple
        The parameter at severities 1-5 (at a 256-pixel image for blurs).
    unit : str
        What the parameter is.
    build : callable
        ``build(value) -> albumentations transform`` (with ``p=1``).
    scaled : bool
        Whether the parameter is a length, scaled with the shorter image side.
    """

    name: str
    label: str
    levels: tuple[Any, ...]
    unit: str
    build: Callable[[Any], Any]
    scaled: bool = False

    def parameter(self, severity: int, shape: Sequence[int] = (REFERENCE_SIDE,)) -> Any:
        """The parameter at ``severity`` (1-5) for an image of ``shape`` ``(H, W, ...)``."""
        if not 1 <= int(severity) <= len(self.levels):
            raise ValueError(f"{self.name}: severity {severity} not in 1..{len(self.levels)}")
        value = self.levels[int(severity) - 1]
        if not self.scaled:
            return value
        scale = min(shape[:2]) / REFERENCE_SIDE
        return _odd(value * scale) if self.name == "motion_blur" else max(1, round(value * scale))

    def transform(self, severity: int, shape: Sequence[int] = (REFERENCE_SIDE,)) -> Any:
        """The albumentations transform at ``severity`` for an image of ``shape``."""
        return self.build(self.parameter(severity, shape))


def _corruptions() -> dict[str, Corruption]:
    import albumentations as A

    def washed(s: float):
        return A.RandomBrightnessContrast(brightness_limit=(s, s), contrast_limit=(-s, -s), p=1)

    def stain(h: int):
        return A.HueSaturationValue(hue_shift_limit=(h, h), sat_shift_limit=(-8 * h // 3,) * 2,
                                    val_shift_limit=(0, 0), p=1)

    items = [
        Corruption("motion_blur", "motion blur", (3, 5, 9, 13, 17), "kernel, px",
                   lambda k: A.MotionBlur(blur_limit=(k, k), p=1), scaled=True),
        Corruption("defocus_blur", "defocus blur", (1, 2, 3, 4, 6), "radius, px",
                   lambda r: A.Defocus(radius=(r, r), alias_blur=(0.1, 0.1), p=1), scaled=True),
        Corruption("gaussian_noise", "Gaussian noise", (0.02, 0.04, 0.08, 0.12, 0.18),
                   "SD / 255", lambda s: A.GaussNoise(std_range=(s, s), p=1)),
        Corruption("jpeg", "JPEG compression", (80, 50, 30, 15, 7), "quality",
                   lambda q: A.ImageCompression(quality_range=(q, q), p=1)),
        Corruption("brightness_contrast", "brightness/contrast", (0.1, 0.2, 0.3, 0.4, 0.5),
                   "share of white", washed),
        Corruption("stain_shift", "stain shift", (3, 6, 9, 12, 15),
                   "hue, OpenCV units", stain),
    ]
    return {c.name: c for c in items}


#: The sweeps' corruptions by name (see the module notes).
CORRUPTIONS: dict[str, Corruption] = _corruptions()

#: The paper's Table 7 setting and how it maps onto albumentations 2.x (recorded with results).
PAPER_SETTING: dict[str, Any] = {
    "transforms_1x": ["MotionBlur(blur_limit=5)", "MultiplicativeNoise()",
                      "GaussNoise(var_limit=10, mean=0)"],
    "transforms_2x": ["MotionBlur(blur_limit=5)", "MultiplicativeNoise()",
                      "GaussNoise(std_range=(s, s), mean_range=(0, 0)), s = sqrt(U(0, 10)) / 255"],
    "notes": ["kernel side 3 or 5 in both; 2.x draws the line's angle and direction",
              "unchanged: one factor in [0.9, 1.1] for the whole image",
              "1.x: variance v ~ U(0, 10) grey levels squared, SD sqrt(v) grey levels; 2.x takes "
              "the SD as a fraction of 255, so v is drawn per image here (SD <= 3.2 grey levels)"],
    "p": 0.5,
    "order": "training augmentation (image and mask), then blur and noise (image only)",
}


def paper_mapping() -> pd.DataFrame:
    """:data:`PAPER_SETTING` as a table: one row per transform, 1.x, 2.x and the note.

    Examples
    --------
    >>> paper_mapping().columns.tolist()
    ['albumentations 1.x (the paper)', 'albumentations 2.x (leukolib)', 'note', 'p']
    """
    s = PAPER_SETTING
    return pd.DataFrame({"albumentations 1.x (the paper)": s["transforms_1x"],
                         "albumentations 2.x (leukolib)": s["transforms_2x"],
                         "note": s["notes"], "p": s["p"]})


def severity_levels(n: int) -> tuple[int, ...]:
    """``n`` severities spread over 1-5, the mildest and the strongest always in.

    Examples
    --------
    >>> severity_levels(5), severity_levels(2), severity_levels(3)
    ((1, 2, 3, 4, 5), (1, 5), (1, 3, 5))
    """
    n = max(1, min(int(n), len(SEVERITIES)))
    if n == 1:
        return (SEVERITIES[-1],)
    return tuple(int(round(v)) for v in np.linspace(SEVERITIES[0], SEVERITIES[-1], n))


def image_seed(seed: int, *keys: Any) -> int:
    """A 32-bit seed from ``seed`` and any keys (corruption, severity, image id).

    Examples
    --------
    >>> image_seed(0, "jpeg", 3, "Im001_1") == image_seed(0, "jpeg", 3, "Im001_1")
    True
    """
    from leukolib.device import derive_seed

    text = "\x1f".join(map(str, keys)).encode()
    return derive_seed(int(seed), zlib.crc32(text))


def _get(name: str) -> Corruption:
    try:
        return CORRUPTIONS[name]
    except KeyError:
        raise ValueError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}") from None


def corrupt(image: np.ndarray, corruption: str, severity: int, seed: int = 0,
            key: Any = "") -> np.ndarray:
    """One image under one corruption at one severity (0: the image itself).

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    corruption : str
        A key of :data:`CORRUPTIONS` (any name at severity 0).
    severity : int
        0 (clean) to 5.
    seed : int
    key : any
        The image's identity (its id): with the seed, it fixes the random draw.
    """
    import albumentations as A

    if int(severity) == 0:
        return image
    c = _get(corruption)
    t = A.Compose([c.transform(severity, image.shape)],
                  seed=image_seed(seed, corruption, severity, key))
    return t(image=image)["image"]


def corrupt_images(images: Sequence[np.ndarray], corruption: str, severity: int, seed: int = 0,
                   keys: Sequence[Any] | None = None) -> list[np.ndarray]:
    """:func:`corrupt` of several images (``keys``: their ids; default their positions)."""
    keys = range(len(images)) if keys is None else keys
    return [corrupt(im, corruption, severity, seed, k) for im, k in zip(images, keys, strict=True)]


def paper_transform(seed: int, p: float = 0.5, augmentation: Any = None) -> Any:
    """The paper's Table 7 corruption for one image (see :data:`PAPER_SETTING`).

    Parameters
    ----------
    seed : int
        The image's seed (:func:`image_seed`): it draws the noise variance
        and seeds the transforms.
    p : float
        Probability of each of the three transforms.
    augmentation : albumentations transform, optional
        Applied first, to the image and its ``mask`` (the classifiers'
        training augmentation,
        :func:`leukolib.classification.augment.training_transforms`).

    Returns
    -------
    albumentations.Compose
    """
    import albumentations as A

    rng = np.random.default_rng(seed)
    std = math.sqrt(rng.uniform(0.0, 10.0)) / 255.0  # 1.x's var_limit=10, in grey levels
    steps = [] if augmentation is None else [augmentation]
    steps += [A.MotionBlur(blur_limit=5, p=p), A.MultiplicativeNoise(p=p),
              A.GaussNoise(std_range=(std, std), mean_range=(0.0, 0.0), p=p)]
    return A.Compose(steps, seed=int(rng.integers(2**31)))


def paper_corrupt(image: np.ndarray, mask: np.ndarray | None = None, seed: int = 0,
                  key: Any = "", p: float = 0.5,
                  augmentation: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The paper's corruption of one image, and its mask moved by the same augmentation.

    Returns
    -------
    (image, mask)
        ``mask`` is ``None`` when none was given; otherwise bool, moved by the
        geometric transforms of ``augmentation`` (never by blur or noise).
    """
    t = paper_transform(image_seed(seed, "paper", key), p, augmentation)
    if mask is None:
        return t(image=image)["image"], None
    out = t(image=image, mask=np.asarray(mask, np.uint8))
    return out["image"], out["mask"] > 0


class CorruptedDataset(Dataset):
    """A dataset whose images are corrupted on reading; masks, labels and ids unchanged.

    Parameters
    ----------
    dataset : Dataset
    corruption : str
        A key of :data:`CORRUPTIONS` (any name, e.g. ``"none"``, at severity 0).
    severity : int
        0 (the clean images) to 5.
    seed : int
        With each sample's id, fixes its corruption.

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> ds = load_dataset("synthetic", n_images=2, size=64, seed=0)
    >>> bad = CorruptedDataset(ds, "defocus_blur", 5)
    >>> bad.ids == ds.ids, bool((bad[0].nucleus == ds[0].nucleus).all())
    (True, True)
    """

    def __init__(self, dataset: Dataset, corruption: str, severity: int, seed: int = 0) -> None:
        if int(severity) != 0:
            _get(corruption).parameter(severity)  # an unknown name or severity fails here
        self.dataset = dataset
        self.corruption, self.severity, self.seed = corruption, int(severity), int(seed)
        self.name = dataset.name
        self.class_names = dataset.class_names
        self.has_masks = dataset.has_masks

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def ids(self) -> list[str]:
        """Sample identifiers, as in the clean dataset."""
        return self.dataset.ids

    @property
    def labels(self) -> np.ndarray | None:
        """Labels, as in the clean dataset."""
        return self.dataset.labels

    @property
    def groups(self) -> list[str] | None:
        """Groups, as in the clean dataset."""
        return self.dataset.groups

    def _load(self, index: int) -> Sample:
        s = self.dataset[index]
        image = corrupt(s.image, self.corruption, self.severity, self.seed, s.id)
        return Sample(image, s.nucleus, s.cytoplasm, s.label, s.id, s.path, s.mask_repaired)

    def __repr__(self) -> str:
        return (f"<CorruptedDataset {self.name!r}: {self.corruption} severity {self.severity}, "
                f"{len(self)} samples>")
