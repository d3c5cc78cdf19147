"""How much of a map lies on the nucleus: energy share and pointing game.

A map that "sits on the nucleus" in a picture may still spread most of its
mass elsewhere. Two numbers make the picture a measurement, on images whose
nucleus (and cytoplasm) masks are known:

* the **energy share**: the map's mass inside a mask over its total mass,
  ``sum(cam * mask) / sum(cam)``, in [0, 1]. A map spread evenly over the
  image scores the mask's **area fraction**, the chance level reported
  beside it;
* the **pointing game** (Zhang et al. 2018): whether the map's maximum lies
  inside the mask (a plateau of equal maxima counts when most of it is
  inside).

Both are computed on the maps as shown (rectified and min-max scaled, at the
network's input resolution) against the masks warped to that resolution.
An all-zero map (no positive evidence) has no share: NaN, counted apart.

A map is computed on the target layer's coarse grid (2 x 2 cells for a
64 px input, 7 x 7 at 224 px) and then resized, so it cannot be sharper than
that grid. Two yardsticks come with a resolution:

* :func:`grid_best_share` (column ``best_nucleus``): the highest energy share
  on the nucleus that **any** map of that grid can reach. A map of the grid
  is ``U_h C U_w^T``, its non-negative cells ``C`` spread by the resize's
  non-negative bilinear weights ``U``, so its share is a ratio of two
  non-negative linear forms of ``C``; such a ratio is at most the best ratio
  of a single cell (the mediant inequality). The maximum is therefore the
  share of the best **one-cell map**, the cell whose spread-out footprint has
  the highest nucleus fraction (:func:`cell_shares`), and no map on the grid
  scores above it;
* :func:`grid_smoothed_mask` (column ``grid_nucleus``): the nucleus mask
  itself averaged over the grid's cells and resized as a map is, i.e. what
  a map that followed the nucleus's outline, blurred to the grid, would
  score. It is not a bound: a one-cell map on the nucleus often beats it (a
  centred disc of radius 30 px in a 112 px input, on a 4 x 4 grid: 0.72 against
  0.70), and a mask whose cells all hold the same share of it smooths to a
  flat map, scaled to zero (NaN).

Examples
--------
>>> cam = np.zeros((1, 4, 4), np.float32); cam[0, 0, 0] = 1.0; cam[0, 3, 3] = 3.0
>>> mask = np.zeros((1, 4, 4), bool); mask[0, 2:, 2:] = True
>>> energy_share(cam, mask).tolist(), pointing_game(cam, mask).tolist()
([0.75], [1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "area_fraction",
    "cell_shares",
    "energy_share",
    "grid_best_share",
    "grid_reference",
    "grid_smoothed_mask",
    "localization_scores",
    "pointing_game",
    "upsampling_matrix",
]


def _stack(cams: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(cams, dtype=np.float64)
    m = np.asarray(masks, dtype=bool)
    if c.ndim == 2:
        c, m = c[None], m[None] if m.ndim == 2 else m
    if c.shape != m.shape:
        raise ValueError(f"maps {c.shape} and masks {m.shape} must have the same shape "
                         "(warp the masks to the network's input first)")
    return c, m


def energy_share(cams: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's mass inside its mask, ``(N,)``; NaN for an all-zero map.

    Parameters
    ----------
    cams : ndarray, shape (N, H, W) or (H, W)
        Non-negative maps.
    masks : ndarray of bool, same shape
    """
    c, m = _stack(cams, masks)
    total = c.sum(axis=(1, 2))
    inside = (c * m).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)


def pointing_game(cams: np.ndarray, masks: np.ndarray, rtol: float = 1e-6) -> np.ndarray:
    """1.0 where the map's maximum lies inside the mask, else 0.0; NaN for an all-zero map.

    The pixels within ``rtol`` of the maximum form its plateau; the hit
    counts when most of the plateau is inside the mask.
    """
    c, m = _stack(cams, masks)
    top = c.max(axis=(1, 2), keepdims=True)
    plateau = c >= top * (1 - rtol)
    inside = (plateau & m).sum(axis=(1, 2)) / plateau.sum(axis=(1, 2))
    return np.where(top[:, 0, 0] > 0, (inside > 0.5).astype(np.float64), np.nan)


def area_fraction(masks: np.ndarray) -> np.ndarray:
    """Share of the image each mask covers, ``(N,)``: the energy share of a flat map.

    Examples
    --------
    >>> area_fraction(np.array([[[True, False], [False, False]]])).tolist()
    [0.25]
    """
    m = np.asarray(masks, dtype=bool)
    m = m[None] if m.ndim == 2 else m
    return m.reshape(len(m), -1).mean(axis=1)


def upsampling_matrix(size: int, cells: int) -> np.ndarray:
    """How a map's ``cells`` along one axis spread over ``size`` pixels: ``(size, cells)``.

    Column ``j`` is OpenCV's bilinear resize (pytorch-grad-cam's
    ``scale_cam_image``) of the ``j``-th unit vector; a coarse map ``C`` of
    ``(gh, gw)`` cells is resized to ``U_h @ C @ U_w.T``. The weights are
    non-negative.

    Examples
    --------
    >>> u = upsampling_matrix(8, 2)
    >>> u.shape, bool((u >= 0).all()), u.sum(axis=1).round(6).tolist() == [1.0] * 8
    ((8, 2), True, True)
    """
    import cv2

    eye = np.eye(int(cells), dtype=np.float32)
    # resizing only the width of the identity resizes each unit vector on its own
    return cv2.resize(eye, (int(size), int(cells)), interpolation=cv2.INTER_LINEAR).T.astype(
        np.float64)


