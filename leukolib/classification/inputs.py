"""What the classifier sees: the segmented nucleus or the raw image, at the network's size.

One image becomes one network input in four deterministic steps
(:func:`network_view`):

1. **crop** (optional, ``crop`` = a margin): the square around the nucleus
   mask's bounding box, enlarged by ``margin`` times its side on every side
   and to at least ``crop_min`` times the image's shorter side, centred on the
   box, moved inside the image where it fits (padded with black where the
   image is smaller). Meant for full smear fields (640 x 480) where the cell is
   a small part of the image. With ``crop_min = 0`` the nucleus fills the
   frame and its absolute size is lost to the resize; with a ``crop_min``
   larger than the largest nucleus every crop has the same side, so the
   scale is kept (a nucleus twice as wide looks twice as wide). An empty mask
   keeps the whole image.
2. **segment** (``input="segmented"``): every pixel outside the nucleus mask
   set to zero (black), the paper's hard attention; ``"raw"`` keeps the image.
3. **colour** (``color="gray"``): the colour-neutralised ablation, the
   luminance copied to the three channels (ITU-R 601 weights, OpenCV's).
4. **resize and centre crop**: the shorter side resized to ``resize``
   (antialiased when shrinking), the centre ``image_size`` square kept: the
   paper's 232 and 224, torchvision's preprocessing of ResNet-50's ImageNet
   weights.

The result, a ``uint8`` square (what the reader sees in figures), is then
normalised with ImageNet's mean and standard deviation (:func:`to_tensor`),
pretrained or not. Each step also maps masks (:class:`View`'s ``warp``), so a
class activation map or a ground-truth mask can be laid over the network's
input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch

from leukolib.classification.models import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "COLORS",
    "FIELD_CROPS",
    "INPUTS",
    "InputSpec",
    "View",
    "auto_crop",
    "crop_box",
    "default_crop",
    "input_size",
    "resolve_crop",
    "network_view",
    "normalise",
    "to_tensor",
]

#: The two inputs of Table 1.
INPUTS = ("segmented", "raw")
#: Colour handling: the images as they are, or the colour-neutralised ablation.
COLORS = ("rgb", "gray")
#: Datasets of whole smear fields, where the cell is a small part of the image, and their
#: crop ``(margin, crop_min)``: a fixed window of 3/8 of the field's shorter side around the
#: nucleus (its scale kept), about one white cell with its surroundings. Single-cell crops
#: (ALL-IDB2, JTSC, CellaVision) are used whole.
FIELD_CROPS: dict[str, tuple[float, float]] = {"synthetic": (0.25, 0.375),
                                               "bloodseg": (0.25, 0.375)}


def default_crop(dataset_name: str) -> tuple[float | None, float]:
    """The crop a dataset's classifiers use by default: ``(margin, crop_min)`` or ``(None, 0)``.

    Examples
    --------
    >>> default_crop("synthetic"), default_crop("all_idb2")
    ((0.25, 0.375), (None, 0.0))
    """
    return FIELD_CROPS.get(str(dataset_name), (None, 0.0))


#: Datasets whose images are known to be single-cell crops (used whole without measuring).
CELL_CROPS: tuple[str, ...] = ("jtsc", "all_idb2", "cellavision", "leukemia_fab")


def resolve_crop(dataset: Sequence, name: str | None = None,
                 progress: bool = False) -> tuple[float | None, float, str]:
    """``--crop auto``: a known dataset's :func:`default_crop`, else :func:`auto_crop`'s measure.

    Returns ``(margin or None, crop_min, reason)``; the reason is printed when
    ``progress``.
    """
    name = str(name or getattr(dataset, "name", ""))
    if name in FIELD_CROPS or name in CELL_CROPS:
        crop, crop_min = default_crop(name)
        what = "a fixed window around the nucleus" if crop is not None else "used whole"
        out = (crop, crop_min, f"{name}: a known dataset of "
               f"{'fields' if crop is not None else 'cell crops'}, {what}")
    else:
        out = auto_crop(dataset)
    if progress:
        print(f"--crop auto: {out[2]}", flush=True)
    return out


#: Images measured by :func:`auto_crop` (evenly spaced over the dataset).
AUTO_CROP_SAMPLE = 32


def auto_crop(dataset: Sequence, handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
              n: int = AUTO_CROP_SAMPLE) -> tuple[float | None, float, str]:
    """The crop of ``--crop auto`` for a dataset leukolib does not know: measured, not assumed.

    The rule is the U-Net's scale rule (:mod:`leukolib.segmentation.scale`): a
    view shows the nucleus at :data:`~leukolib.segmentation.scale.TARGET_FRACTION`
    (3/8) of its side. The median nucleus diameter ``d`` of up to ``n`` images
    (their handcrafted masks, evenly spaced over the dataset) gives the window
    ``d / (3/8)``; when it is smaller than 90 % of the images' median shorter
    side, the images are fields and each is cropped to that fixed window
    around its nucleus (the nucleus keeps its scale); otherwise they are cell
    crops and used whole. Known datasets keep :func:`default_crop`.

    Returns
    -------
    (margin or None, crop_min, reason)
        As :func:`default_crop`, and the decision in words (what was measured).

    Examples
    --------
    >>> import numpy as np
    >>> from leukolib.data.sample import Sample
    >>> field = np.zeros((480, 640, 3), np.uint8)
    >>> mask = np.zeros((480, 640), bool); mask[200:240, 300:340] = True
    >>> crop, crop_min, why = auto_crop([Sample(field, None, None, 0, "f")], lambda im: mask)
    >>> crop, round(crop_min, 3), why.split(":")[0]
    (0.0, 0.251, 'fields')
    """
    from leukolib.segmentation.scale import TARGET_FRACTION, estimate_diameter

    if handcrafted is None:
        from leukolib.segmentation.handcrafted import segment_nucleus as handcrafted
    if len(dataset) == 0:
        return None, 0.0, "no images: used whole"
    sides: list[int] = []

    def measured(image: np.ndarray) -> np.ndarray:  # the image sides, read in the same pass
        sides.append(min(image.shape[:2]))
        return handcrafted(image)

    d, found = estimate_diameter(dataset, measured, n)
    side = float(np.median(sides))
    if d is None:
        return None, 0.0, (f"cell crops: no nucleus found in {len(sides)} image(s) measured; "
                           "used whole")
    window = d / TARGET_FRACTION
    what = (f"median nucleus diameter {d:.0f} px in {found} image(s), window "
            f"{window:.0f} px against a shorter side of {side:.0f} px")
    if window < 0.9 * side:
        return 0.0, window / side, f"fields: {what}; a fixed window around the nucleus"
    return None, 0.0, f"cell crops: {what}; used whole"


def input_size(dataset: Sequence, image_size: int, resize: int, crop: float | None,
               crop_min: float, native: bool) -> tuple[int, int]:
    """The network input side and the resize before its centre crop, for one dataset.

    With ``native=False`` the profile's sizes are used as they are (the paper
    resizes every image to 232 and crops 224). With ``native=True``,
    ``image_size`` is a ceiling: the input side is the images' own side (the
    shorter side of the first image, or of the smallest crop window around
    the nucleus, ``crop_min`` of it, when the dataset is cropped) when that is
    smaller, so that no image is upsampled; ``resize`` keeps its ratio to the
    side. The ``cpu`` profile uses this rule with a ceiling of 112 px: it is
    stated before any result, not chosen on one.

    Parameters
    ----------
    dataset : Dataset
        Its first sample's image is read for the native side.
    image_size, resize : int
        The profile's sizes.
    crop : float or None
    crop_min : float
        The crop, as in :class:`InputSpec`.
    native : bool

    Returns
    -------
    tuple of int
        ``(image_size, resize)``.

    Examples
    --------
    >>> import numpy as np
    >>> from leukolib.data.sample import Sample
    >>> cells = [Sample(np.zeros((120, 120, 3), np.uint8), None, None, 0, "a")]
    >>> input_size(cells, 112, 116, None, 0.0, native=True)
    (112, 116)
    >>> fields = [Sample(np.zeros((128, 128, 3), np.uint8), None, None, 0, "b")]
    >>> input_size(fields, 112, 116, 0.25, 0.375, native=True)
    (48, 50)
    """
    if not native or len(dataset) == 0:
        return int(image_size), int(resize)
    h, w = dataset[0].image.shape[:2]
    side = min(h, w) * (crop_min if crop is not None and crop_min > 0 else 1.0)
    size = int(min(image_size, max(8, round(side))))
    return size, max(size, round(size * resize / image_size))


@dataclass(frozen=True)
class InputSpec:
    """How images become network inputs.

    Attributes
    ----------
    input : {"segmented", "raw"}
    image_size : int
        Side of the network input (224 in the paper).
    resize : int
        The shorter side before the centre crop (232 in the paper).
    crop : float or None
        Margin of the crop around the nucleus, as a fraction of the box side
        (``None``: no crop, the whole image).
    color : {"rgb", "gray"}
    crop_min : float
        Smallest side of the crop, as a fraction of the image's shorter side.

    Examples
    --------
    >>> InputSpec("segmented", 224, 232).needs_mask, InputSpec("raw", 224, 232).needs_mask
    (True, False)
    """

    input: str
    image_size: int
    resize: int
    crop: float | None = None
    color: str = "rgb"
    crop_min: float = 0.0

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"unknown input {self.input!r}; choose one of {', '.join(INPUTS)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown color {self.color!r}; choose one of {', '.join(COLORS)}")
        if not 8 <= int(self.image_size) <= int(self.resize):
            raise ValueError(f"need 8 <= image_size <= resize, got {self.image_size}, "
                             f"{self.resize}")
        if self.crop is not None and not 0 <= float(self.crop) <= 4:
            raise ValueError(f"the crop margin must be in [0, 4], got {self.crop}")
        if not 0 <= float(self.crop_min) <= 1:
            raise ValueError(f"crop_min must be in [0, 1], got {self.crop_min}")

    @property
    def needs_mask(self) -> bool:
        """Whether a nucleus mask is needed (segmented input, or a crop around the nucleus)."""
        return self.input == "segmented" or self.crop is not None

    def to_dict(self) -> dict[str, object]:
        """The fields as a dict (for run records)."""
        return asdict(self)


@dataclass
class View:
    """One image as the network sees it.

    Attributes
    ----------
    image : ndarray of uint8, (S, S, 3)
        Before normalisation.
    mask : ndarray of bool, (S, S), or None
        The nucleus mask at input resolution (``None`` without a mask).
    warp : callable
        ``warp(m)`` maps any ``(H, W)`` mask of the original image through the
        same crop, resize and centre crop to an ``(S, S)`` bool mask.
    box : tuple of int
        The crop ``(top, bottom, left, right)`` in original pixels (may reach
        outside the image, where it was padded).
    """

    image: np.ndarray
    mask: np.ndarray | None
    warp: Callable[[np.ndarray], np.ndarray]
    box: tuple[int, int, int, int]


def crop_box(mask: np.ndarray, margin: float, min_side: int = 0) -> tuple[int, int, int, int]:
    """The square ``(top, bottom, left, right)`` around a mask's bounding box, with a margin.

    The square's side is the box's longer side times ``1 + 2 * margin``, at
    least ``min_side``; it is centred on the box and moved inside the image
    where it fits. An empty mask gives the whole image.

    Examples
    --------
    >>> m = np.zeros((100, 200), bool); m[40:60, 10:30] = True
    >>> crop_box(m, 0.5)  # a 40 px square, moved right to stay inside
    (30, 70, 0, 40)
    """
    h, w = mask.shape
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return 0, h, 0, w
    side = int(np.ceil(max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) * (1 + 2 * margin)))
    side = max(side, int(min_side))
    box = []
    for lo, hi, n in ((rows[0], rows[-1] + 1, h), (cols[0], cols[-1] + 1, w)):
        start = int(np.floor((lo + hi - side) / 2))
        if side <= n:
            start = min(max(start, 0), n - side)
        box += [start, start + side]
    return box[0], box[1], box[2], box[3]


def _cut(a: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``a[top:bottom, left:right]``, zero-padded where the box leaves the array."""
    t, b, left, r = box
    h, w = a.shape[:2]
    out = np.zeros((b - t, r - left, *a.shape[2:]), a.dtype)
    ys, xs = slice(max(t, 0), min(b, h)), slice(max(left, 0), min(r, w))
    out[ys.start - t : ys.stop - t, xs.start - left : xs.stop - left] = a[ys, xs]
    return out


