"""Whether a map tracks the model: ROAD, deletion and insertion curves.

A map is *faithful* when the pixels it ranks first are the ones the model's
output depends on. Both measures here remove or add pixels in the map's order
and watch the probability of the explained class (softmax):

**ROAD** (Rong et al. 2022, pytorch-grad-cam's implementation)
    Remove And Debias: the removed pixels are filled by noisy linear
    interpolation from their neighbours, so that the filling itself carries
    no information the model could use. ``road_morf``: the change in
    probability when the most relevant pixels are removed (should be
    strongly negative), ``road_lerf``: when the least relevant are removed
    (should be near zero), each averaged over the profile's percentiles; and
    ``road_combined = (road_lerf - road_morf) / 2``, higher is more faithful.
    At percentile ``p`` pytorch-grad-cam removes the pixels above the map's
    ``p``-th percentile (MoRF) or below its ``(100 - p)``-th (LeRF), i.e.
    ``100 - p`` percent of the image.
**Deletion and insertion** (Petsiuk et al. 2018)
    The pixels, most relevant first, are replaced by zero (the normalised
    mean colour) in ``steps`` equal steps (deletion), or pasted onto a heavily
    blurred copy of the image (insertion); the areas under the two curves of
    the class probability against the removed (inserted) fraction are
    ``deletion_auc`` (lower is better) and ``insertion_auc`` (higher is
    better).

Every measure is also computed for a **random map**, the reference a method
must beat to be called faithful at all: uniform noise on the CAMs' own grid
(the target layer's output, :attr:`~leukolib.explain.cams.CamBatch.grid`,
or :func:`map_grid` read off the maps), scaled and resized exactly as a CAM
is, so it is as smooth as the maps it is compared with.
:data:`RANDOM_DRAWS` independent draws are scored per image and their
scores averaged, so that the reference is not the luck of one draw (the
``draws`` column says how many maps a row averages; ROAD's imputation noise
is the same for every map). Maps of two methods that agree within
:data:`SAME_MAP_ATOL` everywhere (on a ResNet, Grad-CAM, HiResCAM and
XGrad-CAM give the same map: see :mod:`leukolib.explain.cams`) are scored
once and share their scores.

Examples
--------
>>> curve = np.array([1.0, 0.5, 0.0])
>>> float(curve_auc(curve))
0.5
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "RANDOM_DRAWS",
    "RANDOM_MAP",
    "curve_auc",
    "deletion_insertion",
    "faithfulness_scores",
    "map_grid",
    "random_maps",
    "road_scores",
]

#: The name of the random reference map in tables.
RANDOM_MAP = "random"

#: Independent random maps scored per image, their scores averaged (the random reference).
RANDOM_DRAWS = 3

#: Maps of several methods that agree within this everywhere are scored once.
SAME_MAP_ATOL = 1e-3


def curve_auc(curve: np.ndarray) -> np.ndarray:
    """Area under curves sampled at equal steps of the fraction in [0, 1] (trapezoids)."""
    from scipy.integrate import trapezoid

    c = np.asarray(curve, dtype=np.float64)
    return trapezoid(c, dx=1.0 / (c.shape[-1] - 1), axis=-1)


def random_maps(n: int, size: tuple[int, int], grid: int | tuple[int, int],
                seed: int = 0) -> np.ndarray:
    """``n`` random maps ``(n, H, W)`` in [0, 1]: uniform noise on a grid, resized as a CAM is.

    Parameters
    ----------
    n : int
    size : (int, int)
        ``(H, W)``, the input's.
    grid : int or (int, int)
        Rows and columns of the noise: the CAMs' grid
        (:attr:`~leukolib.explain.cams.CamBatch.grid`), so that a random map
        is exactly as smooth as a CAM. An int is a square grid.
    seed : int

    Returns
    -------
    ndarray, shape (n, H, W)
        Min-max scaled and resized by pytorch-grad-cam's ``scale_cam_image``
        (bilinear), as the CAMs are: the same plateaus at the borders.

    Examples
    --------
    >>> m = random_maps(2, (48, 48), (2, 2), seed=0)
    >>> m.shape, float(m.min()) >= 0, float(m.max()) <= 1, bool(m[0].std() > 0)
    ((2, 48, 48), True, True, True)
    >>> bool(np.array_equal(m, random_maps(2, (48, 48), 2, seed=0)))  # seeded
    True
    """
    from pytorch_grad_cam.utils.image import scale_cam_image

    gh, gw = (grid, grid) if isinstance(grid, int | np.integer) else grid
    if n == 0:
        return np.zeros((0, *size), np.float32)
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, max(1, int(gh)), max(1, int(gw)))).astype(np.float32)
    return scale_cam_image(coarse, (size[1], size[0])).reshape(n, *size)


def map_grid(maps: np.ndarray | Sequence[np.ndarray], atol: float = 2e-3,
             max_maps: int = 16) -> tuple[int, int]:
    """The coarsest grid whose bilinear resize reproduces every map: the maps' own grid.

    Per axis, the smallest number of cells ``g`` such that every map's
    profiles along that axis lie in the span of the resize's columns
    (:func:`~leukolib.explain.localization.upsampling_matrix`) within
    ``atol``. A CAM of a ``(gh, gw)`` grid gives ``(gh, gw)``; a map drawn
    at the pixels (a mask, a saliency map) gives its own size; flat maps
    alone give ``(1, 1)``.

    Parameters
    ----------
    maps : ndarray ``(..., H, W)`` or sequence of them
        E.g. the maps of several methods for the same inputs.
    atol : float
        Tolerance of the fit (maps stored as float16 are off by ~5e-4).
    max_maps : int
        At most this many maps of each array are looked at (the first ones).

    Examples
    --------
    >>> map_grid(random_maps(3, (112, 112), (4, 4), seed=1))
    (4, 4)
    >>> map_grid(np.eye(8)[None])
    (8, 8)
    """
    from leukolib.explain.localization import upsampling_matrix

    arrays = [maps] if isinstance(maps, np.ndarray) else list(maps)
    parts = [np.asarray(a, np.float64).reshape(-1, *np.shape(a)[-2:])[:max_maps] for a in arrays]
    if not parts or not sum(len(p) for p in parts):
        raise ValueError("no maps to read a grid from: give the grid")
    stack = np.concatenate(parts)
    h, w = stack.shape[1:]

    def cells(profiles: np.ndarray) -> int:  # profiles: (size, K), one column per line
        size = len(profiles)
        for g in range(1, size):
            u = upsampling_matrix(size, g)
            fit = u @ np.linalg.lstsq(u, profiles, rcond=None)[0]
            if np.abs(fit - profiles).max() <= atol:
                return g
        return size

    return (cells(stack.transpose(1, 0, 2).reshape(h, -1)),
            cells(stack.transpose(2, 0, 1).reshape(w, -1)))


def _probabilities(model: nn.Module, x: torch.Tensor, targets: np.ndarray,
                   batch_size: int) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            p = torch.softmax(model(x[s:s + batch_size].to(device)).float(), dim=1)
            t = torch.as_tensor(targets[s:s + batch_size], device=p.device)
            out.append(p.gather(1, t[:, None])[:, 0].cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def deletion_insertion(
    model: nn.Module,
    x: torch.Tensor,
    cams: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    steps: int = 10,
    batch_size: int = 32,
    blur_sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves of the explained class's probability.

    Parameters
    ----------
    model : torch.nn.Module
    x : torch.Tensor, shape (N, 3, H, W)
        Normalised inputs.
    cams : ndarray, shape (N, H, W)
        The maps that order the pixels (ties broken in raster order).
    targets : sequence of int
        The explained class of each input.
    steps : int
        The curves have ``steps + 1`` points, at removed fractions ``k / steps``.
    batch_size : int
    blur_sigma : float, optional
        Of the insertion's blurred start image (default: a tenth of the side).

    Returns
    -------
    deletion, insertion : ndarray, shape (N, steps + 1)
    """
    import torch
    from torchvision.transforms.functional import gaussian_blur

    n, _, h, w = x.shape
    targets = np.asarray(targets, dtype=np.int64)
    sigma = float(blur_sigma) if blur_sigma else max(h, w) / 10
    kernel = 2 * int(np.ceil(3 * sigma)) + 1
    fractions = np.arange(steps + 1) / steps
    deletion = np.empty((n, steps + 1))
    insertion = np.empty((n, steps + 1))
    for i in range(n):
        order = np.argsort(-np.asarray(cams[i], np.float64).ravel(), kind="stable")
        rank = np.empty(h * w, np.int64)
        rank[order] = np.arange(h * w)
        # keep[k]: the pixels among the first round(f_k * H * W) of the order
        keep = torch.from_numpy(rank[None, :] < np.round(fractions * h * w)[:, None])
        keep = keep.view(steps + 1, 1, h, w).to(x.dtype)
        xi = x[i:i + 1].cpu()
        blurred = gaussian_blur(xi, [min(kernel, 2 * (min(h, w) // 2) - 1)] * 2, [sigma, sigma])
        deleted = xi * (1 - keep)
        inserted = blurred * (1 - keep) + xi * keep
        both = torch.cat([deleted, inserted])
        p = _probabilities(model, both, np.full(len(both), targets[i]), batch_size)
        deletion[i], insertion[i] = p[: steps + 1], p[steps + 1:]
    return deletion, insertion


def road_scores(
    model: nn.Module,
    x: torch.Tensor,
    cams: np.ndarray,
    targets: Sequence[int] | np.ndarray,
    percentiles: Sequence[int] = (10, 20, 40, 60, 80),
    seed: int = 0,
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """ROAD scores per input: ``road_morf``, ``road_lerf`` and ``road_combined``.

    pytorch-grad-cam's ROAD, its removal orders and imputer, in one loop:
    its ``ROAD...Average`` classes score the unperturbed inputs again at
    every percentile; here they are scored once, and every imputed copy of
    every percentile goes through the network in batches. The imputations
    (and their noise, in the same order: percentile by percentile, image by
    image) are the library's; the noise is drawn from a generator seeded
    with ``seed``, in a block that leaves the caller's PyTorch generator as
    it was.
    """
    import torch
    from pytorch_grad_cam.metrics.perturbation_confidence import (
        RemoveLeastRelevantFirst,
        RemoveMostRelevantFirst,
    )
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    from leukolib.device import fork_rng

    targets = np.asarray(targets, dtype=np.int64)
    n, pct = len(x), [int(p) for p in percentiles]
    xc = x.detach().cpu()
    before = _probabilities(model, xc, targets, batch_size)
    out = {}
    with fork_rng(str(next(model.parameters()).device)), warnings.catch_warnings():
        # the imputer hands torch tensors to NumPy, which warns on every call (NumPy 2)
        warnings.filterwarnings("ignore", "__array_wrap__", DeprecationWarning)
        torch.manual_seed(seed)
        for name, order in (("road_morf", RemoveMostRelevantFirst),
                            ("road_lerf", RemoveLeastRelevantFirst)):
            imputed = torch.stack([
                order(p, NoisyLinearImputer())(xc[i], torch.from_numpy(
                    np.asarray(cams[i], np.float32)))
                for p in pct for i in range(n)]) if n else xc
            after = _probabilities(model, imputed, np.tile(targets, len(pct)), batch_size)
            out[name] = (after.reshape(len(pct), n) - before[None]).mean(axis=0) if n else \
                np.zeros(0)
    out["road_combined"] = (out["road_lerf"] - out["road_morf"]) / 2
    return out


def faithfulness_scores(
    model: nn.Module,
    x: torch.Tensor,
    cams: Mapping[str, np.ndarray],
    targets: Sequence[int] | np.ndarray,
    ids: Sequence[str] | None = None,
    percentiles: Sequence[int] = (10, 20, 40, 60, 80),
    steps: int = 10,
    seed: int = 0,
    batch_size: int = 32,
    reference: bool = True,
    grid: tuple[int, int] | None = None,
    n_draws: int = RANDOM_DRAWS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ROAD, deletion and insertion of every method's maps (and of a random map).

    Parameters
    ----------
    model, x, targets :
        The classifier, its normalised inputs and the explained classes.
    cams : mapping of str to ndarray
        Per method, ``(N, H, W)`` maps of ``x``.
    ids : sequence of str, optional
    percentiles, steps, seed, batch_size :
        Of :func:`road_scores` and :func:`deletion_insertion`.
    reference : bool
        Add the random map (:data:`RANDOM_MAP`): ``n_draws`` independent
        draws of :func:`random_maps` per image (seeded with ``seed``), each
        scored like a method's map (ROAD with the same noise), their scores
        and curves averaged per image.
    grid : (int, int), optional
        The CAMs' grid (:attr:`~leukolib.explain.cams.CamBatch.grid`), that of
        the random maps; default: read off the maps of ``cams``
        (:func:`map_grid`).
    n_draws : int
        Random maps per image (:data:`RANDOM_DRAWS`).

    Returns
    -------
    scores : DataFrame
        One row per image and method: ``id, method, road_morf, road_lerf,
        road_combined, deletion_auc, insertion_auc, draws`` (how many maps
        the row averages: 1 for a method, ``n_draws`` for the random map).
    curves : DataFrame
        Mean curves: ``method, curve ("deletion"/"insertion"), fraction, probability``.

    Examples
    --------
    The maps' grid (2 x 2) is read off them; the random reference averages
    three draws on it:

    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 2)).eval()
    >>> cams = {"cam": random_maps(2, (16, 16), (2, 2), seed=1)}
    >>> scores, curves = faithfulness_scores(model, torch.randn(2, 3, 16, 16), cams, [0, 1],
    ...                                      percentiles=(50,), steps=4, n_draws=3)
    >>> scores.groupby("method")["draws"].first().to_dict(), len(curves)
    ({'cam': 1, 'random': 3}, 20)
    """
    n, _, h, w = x.shape
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]

    def score(m: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        road = road_scores(model, x, m, targets, percentiles, seed, batch_size)
        dele, ins = deletion_insertion(model, x, m, targets, steps, batch_size)
        return road, dele, ins

    scored: dict[str, tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, int]] = {}
    for method, m in cams.items():
        twin = next((k for k in scored if np.abs(cams[k] - m).max() <= SAME_MAP_ATOL), None)
        # the same map (Grad-CAM, HiResCAM, XGrad-CAM on a ResNet) is scored once
        scored[method] = scored[twin] if twin is not None else (*score(m), 1)
    if reference:
        if n_draws < 1:
            raise ValueError(f"n_draws must be at least 1, not {n_draws}")
        if grid is not None and all(grid):
            g = (int(grid[0]), int(grid[1]))
        else:
            g = map_grid(list(cams.values())) if n else (1, 1)
        draws = random_maps(n_draws * n, (h, w), g, seed=seed).reshape(n_draws, n, h, w)
        # one draw is luck: score each, average per image (a mean of AUCs is the mean curve's)
        each = [score(d) for d in draws]
        scored[RANDOM_MAP] = ({k: np.mean([e[0][k] for e in each], axis=0) for k in each[0][0]},
                              np.mean([e[1] for e in each], axis=0),
                              np.mean([e[2] for e in each], axis=0), n_draws)
    rows, curves = [], []
    fractions = np.arange(steps + 1) / steps
    for method, (road, dele, ins, k) in scored.items():
        rows.append(pd.DataFrame({"id": ids, "method": method, **road,
                                  "deletion_auc": curve_auc(dele),
                                  "insertion_auc": curve_auc(ins), "draws": k}))
        for name, c in (("deletion", dele), ("insertion", ins)):
            curves.append(pd.DataFrame({"method": method, "curve": name, "fraction": fractions,
                                        "probability": c.mean(axis=0) if n else np.nan}))
    return pd.concat(rows, ignore_index=True), pd.concat(curves, ignore_index=True)
