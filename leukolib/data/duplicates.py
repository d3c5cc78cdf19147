"""Near-duplicate images: the same cell or field saved twice, shifted or exposed differently.

:mod:`leukolib.data.fingerprint` groups byte-identical images only. The shared
sets also hold the same picture saved twice with a shift of a few pixels or
another exposure (ALL-IDB2 ``Im134_0`` and ``Im245_0``, JTSC ``157`` and
``158``), and SMC_IDB (BloodSeg) holds overlapping fields of one smear, the
same white cell shifted by up to half the field. A split that puts two of
them on both sides tests on a training image.

The perceptual score
--------------------
Each image becomes a small **feature thumbnail** (:func:`thumbnail`): its
green channel (the stain's strongest contrast; the only channel of a gray
image) resized to ``size x size``, high-passed (minus its Gaussian blur) and
divided by its local contrast. The high pass removes exposure offsets and
the slow shading of the field; the contrast normalisation removes gains and
keeps the faint texture (chromatin, background red cells) from being drowned
by the strong outline of the nucleus, an outline that any two round cells
share. The score of two images (:func:`score_matrix`) is the **normalised
cross-correlation** of their thumbnails over the part where they overlap,
maximised over every shift up to ``max_shift`` of the side (computed for all
shifts at once by FFT). It is 1 for identical pictures, invariant to gain and
offset, and survives a shift, a resampling or a JPEG recompression.

Thumbnails are square, so crops of slightly different sizes still match. A
mirrored or rotated copy does not: scoring every pair against the flips and
90-degree rotations of the other image found none in the shared sets
(``benchmarks/duplicates_report.py --transforms``: the highest, 0.66, is a
pair of different round cells of JTSC), so none are searched.

The threshold and the rule that chose it
----------------------------------------
Two images are near duplicates when their score is at least
``DEFAULT_RULE.threshold`` (0.69), or when their pixels are identical
(:func:`~leukolib.data.fingerprint.image_fingerprint`). The threshold is the
**midpoint of the widest gap between consecutive scores among the 100 highest
of all pairs of the three shared sets** (JTSC, ALL-IDB2, BloodSeg, pooled:
145 681 pairs), rounded to two decimals: the gap runs from 0.59 (JTSC ``291``
and ``292``, two cells) to 0.79 (JTSC ``157`` and ``158``, one cell). Every
pair above the gap was checked by eye to show one cell (or overlapping
fields), and the closest pairs below it to show different cells. The
features (green channel, the two sigmas, the size) were picked among a few
variants on the same sets, for the widest gap: a new dataset is the fair
check, and ``leukolib duplicates DIR --closest K`` shows a user where their
pairs fall; ``benchmarks/duplicates_report.py`` recomputes
the gap and writes the pairs with their scores to
``leukolib/reference/duplicates.json``. Chapter 1 draws the weakest matches
beside the strongest non-matches (:func:`plot_duplicate_pairs`).

Examples
--------
>>> import numpy as np
>>> from scipy.ndimage import gaussian_filter
>>> rng = np.random.default_rng(0)
>>> field = gaussian_filter(rng.random((150, 150)), 2)  # a textured smear
>>> a = field[:120, :120]                          # a crop
>>> b = 0.6 * field[3:123, 2:122] + 0.2            # shifted, darker
>>> c = field[30:150, 30:150]                      # overlaps a: the same field
>>> d = gaussian_filter(rng.random((120, 120)), 2)  # another smear
>>> near_duplicate_groups([a, b, c, d]).tolist()
[0, 0, 0, 1]
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from leukolib.data.fingerprint import duplicate_groups, image_fingerprint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_RULE",
    "DuplicatePair",
    "DuplicateRule",
    "THUMBNAILS",
    "groups_from_pairs",
    "grouping_record",
    "image_thumbnails",
    "load_thumbnails",
    "match_thumbnails",
    "matches_against",
    "near_duplicate_groups",
    "near_duplicate_pairs",
    "plot_duplicate_pairs",
    "save_thumbnails",
    "shipped_table",
    "score_matrix",
    "straddling",
    "thumbnail",
    "thumbnail_groups",
]

#: File name of a model run's training thumbnails (:func:`save_thumbnails`).
THUMBNAILS = "thumbnails.npz"

#: Pairs of thumbnails per FFT chunk: bounds the memory (about 40 kB a pair).
_CHUNK_PAIRS = 2048


@dataclass(frozen=True)
class DuplicateRule:
    """How two images are judged near duplicates (recorded with every grouping).

    Attributes
    ----------
    method : str
        Name of the score (only ``"ncc"``: the normalised cross-correlation
        of the feature thumbnails, described in the module docstring).
    size : int
        Side of the square thumbnail, in pixels.
    max_shift : float
        Largest shift searched, as a fraction of the side (0.5: the two
        images may overlap on a quarter of their area).
    highpass_sigma : float
        Gaussian blur subtracted from the thumbnail (thumbnail pixels).
    contrast_sigma : float
        Window of the local contrast normalisation (thumbnail pixels).
    threshold : float
        Lowest score of a near duplicate.

    Examples
    --------
    >>> DuplicateRule(threshold=0.8).to_dict()["threshold"]
    0.8
    """

    method: str = "ncc"
    size: int = 64
    max_shift: float = 0.5
    highpass_sigma: float = 2.0
    contrast_sigma: float = 4.0
    threshold: float = 0.69

    def __post_init__(self) -> None:
        if self.method != "ncc":
            raise ValueError(f"unknown duplicate method {self.method!r} (known: 'ncc')")
        if self.size < 8:
            raise ValueError(f"thumbnail size must be at least 8, got {self.size}")
        if not 0 <= self.max_shift < 1:
            raise ValueError(f"max_shift must be in [0, 1), got {self.max_shift}")
        if not (self.highpass_sigma > 0 and self.contrast_sigma > 0):
            raise ValueError("highpass_sigma and contrast_sigma must be positive")
        if not -1 <= self.threshold <= 1:
            raise ValueError(f"threshold must be in [-1, 1], got {self.threshold}")

    def to_dict(self) -> dict[str, Any]:
        """The rule's fields and one sentence saying what it does (for JSON records)."""
        return {**asdict(self), "description": (
            "images are one group when their pixels are identical (SHA-1 of the pixels) or "
            f"when the normalised cross-correlation of their {self.size}x{self.size} "
            f"thumbnails (green channel, minus a Gaussian blur of sigma {self.highpass_sigma}, "
            f"local contrast normalised over sigma {self.contrast_sigma}), maximised over "
            f"shifts up to {self.max_shift:g} of the side, is at least {self.threshold:g}; "
            "groups are the connected components of these links")}


