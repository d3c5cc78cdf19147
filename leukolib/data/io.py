"""Reading images and masks from disk into leukolib's conventions.

Every image becomes an RGB ``uint8`` array of shape ``(H, W, 3)`` by these
rules, whatever the file kind (BMP, PNG, JPEG, TIFF):

* gray (1 channel) is replicated to the three channels;
* an alpha channel (RGBA, LA, palette with transparency) is composited over
  white, the colour of an empty smear background;
* palette images are expanded through their palette;
* CMYK and YCbCr JPEGs are converted to RGB by Pillow;
* 16-bit (and other integer) data are scaled linearly from the full range of
  their type to 0..255 (``value * 255 / 65535`` for 16-bit, rounded);
* floating-point data are taken as 0..1 and scaled to 0..255 (clipped).

Masks are label images: every pixel value is one of the dataset's known
levels (e.g. 0, 128, 255). A few stray values (under 1 % of the pixels) are
mapped to the nearest level, counted and reported; more is an error. For
datasets stored lossy every pixel is mapped to the nearest level (and
counted). Nothing here ever writes a file.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from leukolib.errors import ImageReadError, LossyMaskWarning, MaskError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_STRAY",
    "LabelMask",
    "is_image_file",
    "read_image",
    "read_mask",
    "to_rgb_uint8",
]

#: Largest share of off-level pixels repaired (mapped to the nearest level) in a mask.
MAX_STRAY = 0.01

#: File name suffixes (lower case) that leukolib reads as images.
IMAGE_SUFFIXES: tuple[str, ...] = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def is_image_file(path: str | Path) -> bool:
    """Return True when ``path`` has an image suffix leukolib reads."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def to_rgb_uint8(array: np.ndarray, *, source: str = "array") -> np.ndarray:
    """Convert an image array to RGB ``uint8`` by the module's rules.

    Parameters
    ----------
    array : ndarray
        Shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` (gray + alpha),
        ``(H, W, 3)`` or ``(H, W, 4)`` (RGBA); any integer, bool or float dtype.
    source : str
        Name used in error messages (usually the file path).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Examples
    --------
    >>> import numpy as np
    >>> to_rgb_uint8(np.array([[0, 65535]], dtype=np.uint16))[0, 1]
    array([255, 255, 255], dtype=uint8)
    >>> to_rgb_uint8(np.zeros((1, 1, 4), np.uint8))[0, 0]  # transparent -> white
    array([255, 255, 255], dtype=uint8)
    """
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (2, 3, 4)):
        raise ImageReadError(f"{source}: unsupported image shape {a.shape}")
    if a.size == 0:
        raise ImageReadError(f"{source}: the image is empty (shape {a.shape})")
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[-1] == 3:
        return np.ascontiguousarray(a)  # the common case: nothing to convert
    if a.dtype == np.uint8 and a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=-1)
    f = _to_unit_float(a, source)
    if f.ndim == 2:
        f = np.repeat(f[..., None], 3, axis=-1)
    elif f.shape[-1] == 2:
        f = np.concatenate([np.repeat(f[..., :1], 3, axis=-1), f[..., 1:]], axis=-1)
    if f.shape[-1] == 4:
        alpha = f[..., 3:]
        f = f[..., :3] * alpha + (1.0 - alpha)  # composite over white
    return np.clip(np.rint(f * 255.0), 0, 255).astype(np.uint8)


def _to_unit_float(a: np.ndarray, source: str) -> np.ndarray:
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        if info.min < 0:
            # Signed data: only the non-negative half carries intensity.
            return np.clip(a, 0, None).astype(np.float64) / info.max
        return a.astype(np.float64) / info.max
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ImageReadError(f"{source}: the image holds NaN or infinite values")
        return np.clip(a.astype(np.float64), 0.0, 1.0)
    raise ImageReadError(f"{source}: unsupported pixel type {a.dtype}")


