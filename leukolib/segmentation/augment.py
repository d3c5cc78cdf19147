"""Pre-processing and on-the-fly augmentation of image / mask pairs for the U-Net.

Conventions
-----------
* **Normalisation**: an RGB ``uint8`` image becomes ``float32`` in ``[0, 1]``
  (divided by 255), channel first ``(3, H, W)``; no per-channel mean/std
  standardisation (instance normalisation in the network makes it
  unnecessary). A mask becomes ``float32`` ``{0, 1}``, shape ``(1, H, W)``.
* **Resizing** (:func:`resize_image`, :func:`resize_mask`) to the profile's
  square size happens once, before augmentation (every transform below is
  size-preserving, so the order does not change the result, and augmenting
  small images is cheaper): bilinear for images (antialiased when shrinking),
  bilinear then ``>= 0.5`` for masks. Inference resizes the image the same
  way and maps the predicted probabilities back to the original size with
  bilinear interpolation (:mod:`leukolib.segmentation.unet`).

Augmentation (paper, section 4.1), applied on the fly to each training pair:

=====================  ======  ===============================================
transform              p       how
=====================  ======  ===============================================
vertical flip          0.5     ``RandFlipd(spatial_axis=0)``, image and mask
horizontal flip        0.5     ``RandFlipd(spatial_axis=1)``, image and mask
random rotate 90       0.5     ``RandRotate90d`` (k = 1, 2 or 3), both
transpose              0.5     :class:`RandTransposed` (swap H and W), both
random gamma           0.2     ``RandAdjustContrastd``, gamma in [0.7, 1.5],
                               image only
CLAHE                  0.2     :class:`RandCLAHEd` (scikit-image
                               ``equalize_adapthist``, clip 0.01), image only
Gaussian noise         0.2     ``RandGaussianNoised``, std up to 0.03, image
                               only, then clipped to [0, 1]
=====================  ======  ===============================================

The whole pipeline is a MONAI ``Compose``; :func:`training_transforms` seeds
it (``set_random_state``), so the same seed gives the same augmented pairs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import (
    Compose,
    MapTransform,
    RandAdjustContrastd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandGaussianNoised,
    RandomizableTransform,
    RandRotate90d,
    RandZoomd,
)

__all__ = [
    "Augmentation",
    "RandCLAHEd",
    "RandStainJitterd",
    "RandTransposed",
    "ClipIntensityd",
    "image_to_tensor",
    "unet_input",
    "mask_to_tensor",
    "resize_image",
    "resize_mask",
    "training_transforms",
    "patch_transforms",
    "pad_to",
    "ReflectPadd",
    "plain_tensor",
]

KEYS = ("image", "mask")


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB ``uint8`` ``(H, W, 3)`` -> ``float32`` ``(3, H, W)`` in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> t = image_to_tensor(np.full((2, 3, 3), 255, np.uint8))
    >>> tuple(t.shape), float(t.max())
    ((3, 2, 3), 1.0)
    """
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {a.shape}")
    if a.dtype != np.uint8:
        from leukolib.data.io import to_rgb_uint8

        a = to_rgb_uint8(a)
    # astype copies: read-only inputs (e.g. decoded files) are fine.
    return torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).div_(255.0)


def unet_input(image: np.ndarray, colour: str = "rgb") -> torch.Tensor:
    """The U-Net's input tensor of an RGB image: :func:`image_to_tensor`, after colour handling.

    ``colour="gray-world"`` first applies the handcrafted method's gray-world
    colour constancy (:func:`~leukolib.segmentation.features.color_constancy`:
    the three channel means made equal), so that a yellow-background crop and a
    pink field reach the network in comparable colours; ``"rgb"`` leaves the
    image as it is (the paper's protocol).
    """
    if colour == "rgb":
        return image_to_tensor(image)
    if colour != "gray-world":
        raise ValueError(f"colour must be 'rgb' or 'gray-world', got {colour!r}")
    from leukolib.segmentation.features import color_constancy

    a = np.asarray(image)
    if a.dtype != np.uint8:
        from leukolib.data.io import to_rgb_uint8

        a = to_rgb_uint8(a)
    return image_to_tensor(np.round(color_constancy(a)).astype(np.uint8))


def mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """Boolean mask ``(H, W)`` -> ``float32`` ``(1, H, W)`` in ``{0, 1}``."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {m.shape}")
    return torch.from_numpy(m.astype(np.float32))[None]


def resize_image(image: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(C, H, W)`` or ``(N, C, H, W)`` float images.

    Antialiased when shrinking, so that small structures are averaged rather
    than aliased. Returns the input unchanged when it already has the size.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    batched = image.ndim == 4
    x = image if batched else image[None]
    if tuple(x.shape[-2:]) != hw:
        shrink = x.shape[-2] > hw[0] or x.shape[-1] > hw[1]
        x = F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrink)
    return x if batched else x[0]


def resize_mask(mask: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize a ``{0, 1}`` mask ``(1, H, W)``: bilinear, then threshold at 0.5."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(mask.shape[-2:]) == hw:
        return mask
    return (resize_image(mask.float(), hw) >= 0.5).float()


def plain_tensor(x) -> torch.Tensor:
    """A plain ``torch.Tensor`` (MONAI returns ``MetaTensor``; numpy is converted)."""
    if hasattr(x, "as_tensor"):
        return x.as_tensor()
    return torch.as_tensor(np.asarray(x)) if isinstance(x, np.ndarray) else x


def pad_to(x: torch.Tensor, size: int) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Pad ``(C, H, W)`` by reflection to at least ``size`` on each side.

    Returns the padded tensor and the slices that cut the original back out.
    Reflection (numpy's, repeated for pads larger than the image) keeps the
    border's texture: a constant border is an edge the network never sees in
    a field. A mask padded the same way stays aligned with its image.

    Examples
    --------
    >>> import torch
    >>> y, cut = pad_to(torch.arange(6.).reshape(1, 2, 3), 4)
    >>> tuple(y.shape), y[0][cut].tolist()
    ((1, 4, 4), [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    """
    h, w = x.shape[-2:]
    ph, pw = max(0, size - h), max(0, size - w)
    if not ph and not pw:
        return x, (slice(0, h), slice(0, w))
    top, left = ph // 2, pw // 2
    a = np.pad(x.cpu().numpy(), ((0, 0), (top, ph - top), (left, pw - left)), mode="reflect")
    return torch.from_numpy(a).to(x.device), (slice(top, top + h), slice(left, left + w))