#: The rule leukolib uses (threshold chosen on the shared sets: module docstring).
DEFAULT_RULE = DuplicateRule()


class DuplicatePair(NamedTuple):
    """Two images and their score.

    Attributes
    ----------
    i, j : int
        Indices of the images, ``i < j``.
    score : float
        Normalised cross-correlation of their thumbnails (1.0 when exact).
    shift : (float, float)
        Where the content of image ``i`` lies in image ``j``, as fractions
        of the height and width (down and right are positive).
    exact : bool
        The pixels are identical.
    """

    i: int
    j: int
    score: float
    shift: tuple[float, float]
    exact: bool


def thumbnail(image: np.ndarray, rule: DuplicateRule = DEFAULT_RULE) -> np.ndarray:
    """The feature thumbnail of an image that :func:`score_matrix` compares.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        Gray or colour (RGB order; only the green channel is used), any dtype.
    rule : DuplicateRule

    Returns
    -------
    ndarray of float32, shape (rule.size, rule.size)
        High-passed, contrast-normalised; all zeros for a flat image.

    Examples
    --------
    >>> import numpy as np
    >>> t = thumbnail(np.random.default_rng(0).random((50, 70, 3)))
    >>> t.shape, t.dtype
    ((64, 64), dtype('float32'))
    >>> float(np.abs(thumbnail(np.full((9, 9), 7))).max())
    0.0
    """
    import cv2

    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., 1] if a.shape[-1] >= 3 else a[..., 0]  # green: the stain's contrast
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"expected an image of shape (H, W) or (H, W, C), got {a.shape}")
    g = cv2.resize(a.astype(np.float32), (rule.size, rule.size), interpolation=cv2.INTER_AREA)
    high = g - cv2.GaussianBlur(g, (0, 0), rule.highpass_sigma)
    energy = cv2.GaussianBlur(high * high, (0, 0), rule.contrast_sigma)
    # The floor (a tenth of the mean energy) keeps flat background from being amplified.
    floor = 0.1 * float(energy.mean())
    if floor <= 0:
        return np.zeros_like(high)
    return (high / np.sqrt(energy + floor)).astype(np.float32)