def _check_file(path: Path, kind: str, error: type[Exception]) -> None:
    if not path.exists():
        raise error(f"{path}: {kind} file not found")
    if not path.is_file():
        raise error(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise error(f"{path}: the {kind} file is empty (0 bytes)")


def _read_array(path: Path, kind: str, error: type[Exception]) -> np.ndarray:
    """Decode a file into an array, keeping its bit depth; palettes expanded."""
    _check_file(path, kind, error)
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile

            return np.asarray(tifffile.imread(path))
        except Exception:  # noqa: BLE001 - fall back to Pillow for odd TIFFs
            pass
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                if im.mode == "P":
                    im = im.convert("RGBA" if "transparency" in im.info else "RGB")
                elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    im = im.convert("RGB")
                elif im.mode == "PA":
                    im = im.convert("RGBA")
                elif im.mode == "1":
                    im = im.convert("L")
                return np.asarray(im)
    except UnidentifiedImageError as exc:
        raise error(f"{path}: not a readable image ({exc})") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise error(f"{path}: cannot decode the {kind}, truncated or corrupt ({exc})") from exc


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB ``uint8``.

    Parameters
    ----------
    path : str or Path
        A BMP, PNG, JPEG or TIFF file.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Raises
    ------
    ImageReadError
        If the file is missing, empty, truncated, corrupt or of an unsupported
        kind. The message names the file.
    """
    path = Path(path)
    return to_rgb_uint8(_read_array(path, "image", ImageReadError), source=str(path))


@dataclass(frozen=True)
class LabelMask(Mapping[str, np.ndarray]):
    """The regions of a label mask, and how many pixels had to be repaired.

    Behaves as a read-only mapping of region name to boolean mask.

    Attributes
    ----------
    regions : dict of str to ndarray of bool
        One mask per level name.
    repaired : int
        Pixels whose value was not one of the levels and were mapped to the
        nearest level (0 for a clean mask).
    """

    regions: dict[str, np.ndarray]
    repaired: int = 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.regions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.regions)

    def __len__(self) -> int:
        return len(self.regions)


def read_mask(
    path: str | Path,
    levels: Mapping[str, int],
    *,
    background: int = 0,
    shape: tuple[int, int] | None = None,
    lossy: bool = False,
    max_stray: float = MAX_STRAY,
) -> LabelMask:
    """Read a label mask and split it into one boolean mask per level.

    Masks of public datasets are not always clean: a few stray grey pixels
    (a lossy save, an antialiased brush) sit between the levels. They are
    mapped to the **nearest level** and counted when they are few (at most
    ``max_stray`` of the pixels, 1 % by default), with a
    :class:`~leukolib.errors.LossyMaskWarning` naming the file; more than that
    means the file is not a mask of these levels, and raises
    :class:`~leukolib.errors.MaskError`. A dataset known to store its masks
    lossily (``lossy=True``) maps every pixel to the nearest level, counts
    the repaired pixels, and does not warn.

    Parameters
    ----------
    path : str or Path
        The mask file (gray; an RGB mask is reduced to gray by its mean).
    levels : mapping of str to int
        Region name to pixel value, e.g. ``{"nucleus": 255, "cytoplasm": 128}``.
    background : int
        Pixel value of the background.
    shape : (int, int), optional
        Expected ``(H, W)``; a mask of another size raises :class:`MaskError`.
    lossy : bool
        The dataset's masks are known to be stored with lossy compression.
    max_stray : float
        Largest share of off-level pixels repaired in a mask that is not
        known to be lossy.

    Returns
    -------
    LabelMask
        A mapping of region name to boolean mask, with ``repaired``.

    Examples
    --------
    >>> import tempfile, warnings
    >>> from PIL import Image
    >>> m = np.zeros((20, 20), np.uint8); m[5:15, 5:15] = 255; m[0, 0] = 7  # one stray pixel
    >>> path = tempfile.mkdtemp() + "/m.png"; Image.fromarray(m).save(path)
    >>> with warnings.catch_warnings(record=True):
    ...     out = read_mask(path, {"nucleus": 255})
    >>> int(out["nucleus"].sum()), out.repaired
    (100, 1)
    """
    path = Path(path)
    values = [int(background), *(int(v) for v in levels.values())]
    if len(set(values)) != len(values) or not all(0 <= v <= 255 for v in values):
        raise ValueError(
            f"mask levels must be distinct 8-bit values, different from the background "
            f"{background}: got {dict(levels)}"
        )
    a = _read_array(path, "mask", MaskError)
    if a.ndim == 3:
        if a.shape[-1] in (2, 4):  # drop alpha
            a = a[..., :-1]
        a = a.mean(axis=-1, dtype=np.float32)
    if a.dtype != np.uint8 and a.size and (a.max() > 255 or a.min() < 0):
        raise MaskError(f"{path}: {a.dtype} mask with values outside 0-255; expected 8-bit levels")
    if shape is not None and tuple(a.shape[:2]) != tuple(shape):
        raise MaskError(
            f"{path}: mask is {a.shape[1]}x{a.shape[0]} (WxH) but its image is "
            f"{shape[1]}x{shape[0]}"
        )
    level_values = np.array(values, dtype=np.int64)
    a8 = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    off = np.ones(256, bool)
    off[level_values] = False
    counts = np.bincount(a8.ravel(), minlength=256)
    if a.dtype == np.uint8:
        stray = int(counts[off].sum())
    else:  # e.g. the mean of an RGB mask: a value between levels is stray even if it rounds
        stray = int(a.size - np.count_nonzero(np.isin(a, level_values)))
    if stray and not lossy:
        share = stray / max(a8.size, 1)
        expected = ", ".join(str(int(v)) for v in level_values)
        if share > max_stray:
            shown = ", ".join(str(v) for v in np.flatnonzero(counts * off)[:5])
            raise MaskError(
                f"{path}: unknown mask level(s) {shown} in {100 * share:.1f} % of the pixels "
                f"(more than the {100 * max_stray:g} % a lossy save explains); expected {expected}"
            )
        warnings.warn(
            f"{path}: {stray} stray pixel(s) ({100 * share:.2f} %) between the levels {expected} "
            "were mapped to the nearest level",
            LossyMaskWarning,
            stacklevel=2,
        )
    # nearest known level of every 8-bit value, applied as a lookup table
    lut = np.abs(np.arange(256)[:, None] - level_values[None, :]).argmin(axis=1).astype(np.uint8)
    idx = lut[a8]
    return LabelMask({name: idx == i + 1 for i, name in enumerate(levels)}, stray)