def grid_smoothed_mask(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The masks seen at a map's resolution: averaged over the grid's cells, resized, scaled.

    The resizing and scaling are pytorch-grad-cam's (``scale_cam_image``),
    as for the maps. Its energy share (``grid_nucleus``) is what a map that
    followed the mask's outline, blurred to the grid, would score; it is
    *not* the best a map of the grid can do (:func:`grid_best_share`).

    Examples
    --------
    >>> m = np.zeros((1, 8, 8), bool); m[0, :4, :4] = True
    >>> ref = grid_smoothed_mask(m, (2, 2))
    >>> ref.shape, round(float(ref[0, 0, 0]), 3), float(ref[0, 7, 7])
    ((1, 8, 8), 1.0, 0.0)
    """
    import cv2
    from pytorch_grad_cam.utils.image import scale_cam_image

    m = np.asarray(masks, dtype=np.float32)
    m = m[None] if m.ndim == 2 else m
    h, w = m.shape[1:]
    coarse = np.stack([cv2.resize(a, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
                       for a in m]) if len(m) else np.zeros((0, *grid), np.float32)
    return scale_cam_image(coarse, (w, h)).reshape(len(m), h, w)


#: The former name of :func:`grid_smoothed_mask` (it was wrongly described as a best case).
grid_reference = grid_smoothed_mask


def cell_shares(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Energy share inside each mask of every one-cell map of the grid, ``(N, gh, gw)``.

    The one-cell map of cell ``(i, j)`` is the coarse map that is 1 there
    and 0 elsewhere, resized as a map is: ``outer(U_h[:, i], U_w[:, j])``
    (:func:`upsampling_matrix`); its share is the mask's fraction of that
    footprint, weighted by it.

    Examples
    --------
    >>> m = np.zeros((1, 8, 8), bool); m[0, :6, :6] = True
    >>> cell_shares(m, (2, 2)).round(3).tolist()
    [[[1.0, 0.5], [0.5, 0.25]]]
    """
    m = np.asarray(masks, dtype=np.float64)
    m = m[None] if m.ndim == 2 else m
    h, w = m.shape[1:]
    uh, uw = upsampling_matrix(h, grid[0]), upsampling_matrix(w, grid[1])
    inside = np.einsum("hi,nhw,wj->nij", uh, m, uw)
    total = np.outer(uh.sum(axis=0), uw.sum(axis=0))
    return inside / total[None]


def grid_best_share(masks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """The highest energy share inside each mask that any map of the grid can reach, ``(N,)``.

    A map of the grid is ``U_h C U_w^T`` with non-negative cells ``C`` (a
    CAM is rectified; min-max scaling and the resize keep it a non-negative
    combination of one-cell maps). Its share is
    ``sum_c C_c a_c / sum_c C_c b_c`` (``a_c``, ``b_c``: the one-cell map's
    mass inside the mask and in all), at most ``max_c a_c / b_c``: the best
    one-cell map's share (:func:`cell_shares`), which it also reaches. A
    1 x 1 grid gives the flat map, the mask's area fraction.

    Examples
    --------
    The top-left cell's map lies wholly inside a 6 x 6 corner of an 8 x 8
    image, above the mask smoothed to the grid:

    >>> m = np.zeros((1, 8, 8), bool); m[0, :6, :6] = True
    >>> grid_best_share(m, (2, 2)).round(3).tolist(), grid_best_share(m, (1, 1)).tolist()
    ([1.0], [0.5625])
    >>> energy_share(grid_smoothed_mask(m, (2, 2)), m).round(3).tolist()
    [0.8]
    """
    shares = cell_shares(masks, grid)
    return shares.reshape(len(shares), -1).max(axis=1)


def localization_scores(
    cams: Mapping[str, np.ndarray],
    nucleus: np.ndarray,
    cell: np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    grid: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Energy share and pointing game of every method's maps, one row per image and method.

    Parameters
    ----------
    cams : mapping of str to ndarray
        Per method, ``(N, H, W)`` maps.
    nucleus : ndarray of bool, shape (N, H, W)
        Nucleus masks at the maps' resolution.
    cell : ndarray of bool, optional
        Whole-cell masks (nucleus or cytoplasm), where the dataset has them.
    ids : sequence of str, optional
        Image ids (default ``"0"``, ``"1"`` ...).
    grid : (int, int), optional
        The maps' grid (:attr:`~leukolib.explain.cams.CamBatch.grid`): adds
        ``best_nucleus``, the highest share any map of the grid can reach
        (:func:`grid_best_share`), and ``grid_nucleus``, the share of the
        nucleus mask smoothed to the grid (:func:`grid_smoothed_mask`).

    Returns
    -------
    DataFrame
        Columns ``id, method, energy_nucleus, pointing_nucleus, area_nucleus``
        (and ``best_nucleus, grid_nucleus``) and, with ``cell``,
        ``energy_cell, pointing_cell, area_cell``.
    """
    n = len(np.asarray(nucleus))
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    frames = []
    yardsticks = {}
    if grid is not None and all(grid):
        yardsticks = {"best_nucleus": grid_best_share(nucleus, grid),
                      "grid_nucleus": energy_share(grid_smoothed_mask(nucleus, grid), nucleus)}
    for method, maps in cams.items():
        row = {"id": ids, "method": method,
               "energy_nucleus": energy_share(maps, nucleus),
               "pointing_nucleus": pointing_game(maps, nucleus),
               "area_nucleus": area_fraction(nucleus)}
        row.update(yardsticks)
        if cell is not None:
            row.update(energy_cell=energy_share(maps, cell),
                       pointing_cell=pointing_game(maps, cell), area_cell=area_fraction(cell))
        frames.append(pd.DataFrame(row))
    return pd.concat(frames, ignore_index=True)
