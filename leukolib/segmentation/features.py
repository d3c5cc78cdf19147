"""Colour features of a stained smear: steps 2-9 of the paper's Algorithm 1.

White-blood-cell nuclei stained with Giemsa/Wright are the most saturated and
most magenta-violet objects of a smear. These functions compute that feature
and threshold it: gray-world colour constancy, the CMYK magenta and HSV
saturation channels, their Hadamard product, an edge-preserving bilateral
filter and Otsu's threshold. :mod:`leukolib.segmentation.handcrafted` chains
them.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "bilateral",
    "cmyk_magenta",
    "color_constancy",
    "hadamard_product",
    "hsv_saturation",
    "max_min_green",
    "otsu_threshold",
]


def color_constancy(image: np.ndarray) -> np.ndarray:
    """Gray-world colour constancy (step 2).

    Each channel is multiplied by ``gray / mean(channel)``, where ``gray`` is
    the mean of the three channel means, so that the three channel means
    become equal; the result is clipped to [0, 255]. A channel whose mean is 0
    is left at 0.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image in 0..255 (any numeric dtype).

    Returns
    -------
    ndarray of float32, shape (H, W, 3)
        The corrected image in [0, 255].

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[[100, 50, 0], [100, 50, 60]]], np.uint8)  # means 100, 50, 30
    >>> color_constancy(img)[0].tolist()  # gray = 60: gains 0.6, 1.2, 2.0
    [[60.0, 60.0, 0.0], [60.0, 60.0, 120.0]]
    """
    img = np.ascontiguousarray(image)
    if img.dtype not in (np.uint8, np.float32):
        img = img.astype(np.float32)
    means = cv2.mean(img)[:3]  # float64 sums, much faster than numpy's strided mean
    gray = sum(means) / 3.0
    gains = tuple(gray / m if m > 0 else 0.0 for m in means) + (0.0,)
    out = cv2.multiply(img, gains, dtype=cv2.CV_32F)
    np.clip(out, 0.0, 255.0, out=out)
    return out


def max_min_green(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The channel maximum, minimum and green channel of an RGB image, as float32."""
    r, g, b = cv2.split(np.ascontiguousarray(image, dtype=np.float32))
    mx = cv2.max(cv2.max(r, g), b)
    mn = cv2.min(cv2.min(r, g), b)
    return mx, mn, g


def cmyk_magenta(image: np.ndarray) -> np.ndarray:
    """Magenta channel of the RGB to CMYK conversion (steps 3-4).

    With ``r, g, b`` in [0, 1]: ``K = 1 - max(r, g, b)`` and
    ``M = (1 - g - K) / (1 - K)``, i.e. ``(max - g) / max``; ``M = 0`` where
    ``K = 1`` (black).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image in 0..255.

    Returns
    -------
    ndarray of float32, shape (H, W)
        M in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.array([[[255, 0, 255], [255, 255, 255], [0, 0, 0], [200, 100, 50]]], np.uint8)
    >>> cmyk_magenta(rgb).round(3).tolist()  # magenta, white, black, brown
    [[1.0, 0.0, 0.0, 0.5]]
    """
    mx, _, g = max_min_green(image)
    # The numerator is 0 wherever max is 0, so a tiny floor gives M = 0 there.
    return (mx - g) / np.maximum(mx, np.float32(1e-6))


def hsv_saturation(image: np.ndarray) -> np.ndarray:
    """Saturation channel of the RGB to HSV conversion (steps 5-6).

    ``S = (max - min) / max`` over the three channels, 0 where ``max = 0``.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3)
        RGB image in 0..255.

    Returns
    -------
    ndarray of float32, shape (H, W)
        S in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.array([[[255, 0, 255], [128, 128, 128], [0, 0, 0], [200, 100, 50]]], np.uint8)
    >>> hsv_saturation(rgb).round(3).tolist()
    [[1.0, 0.0, 0.0, 0.75]]
    """
    mx, mn, _ = max_min_green(image)
    return (mx - mn) / np.maximum(mx, np.float32(1e-6))


def hadamard_product(magenta: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """Element-wise (Hadamard) product M * S (step 7).

    Parameters
    ----------
    magenta, saturation : ndarray of float, shape (H, W)
        Both in [0, 1].

    Returns
    -------
    ndarray of float32, shape (H, W)
        In [0, 1]: high only where a pixel is both magenta and saturated.

    Examples
    --------
    >>> import numpy as np
    >>> hadamard_product(np.array([[1.0, 0.5]]), np.array([[0.5, 0.5]])).tolist()
    [[0.5, 0.25]]
    """
    return np.multiply(magenta, saturation, dtype=np.float32)


def bilateral(
    feature: np.ndarray, diameter: int = 9, sigma_color: float = 50.0, sigma_space: float = 50.0
) -> np.ndarray:
    """Edge-preserving bilateral filter of a [0, 1] feature map (step 8).

    The map is scaled to 0..255 and rounded to 8 bits before filtering:
    OpenCV's ``sigma_color`` is in the units of the image and the paper's 50
    reads as 8-bit grey levels (see :class:`HandcraftedParams`). The 8-bit
    filter is twice as fast as the float32 one, and the rounding costs nothing
    since Otsu's threshold that follows works on a 256-bin histogram anyway.

    Parameters
    ----------
    feature : ndarray of float, shape (H, W)
        Feature map in [0, 1] (the M * S product).
    diameter : int
        Pixel neighbourhood diameter.
    sigma_color : float
        Range sigma, in 0..255 grey levels.
    sigma_space : float
        Spatial sigma, in pixels.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        The filtered map, in 0..255.

    Examples
    --------
    >>> import numpy as np
    >>> step = np.zeros((9, 9), np.float32); step[:, 5:] = 1.0
    >>> out = bilateral(step)
    >>> int(out[:, :5].max()) < 10, int(out[:, 5:].min()) > 245  # the edge is kept
    (True, True)
    """
    scaled = cv2.convertScaleAbs(np.asarray(feature, dtype=np.float32), alpha=255.0)
    return cv2.bilateralFilter(scaled, int(diameter), float(sigma_color), float(sigma_space))


def otsu_threshold(feature: np.ndarray) -> tuple[np.ndarray, float]:
    """Otsu's threshold of a 0..255 map (step 9).

    The map is rounded to 8 bits and thresholded with OpenCV's Otsu (256-bin
    histogram); the foreground is ``value > threshold``. A constant map has no
    two classes to separate: it gives an empty mask (and its value as the
    threshold).

    Parameters
    ----------
    feature : ndarray, shape (H, W)
        Values in 0..255.

    Returns
    -------
    mask : ndarray of bool, shape (H, W)
    threshold : float

    Examples
    --------
    >>> import numpy as np
    >>> toy = np.full((4, 4), 20.0); toy[:2] = 200.0
    >>> mask, t = otsu_threshold(toy)
    >>> int(mask.sum()), 20 <= t < 200
    (8, True)
    """
    u8 = _to_u8(feature)
    lo, hi, _, _ = cv2.minMaxLoc(u8)
    if lo == hi:
        return np.zeros(u8.shape, bool), float(lo)
    t, _ = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return u8 > t, float(t)


def _to_u8(feature: np.ndarray) -> np.ndarray:
    a = np.asarray(feature)
    if a.dtype == np.uint8:
        return a
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _as_u8(mask: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