def _overlap_sums(x: np.ndarray, m: int) -> np.ndarray:
    """Sum of each thumbnail over its part of the overlap, as the first of a pair.

    For a shift ``(dy, dx)`` (second image relative to the first) the first
    image overlaps on rows ``[max(0, -dy), T - max(0, dy))`` and likewise for
    columns. Returns ``(N, 2m+1, 2m+1)``, shifts from ``-m`` to ``m``.
    """
    n, t, _ = x.shape
    c = np.zeros((n, t + 1, t + 1))
    c[:, 1:, 1:] = x.cumsum(1, dtype=np.float64).cumsum(2)
    d = np.arange(-m, m + 1)
    lo, hi = np.maximum(0, -d), t - np.maximum(0, d)
    return (c[:, hi[:, None], hi] - c[:, lo[:, None], hi]
            - c[:, hi[:, None], lo] + c[:, lo[:, None], lo])


class _Side(NamedTuple):
    """What the FFT correlation needs of one stack of thumbnails, per shift ``(N, 2m+1, 2m+1)``."""

    spectra: np.ndarray  # rfft2, zero-padded to (p, p)
    sums: np.ndarray  # sum over the overlap, as the first image of a pair
    means: np.ndarray  # mean over the overlap, as the second image (shift reversed)
    inv_norm: np.ndarray  # 1 / norm of the deviations over the overlap (0 if flat)
    inv_norm_second: np.ndarray  # the same, as the second image


def _overlap_area(t: int, m: int) -> np.ndarray:
    left = t - np.abs(np.arange(-m, m + 1))
    return np.outer(left, left).astype(np.float64)


def _side(x: np.ndarray, m: int, p: int) -> _Side:
    import scipy.fft

    area = _overlap_area(x.shape[-1], m)
    s, q = _overlap_sums(x, m), _overlap_sums(x.astype(np.float64) ** 2, m)
    norm = np.sqrt(np.maximum(q - s * s / area, 0.0))
    inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 1e-6 * np.sqrt(area))
    # The second image's part of the overlap at a shift is the first's at minus that shift.
    f32 = np.float32
    return _Side(scipy.fft.rfft2(x, s=(p, p)), s.astype(f32), (s / area)[:, ::-1, ::-1].astype(f32),
                 inv.astype(f32), inv[:, ::-1, ::-1].astype(f32))


def _chunk_ncc(a: _Side, b: _Side, rows: slice, cols: slice, m: int) -> np.ndarray:
    """NCC of the ``rows x cols`` pairs at every shift: ``(rows, cols, (2m+1)**2)``."""
    import scipy.fft

    p = a.spectra.shape[-2]
    # corr[k] = sum_y A[y] B[y + k]: no wrap-around since p >= t + m.
    corr = scipy.fft.irfft2(np.conj(a.spectra[rows, None]) * b.spectra[None, cols], s=(p, p))
    idx = np.r_[p - m:p, 0:m + 1]  # shifts -m..m, in wrap-around order
    ncc = corr[:, :, idx[:, None], idx[None, :]]
    ncc -= a.sums[rows, None] * b.means[None, cols]
    ncc *= a.inv_norm[rows, None]
    ncc *= b.inv_norm_second[None, cols]
    return ncc.reshape(ncc.shape[0], ncc.shape[1], -1)