def _resize_crop(a: np.ndarray, resize: int, size: int, interpolation: int | None) -> np.ndarray:
    """Shorter side to ``resize``, then the centre ``size`` square."""
    h, w = a.shape[:2]
    scale = resize / min(h, w)
    nh, nw = max(resize, round(h * scale)), max(resize, round(w * scale))
    if interpolation is None:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    if (nh, nw) != (h, w):
        a = cv2.resize(a, (nw, nh), interpolation=interpolation)
    top, left = (nh - size) // 2, (nw - size) // 2
    return a[top : top + size, left : left + size]


def network_view(image: np.ndarray, mask: np.ndarray | None, spec: InputSpec) -> View:
    """The network's view of one image (crop, segment, colour, resize and centre crop).

    Parameters
    ----------
    image : ndarray of uint8, (H, W, 3)
    mask : ndarray of bool, (H, W), or None
        The nucleus mask; required when ``spec.needs_mask``.
    spec : InputSpec

    Returns
    -------
    View

    Examples
    --------
    >>> img = np.full((40, 60, 3), 200, np.uint8)
    >>> m = np.zeros((40, 60), bool); m[10:20, 10:20] = True
    >>> v = network_view(img, m, InputSpec("segmented", 16, 16))
    >>> v.image.shape, int(v.image[0, 0, 0]), int(v.image[6, 2, 0]), int(v.mask.sum()) > 0
    ((16, 16, 3), 0, 200, True)
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} "
                         f"{image.shape}")
    if mask is None and spec.needs_mask:
        raise ValueError(f"a {spec.input} input{' with a crop' if spec.crop is not None else ''} "
                         "needs a nucleus mask")
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {mask.shape} and image {image.shape[:2]} differ in size")
    h, w = image.shape[:2]
    box = (0, h, 0, w) if spec.crop is None else crop_box(
        mask, float(spec.crop), int(round(spec.crop_min * min(h, w))))
    img = _cut(image, box)
    m = None if mask is None else _cut(mask, box)
    if spec.input == "segmented":
        img = img * m[..., None]
    if spec.color == "gray":
        img = np.repeat(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    size, resize = int(spec.image_size), int(spec.resize)

    def warp(other: np.ndarray) -> np.ndarray:
        other = np.asarray(other, np.float32)
        if other.shape != (h, w):
            raise ValueError(f"warp: expected an ({h}, {w}) mask, got {other.shape}")
        return _resize_crop(_cut(other, box), resize, size, cv2.INTER_LINEAR) >= 0.5

    view = np.ascontiguousarray(_resize_crop(img, resize, size, None))
    return View(view, None if m is None else warp(mask), warp, box)


def to_tensor(views: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """``uint8`` views ``(N, S, S, 3)`` -> ImageNet-normalised ``float32`` ``(N, 3, S, S)``.

    Examples
    --------
    >>> x = to_tensor(np.zeros((2, 8, 8, 3), np.uint8))
    >>> tuple(x.shape), round(float(x[0, 0, 0, 0]), 3)
    ((2, 3, 8, 8), -2.118)
    """
    a = torch.from_numpy(np.ascontiguousarray(np.stack(list(views)) if isinstance(views, list)
                                              else views))
    return normalise(a)


_STATS: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}


def normalise(batch: torch.Tensor) -> torch.Tensor:
    """A ``uint8`` batch ``(N, S, S, 3)`` -> ImageNet-normalised ``float32`` ``(N, 3, S, S)``.

    On whatever device the batch is: DataLoader workers hand over ``uint8``
    images (a quarter of the bytes to pin and copy) and the GPU normalises
    them. The arithmetic is :func:`to_tensor`'s, element by element, so the
    result is the same bit for bit; it keeps the NHWC memory layout of the
    input (channels-last strides).

    Examples
    --------
    >>> a = np.zeros((2, 8, 8, 3), np.uint8)
    >>> torch.equal(normalise(torch.from_numpy(a)), to_tensor(a))
    True
    """
    key = str(batch.device)
    if key not in _STATS:  # made once per device: no host-to-device copy at every batch
        _STATS[key] = (torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 3, 1, 1),
                       torch.tensor(IMAGENET_STD, device=batch.device).view(1, 3, 1, 1))
    mean, std = _STATS[key]
    x = batch.permute(0, 3, 1, 2).float().div_(255.0)
    return (x - mean) / std