class ReflectPadd(MapTransform):
    """Pad every key to at least ``size`` x ``size`` by reflection (:func:`pad_to`)."""

    def __init__(self, keys=KEYS, size: int = 128, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.size = int(size)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Pad the keys of ``data``."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = pad_to(plain_tensor(d[key]).float(), self.size)[0]
        return d


class RandTransposed(RandomizableTransform, MapTransform):
    """Swap the two spatial axes of every key with probability ``prob``.

    Parameters
    ----------
    keys : sequence of str
        Dictionary keys of channel-first ``(C, H, W)`` tensors.
    prob : float
        Probability of transposing.
    """

    def __init__(self, keys=KEYS, prob: float = 0.5, allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Transpose every key of ``data`` (or none), by one random draw."""
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = plain_tensor(d[key]).transpose(-1, -2).contiguous()
        return d


def _on_images(t, data: Mapping[Hashable, torch.Tensor],
               fn) -> dict[Hashable, torch.Tensor]:
    """Draw once whether ``t`` acts; if so, ``fn`` on each of its images as float64 (H, W, 3)."""
    d = dict(data)
    t.randomize(None)
    if not t._do_transform:
        return d
    for key in t.key_iterator(d):
        hwc = plain_tensor(d[key]).permute(1, 2, 0).clamp(0, 1).cpu().numpy().astype(np.float64)
        out = fn(hwc)
        d[key] = torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32)).permute(2, 0, 1)
    return d


class RandCLAHEd(RandomizableTransform, MapTransform):
    """Contrast-limited adaptive histogram equalisation with probability ``prob``.

    Wraps :func:`skimage.exposure.equalize_adapthist` (on an RGB image it
    equalises the value channel of HSV, keeping hue and saturation).

    Parameters
    ----------
    keys : sequence of str
        Keys of ``(3, H, W)`` float images in ``[0, 1]`` (never masks).
    prob : float
        Probability of applying it.
    clip_limit : float
        Contrast clip limit of CLAHE (scikit-image's default 0.01).
    """

    def __init__(
        self,
        keys=("image",),
        prob: float = 0.2,
        clip_limit: float = 0.01,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.clip_limit = clip_limit

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Equalise the images of ``data`` (or not), by one random draw."""
        from skimage.exposure import equalize_adapthist

        return _on_images(self, data,
                          lambda hwc: equalize_adapthist(hwc, clip_limit=self.clip_limit))


class RandStainJitterd(RandomizableTransform, MapTransform):
    """Stain jitter in optical density, along the haematoxylin, eosin and DAB axes.

    The image's optical density ``OD = -ln(rgb)`` is unmixed into three stain
    concentrations with Ruifrok and Johnston's matrix
    (:data:`skimage.color.hed_from_rgb`), each concentration ``s`` becomes
    ``alpha * s + beta`` with ``alpha`` drawn in ``[1 - sigma, 1 + sigma]``
    and ``beta`` in ``[-sigma, sigma]`` per stain, and the result is mixed
    back (:data:`skimage.color.rgb_from_hed`): the HED augmentation of
    Tellez et al. (2018). Unlike :func:`skimage.color.rgb2hed`, negative
    concentrations are kept, so that ``alpha = 1, beta = 0`` gives the image
    back (a Romanowsky-stained smear is no mix of H, E and DAB: its
    yellowish background has negative ones). The matrix is only a colour
    basis here: the jitter moves the image along optical-density directions,
    as another dye batch, smear thickness or scanner would.

    Parameters
    ----------
    keys : sequence of str
        Keys of ``(3, H, W)`` float images in ``[0, 1]`` (never masks).
    prob : float
    sigma : float
        Half-width of the scale and shift ranges (shift in optical density).

    Examples
    --------
    >>> t = RandStainJitterd(prob=1.0, sigma=0.0)
    >>> x = torch.rand(3, 4, 4) * 0.9 + 0.05
    >>> bool(torch.allclose(t({"image": x})["image"], x, atol=1e-5))
    True
    """

    def __init__(self, keys=("image",), prob: float = 0.5, sigma: float = 0.05,
                 allow_missing_keys: bool = False) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.sigma = float(sigma)
        self._alpha = np.ones(3)
        self._beta = np.zeros(3)

    def randomize(self, data=None) -> None:
        """Draw whether to jitter, and the scale and shift of each stain."""
        super().randomize(None)
        self._alpha = self.R.uniform(1 - self.sigma, 1 + self.sigma, size=3)
        self._beta = self.R.uniform(-self.sigma, self.sigma, size=3)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Jitter the stains of the images of ``data`` (or not), by one random draw."""
        from skimage.color import hed_from_rgb, rgb_from_hed

        def jitter(hwc: np.ndarray) -> np.ndarray:
            stains = (-np.log(np.clip(hwc, 1e-6, 1.0)) @ hed_from_rgb) * self._alpha + self._beta
            return np.clip(np.exp(-(stains @ rgb_from_hed)), 0.0, 1.0)

        return _on_images(self, data, jitter)


class ClipIntensityd(MapTransform):
    """Clip image intensities to ``[0, 1]`` (after noise) and return plain tensors."""

    def __init__(self, keys=("image",), allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        """Clip the keys of ``data`` to ``[0, 1]``."""
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = plain_tensor(d[key]).float().clamp_(0.0, 1.0)
        return d


@dataclass(frozen=True)
class Augmentation:
    """The settings of the U-Net's on-the-fly augmentation (recorded in every run).

    Attributes
    ----------
    p_geometric : float
        Probability of each geometric transform (flips, rotate 90, transpose),
        applied to image and mask alike.
    p_photometric : float
        Probability of each intensity transform (gamma, CLAHE, noise), image only.
    gamma_range : (float, float)
        Range of the random gamma.
    clahe_clip_limit : float
        CLAHE's contrast clip limit.
    noise_std : float
        Upper bound of the Gaussian noise's standard deviation.
    stain_sigma : float
        :class:`RandStainJitterd`'s half-width, applied with probability
        ``p_stain`` before the other intensity transforms; 0 (the default,
        the paper's augmentation): none. Recorded only when set, so runs
        without it keep the configuration they had.
    p_stain : float
    """

    p_geometric: float = 0.5
    p_photometric: float = 0.2
    gamma_range: tuple[float, float] = (0.7, 1.5)
    clahe_clip_limit: float = 0.01
    noise_std: float = 0.03
    stain_sigma: float = 0.0
    p_stain: float = 0.5

    def to_dict(self) -> dict[str, object]:
        """The settings as a plain dict, with the order of the pipeline."""
        fields = asdict(self)
        if not self.stain_sigma:
            del fields["stain_sigma"], fields["p_stain"]
            order = "gamma/CLAHE/noise (image only)"
        else:
            order = "HED stain jitter, gamma/CLAHE/noise (image only)"
        return {"order": "resize once, then flips/rotate90/transpose (image+mask), "
                f"{order}, clip [0, 1]", **fields}


def _augment_steps(a: Augmentation) -> list:
    g, p = a.p_geometric, a.p_photometric
    return [
        RandFlipd(keys=KEYS, prob=g, spatial_axis=0),
        RandFlipd(keys=KEYS, prob=g, spatial_axis=1),
        RandRotate90d(keys=KEYS, prob=g, max_k=3, spatial_axes=(0, 1)),
        RandTransposed(keys=KEYS, prob=g),
        *([RandStainJitterd(keys=("image",), prob=a.p_stain, sigma=a.stain_sigma)]
          if a.stain_sigma else []),
        RandAdjustContrastd(keys=("image",), prob=p, gamma=a.gamma_range),
        RandCLAHEd(keys=("image",), prob=p, clip_limit=a.clahe_clip_limit),
        RandGaussianNoised(keys=("image",), prob=p, mean=0.0, std=a.noise_std),
        ClipIntensityd(keys=KEYS),
    ]


def patch_transforms(patch_size: int, zoom: tuple[float, float] = (0.8, 1.25),
                     seed: int | None = 0, aug: Augmentation | None = None) -> Compose:
    """Training patches at the nucleus scale: zoom, pad, crop, then the paper's augmentation.

    On an image already resampled to the run's nucleus scale: a random
    isotropic zoom in ``zoom`` (``RandZoomd``, the spread of nucleus sizes
    around the median), a reflection pad to at least one patch
    (:class:`ReflectPadd`), a ``patch_size`` crop centred on a nucleus pixel
    two times in three and anywhere else otherwise (``RandCropByPosNegLabeld``),
    then :func:`training_transforms`'s flips, rotations and intensity changes.

    Returns
    -------
    monai.transforms.Compose
        Called on ``{"image": (3, H, W), "mask": (1, H, W)}`` of any size; it
        returns a list of one dict of ``(3, P, P)`` and ``(1, P, P)`` tensors.
    """
    a = aug or Augmentation()
    pipeline = Compose([
        RandZoomd(keys=KEYS, prob=1.0, min_zoom=zoom[0], max_zoom=zoom[1],
                  mode=("bilinear", "nearest"), keep_size=False),
        ReflectPadd(keys=KEYS, size=patch_size),
        RandCropByPosNegLabeld(keys=KEYS, label_key="mask", spatial_size=(patch_size, patch_size),
                               pos=2.0, neg=1.0, num_samples=1, allow_smaller=True),
        *_augment_steps(a),
    ])
    if seed is not None:
        pipeline.set_random_state(seed=int(seed) % (2**32))
    return pipeline


def training_transforms(seed: int | None = 0, aug: Augmentation | None = None) -> Compose:
    """The paper's on-the-fly augmentation as a seeded MONAI ``Compose``.

    Parameters
    ----------
    seed : int or None
        Seed of every random transform (``None``: not seeded).
    aug : Augmentation, optional
        Probabilities and ranges (default: :class:`Augmentation`).

    Returns
    -------
    monai.transforms.Compose
        Called on ``{"image": (3, S, S) float, "mask": (1, S, S) float}``; the
        output holds plain tensors, the image clipped to ``[0, 1]``.

    Examples
    --------
    >>> import torch
    >>> t = training_transforms(seed=0)
    >>> out = t({"image": torch.rand(3, 8, 8), "mask": torch.zeros(1, 8, 8)})
    >>> tuple(out["image"].shape), tuple(out["mask"].shape)
    ((3, 8, 8), (1, 8, 8))
    """
    pipeline = Compose(_augment_steps(aug or Augmentation()))
    if seed is not None:
        pipeline.set_random_state(seed=int(seed) % (2**32))
    return pipeline