def score_matrix(
    thumbnails: np.ndarray,
    others: np.ndarray | None = None,
    *,
    max_shift: float = DEFAULT_RULE.max_shift,
    return_shifts: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Score of every pair of thumbnails: their NCC maximised over shifts.

    Parameters
    ----------
    thumbnails : ndarray, shape (N, T, T)
        Feature thumbnails (:func:`thumbnail`).
    others : ndarray, shape (M, T, T), optional
        Score ``thumbnails`` against these instead of against themselves.
    max_shift : float
        Largest shift searched, as a fraction of ``T``.
    return_shifts : bool
        Also return the best shift of every pair.

    Returns
    -------
    scores : ndarray of float32, shape (N, N) or (N, M)
        Symmetric when ``others`` is None; the diagonal holds 1 (0 for a
        flat thumbnail).
    shifts : ndarray of int, shape (N, N, 2) or (N, M, 2)
        Only with ``return_shifts``: the ``(dy, dx)`` in thumbnail pixels by
        which the content of the first image lies further down and right in
        the second.

    Notes
    -----
    Every pair costs one inverse FFT of a thumbnail padded by the shift:
    about 10 s for 400 images on one core; the time grows as ``N**2``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> big = rng.random((80, 80))
    >>> t = np.stack([thumbnail(big[:64, :64]), thumbnail(big[4:68, 2:66])])
    >>> s, d = score_matrix(t, return_shifts=True)
    >>> round(float(s[0, 1]), 2), d[0, 1].tolist()
    (1.0, [-4, -2])
    """
    import scipy.fft

    x = np.asarray(thumbnails, dtype=np.float32)
    y = x if others is None else np.asarray(others, dtype=np.float32)
    if x.ndim != 3 or y.ndim != 3 or x.shape[1:] != y.shape[1:] or x.shape[1] != x.shape[2]:
        raise ValueError(f"expected stacks of square thumbnails of one size, got {x.shape} "
                         f"and {y.shape}")
    t = x.shape[-1]
    m = min(int(round(max_shift * t)), t - 1)
    p = scipy.fft.next_fast_len(t + m, real=True)
    a = _side(x, m, p)
    b = a if others is None else _side(y, m, p)
    scores = np.zeros((len(x), len(y)), np.float32)
    best = np.zeros((len(x), len(y)), np.int32)
    step = max(1, _CHUNK_PAIRS // max(1, len(y)))
    for i0 in range(0, len(x), step):
        rows = slice(i0, min(len(x), i0 + step))
        cols = slice(i0 if others is None else 0, len(y))  # a symmetric matrix: upper part
        ncc = _chunk_ncc(a, b, rows, cols, m)
        best[rows, cols] = ncc.argmax(-1)
        scores[rows, cols] = np.take_along_axis(ncc, best[rows, cols, None], -1)[..., 0]
    dy, dx = np.divmod(best, 2 * m + 1)
    shifts = np.stack([dy - m, dx - m], axis=-1).astype(np.int16)
    if others is None:
        low = np.tril_indices(len(x), -1)
        scores[low] = scores.T[low]
        shifts[low] = -shifts.transpose(1, 0, 2)[low]
    return (scores, shifts) if return_shifts else scores


def match_thumbnails(
    thumbnails: np.ndarray,
    fingerprints: Sequence[str] | None = None,
    rule: DuplicateRule = DEFAULT_RULE,
    *,
    min_score: float | None = None,
) -> list[DuplicatePair]:
    """The pairs of thumbnails that score at least ``min_score``, or are identical images.

    Parameters
    ----------
    thumbnails : ndarray, shape (N, T, T)
        One per image (:func:`thumbnail` with ``rule``).
    fingerprints : sequence of str, optional
        One per image (:func:`~leukolib.data.fingerprint.image_fingerprint`):
        identical images are paired with score 1 whatever their thumbnails.
    rule : DuplicateRule
    min_score : float, optional
        Lowest score listed (default ``rule.threshold``); lower it to see the
        closest non-matching pairs too.

    Returns
    -------
    list of DuplicatePair
        Highest score first.
    """
    n = len(thumbnails)
    if fingerprints is not None and len(fingerprints) != n:
        raise ValueError("one fingerprint per thumbnail is needed")
    floor = rule.threshold if min_score is None else min_score
    if n < 2:
        return []
    scores, shifts = score_matrix(thumbnails, max_shift=rule.max_shift, return_shifts=True)
    exact = np.zeros((n, n), bool)
    if fingerprints is not None:
        labels = duplicate_groups(fingerprints)
        exact = labels[:, None] == labels[None, :]
    scores = np.where(exact, 1.0, scores)
    i, j = np.nonzero(np.triu((scores >= floor) | exact, 1))
    side = float(thumbnails.shape[-1])
    pairs = [DuplicatePair(int(a), int(b), round(float(scores[a, b]), 4),
                           (float(shifts[a, b, 0] / side), float(shifts[a, b, 1] / side)),
                           bool(exact[a, b]))
             for a, b in zip(i, j, strict=True)]
    return sorted(pairs, key=lambda q: (-q.score, q.i, q.j))


def near_duplicate_pairs(
    images: Iterable[np.ndarray],
    rule: DuplicateRule = DEFAULT_RULE,
    *,
    min_score: float | None = None,
) -> list[DuplicatePair]:
    """Scored pairs of near-duplicate images.

    Parameters
    ----------
    images : iterable of ndarray or of Sample
        Gray or RGB images of any sizes, or a :class:`~leukolib.data.Dataset`
        (read once: a generator is fine).
    rule : DuplicateRule
    min_score : float, optional
        Lowest score listed (default ``rule.threshold``); lower it to list
        the closest non-matching pairs as well.

    Returns
    -------
    list of DuplicatePair
        Identical images and pairs scoring at least ``min_score``, highest
        score first.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(2)
    >>> field, other = gaussian_filter(rng.random((100, 100)), 2), rng.random((90, 90))
    >>> a, b = field[:90, :90], 0.5 * field[2:92, 3:93] + 0.2  # shifted, other exposure
    >>> p = near_duplicate_pairs([a, gaussian_filter(other, 2), b])
    >>> [(q.i, q.j, q.exact) for q in p], p[0].score > 0.9
    ([(0, 2, False)], True)
    """
    thumbs, prints = _features(images, rule)
    return match_thumbnails(thumbs, prints, rule, min_score=min_score)


def groups_from_pairs(n: int, pairs: Iterable[DuplicatePair], threshold: float | None = None,
                      ) -> np.ndarray:
    """Group index of ``n`` images: the connected components of the pairs.

    Parameters
    ----------
    n : int
        Number of images.
    pairs : iterable of DuplicatePair
        Links between images.
    threshold : float, optional
        Link only exact pairs and pairs scoring at least this (default: every
        pair given).

    Returns
    -------
    ndarray of int
        Groups numbered in order of first appearance.

    Examples
    --------
    >>> pairs = [DuplicatePair(0, 2, 0.9, (0.0, 0.0), False),
    ...          DuplicatePair(2, 3, 0.5, (0.0, 0.0), False)]
    >>> groups_from_pairs(4, pairs).tolist(), groups_from_pairs(4, pairs, 0.7).tolist()
    ([0, 1, 0, 0], [0, 1, 0, 2])
    """
    parent = list(range(n))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for q in pairs:
        if threshold is None or q.exact or q.score >= threshold:
            parent[root(q.i)] = root(q.j)
    return duplicate_groups([str(root(k)) for k in range(n)])


def near_duplicate_groups(images: Iterable[np.ndarray], rule: DuplicateRule = DEFAULT_RULE,
                          ) -> np.ndarray:
    """Group index of every image: identical and near-duplicate images share one.

    Parameters
    ----------
    images : iterable of ndarray or of Sample
        Gray or RGB images of any sizes, or a :class:`~leukolib.data.Dataset` (read once).
    rule : DuplicateRule

    Returns
    -------
    ndarray of int
        Connected components of the near-duplicate pairs, numbered in order
        of first appearance (as :func:`~leukolib.data.fingerprint.duplicate_groups`).
    """
    return thumbnail_groups(*_features(images, rule), rule)


def thumbnail_groups(thumbnails: np.ndarray, fingerprints: Sequence[str],
                     rule: DuplicateRule = DEFAULT_RULE) -> np.ndarray:
    """:func:`near_duplicate_groups` of images whose thumbnails and fingerprints are at hand.

    Examples
    --------
    >>> import numpy as np
    >>> thumbnail_groups(np.zeros((2, 64, 64), np.float32), ["a", "a"]).tolist()
    [0, 0]
    """
    return groups_from_pairs(len(fingerprints), match_thumbnails(thumbnails, fingerprints, rule))


def image_thumbnails(images: Iterable[np.ndarray], rule: DuplicateRule = DEFAULT_RULE,
                     ) -> tuple[np.ndarray, list[str]]:
    """The feature thumbnails and the fingerprints of images, decoding each image once.

    Parameters
    ----------
    images : iterable of ndarray or of Sample
    rule : DuplicateRule

    Returns
    -------
    thumbnails : ndarray of float32, shape (N, rule.size, rule.size)
    fingerprints : list of str

    Examples
    --------
    >>> import numpy as np
    >>> t, p = image_thumbnails([np.zeros((9, 9)), np.ones((5, 5, 3))])
    >>> t.shape, len(p)
    ((2, 64, 64), 2)
    """
    return _features(images, rule)


def matches_against(
    thumbnails: np.ndarray,
    reference: np.ndarray,
    rule: DuplicateRule = DEFAULT_RULE,
) -> list[np.ndarray]:
    """For each thumbnail, the reference thumbnails it is a near duplicate of.

    The check that a model never saw an image (:meth:`leukolib.segmentation.UNetRun.folds_for`):
    the references are the thumbnails of its training images.

    Parameters
    ----------
    thumbnails : ndarray, shape (N, T, T)
    reference : ndarray, shape (M, T, T)
    rule : DuplicateRule

    Returns
    -------
    list of ndarray of int
        Indices into ``reference`` scoring at least ``rule.threshold``, one array per thumbnail.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> rng = np.random.default_rng(0)
    >>> f, g = gaussian_filter(rng.random((80, 80)), 2), gaussian_filter(rng.random((80, 80)), 2)
    >>> ref = np.stack([thumbnail(f[:64, :64]), thumbnail(g[:64, :64])])
    >>> [m.tolist() for m in matches_against(thumbnail(f[3:67, 2:66])[None], ref)]
    [[0]]
    """
    t = np.asarray(thumbnails, np.float32)
    r = np.asarray(reference, np.float32)
    if len(t) == 0 or len(r) == 0:
        return [np.zeros(0, np.int64) for _ in range(len(t))]
    scores = score_matrix(t, r, max_shift=rule.max_shift)
    return [np.flatnonzero(row >= rule.threshold) for row in scores]


def save_thumbnails(path: str | os.PathLike, ids: Sequence[str], thumbnails: np.ndarray,
                    rule: DuplicateRule = DEFAULT_RULE) -> None:
    """Keep a run's training thumbnails, so that later images are checked against them.

    Written atomically as ``.npz`` (float16, about 8 kB an image) with the ids
    and the rule; :func:`load_thumbnails` reads it back.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, ids=np.asarray([str(i) for i in ids]),
                            thumbnails=np.asarray(thumbnails, np.float16),
                            rule=json.dumps(rule.to_dict()))
    os.replace(tmp, path)


def load_thumbnails(path: str | os.PathLike) -> tuple[list[str], np.ndarray, DuplicateRule] | None:
    """``(ids, thumbnails, rule)`` written by :func:`save_thumbnails` (``None``: no file)."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        fields = json.loads(str(z["rule"]))
        fields.pop("description", None)
        return ([str(i) for i in z["ids"]], z["thumbnails"].astype(np.float32),
                DuplicateRule(**fields))


def shipped_table() -> Any:
    """The near duplicates found in the shared datasets (``leukolib/reference/duplicates.json``).

    Returns
    -------
    DataFrame or None
        One row per dataset: images, pairs scored, near-duplicate pairs (of
        which identical), the weakest match and the strongest non-match with
        their scores; ``None`` when the file is not shipped.
    """
    import pandas as pd

    from leukolib import reference

    if not reference.available("duplicates"):
        return None
    rows = {}
    for name, d in reference.load("duplicates")["results"]["datasets"].items():
        matched, missed = d["matched"], d["closest_non_matching"]
        weakest = min(matched, key=lambda m: m["score"]) if matched else None
        rows[name] = {
            "images": d["images"], "pairs scored": d["pairs_scored"],
            "near-duplicate pairs": len(matched),
            "of which identical": sum(bool(m["exact"]) for m in matched),
            "weakest match": f"{weakest['a']} / {weakest['b']} ({weakest['score']:.3f})"
            if weakest else "none",
            "strongest non-match": f"{missed[0]['a']} / {missed[0]['b']} ({missed[0]['score']:.3f})"
            if missed else "none"}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "dataset"
    return frame


def straddling(groups: Sequence[int] | np.ndarray, parts: Sequence[Sequence[int]],
               ) -> list[np.ndarray]:
    """The groups of images that fall on more than one side of a split (a leak).

    Parameters
    ----------
    groups : array_like of int
        Group of every image (:func:`near_duplicate_groups`).
    parts : sequence of sequences of int
        The split's sides, as indices (test and training-validation; or the
        folds' test parts; or one fold's training and validation parts).
        Images in no part are ignored.

    Returns
    -------
    list of ndarray of int
        The indices of each straddling group's images that lie in a part.

    Examples
    --------
    >>> straddling([0, 0, 1, 1, 2], [[0, 2, 3], [1, 4]])
    [array([0, 1])]
    """
    g = np.asarray(groups)
    side = np.full(len(g), -1)
    for k, part in enumerate(parts):
        side[np.asarray(part, dtype=np.int64)] = k
    out = []
    for label in np.unique(g):
        members = np.flatnonzero((g == label) & (side >= 0))
        if len(np.unique(side[members])) > 1:
            out.append(members)
    return out


def grouping_record(rule: DuplicateRule | None = DEFAULT_RULE, *, dataset_groups: bool = False,
                    caller_groups: bool = False) -> dict[str, Any]:
    """What a split kept together, for its JSON record.

    Parameters
    ----------
    rule : DuplicateRule or None
        The near-duplicate rule, ``None`` when only identical pixels were grouped.
    dataset_groups, caller_groups : bool
        Whether the dataset's own or the caller's groups were merged in.

    Returns
    -------
    dict
        ``by`` (the list of what grouped images: ``"identical pixels"``,
        ``"near duplicates"``, ``"dataset groups"``, ``"caller groups"``) and
        ``near_duplicate_rule`` (:meth:`DuplicateRule.to_dict`, or ``None``).

    Examples
    --------
    >>> grouping_record()["by"]
    ['identical pixels', 'near duplicates']
    """
    by = ["identical pixels"] + (["near duplicates"] if rule is not None else []) \
        + (["dataset groups"] if dataset_groups else []) \
        + (["caller groups"] if caller_groups else [])
    return {"by": by, "near_duplicate_rule": None if rule is None else rule.to_dict()}


def _features(images: Iterable[np.ndarray], rule: DuplicateRule,
              ) -> tuple[np.ndarray, list[str]]:
    """Thumbnails and fingerprints, decoding each image once."""
    thumbs, prints = [], []
    for item in images:
        image = np.asarray(getattr(item, "image", item))  # a Sample of a Dataset, or an array
        thumbs.append(thumbnail(image, rule))
        prints.append(image_fingerprint(image))
    if not thumbs:
        return np.zeros((0, rule.size, rule.size), np.float32), []
    return np.stack(thumbs), prints


def plot_duplicate_pairs(
    images: Sequence[Any],
    pairs: Sequence[DuplicatePair],
    threshold: float = DEFAULT_RULE.threshold,
    n: int = 4,
    ids: Sequence[str] | None = None,
    size: float = 1.9,
) -> Figure:
    """The weakest matched pairs beside the strongest non-matching pairs, scores in the titles.

    A reader judges the threshold from it: the left pairs (scores at least
    ``threshold``, weakest first) should show one cell, the right pairs (the
    highest scores below it) different cells.

    Parameters
    ----------
    images : sequence of ndarray or of Sample
        Indexed by the pairs' ``i`` and ``j`` (a :class:`~leukolib.data.Dataset` works).
    pairs : sequence of DuplicatePair
        Scored pairs on both sides of the threshold, e.g.
        ``near_duplicate_pairs(images, min_score=0.3)``.
    threshold : float
        The score that separates the two sides.
    n : int
        Pairs drawn on each side.
    ids : sequence of str, optional
        Image names for the titles (default: the samples' ``id``, else the index).
    size : float
        Inches per image.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> imgs = [np.full((8, 8), k, np.uint8) for k in range(4)]
    >>> pairs = [DuplicatePair(0, 1, 0.9, (0.0, 0.0), False),
    ...          DuplicatePair(2, 3, 0.4, (0.1, 0.0), False)]
    >>> fig = plot_duplicate_pairs(imgs, pairs, threshold=0.7, n=2)
    >>> len(fig.axes), fig.axes[1].get_title().split()
    (4, ['1', '0.900'])
    >>> import matplotlib.pyplot as plt; plt.close(fig)
    """
    import matplotlib.pyplot as plt

    matched = sorted((q for q in pairs if q.exact or q.score >= threshold),
                     key=lambda q: (q.score, q.i, q.j))[:n]
    missed = sorted((q for q in pairs if not q.exact and q.score < threshold),
                    key=lambda q: (-q.score, q.i, q.j))[:n]
    rows = max(1, len(matched), len(missed))
    fig, axes = plt.subplots(rows, 4, figsize=(4 * size, rows * size + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for col, side in ((0, matched), (2, missed)):
        for r, q in enumerate(side):
            for k, idx in enumerate((q.i, q.j)):
                image, name = _image_and_name(images[idx], idx, ids)
                axes[r, col + k].imshow(image, cmap="gray")
                title = f"{name}\n{_score_text(q)}" if k else name
                axes[r, col + k].set_title(title, fontsize=8)
    fig.suptitle(f"left: matched (score ≥ {threshold:g}, weakest first); "
                 f"right: closest non-matching", fontsize=9)
    fig.tight_layout()
    return fig


def _score_text(q: DuplicatePair) -> str:
    """``0.816`` or ``exact``, with the shift when it is large enough to see."""
    if q.exact:
        return "exact"
    dy, dx = q.shift
    return f"{q.score:.3f}" + (f", shift {dy:+.0%} {dx:+.0%}" if max(abs(dy), abs(dx)) >= 0.05
                               else "")


def _image_and_name(item: Any, index: int, ids: Sequence[str] | None) -> tuple[np.ndarray, str]:
    image = getattr(item, "image", item)
    name = ids[index] if ids is not None else getattr(item, "id", str(index))
    return np.asarray(image), str(name)
