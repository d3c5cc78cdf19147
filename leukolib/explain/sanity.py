"""The model-randomization sanity check of Adebayo et al. (2018).

A method that explains the *model* must give different maps when the model's
learned weights are destroyed; a method whose maps barely change explains the
*image* (its edges, its dark blobs), whatever the model learned. The check:

1. copy the trained model and re-initialise its weights (every layer, or
   cumulatively from the top, the "cascading" randomization: the classifier
   head, then ``layer4``, ``layer3`` ... down to the stem);
2. compute the maps of the same inputs, for the same explained classes;
3. compare each pair of maps by Spearman's rank correlation (over pixels).

A method **passes** when the upper end of the 95 % bootstrap interval of its
mean rank correlation after full randomization lies below
:data:`SANITY_MAX_RHO` (0.5, leukolib's convention: a map that keeps more
than half of its rank order without the learned weights is mostly a
picture of the input). A map may also be all zero (no positive evidence),
which has no ranking: a flat map against a non-flat one counts as
correlation 0 (nothing of the ranking survived) and is counted in
``n_empty``; two flat maps have no correlation (NaN, left out).

Examples
--------
>>> a = np.arange(16, dtype=float).reshape(1, 4, 4)
>>> rank_correlation(a, a).tolist(), rank_correlation(a, -a).tolist()
([1.0], [-1.0])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leukolib.explain.cams import compute_cams, resolve_methods

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "CASCADE",
    "SANITY_MAX_RHO",
    "randomized_copy",
    "rank_correlation",
    "sanity_check",
    "sanity_summary",
]

#: A method passes when its rank correlation's upper 95 % bound is below this.
SANITY_MAX_RHO = 0.5

#: ResNet's top-level blocks, from the output down: the stages of the cascade.
CASCADE: tuple[tuple[str, ...], ...] = (
    ("fc",), ("layer4",), ("layer3",), ("layer2",), ("layer1",), ("conv1", "bn1"))


def randomized_copy(model: nn.Module, blocks: Sequence[str] | None = None,
                    seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose ``blocks`` (top-level children; all by default) are re-initialised.

    Every sub-module with a ``reset_parameters`` method (convolutions, linear
    layers, batch norms: weights redrawn, running statistics reset) is reset,
    with PyTorch's generator seeded from ``seed`` inside a block that leaves
    the caller's generator as it was. The original model is untouched.
    """
    import torch

    from leukolib.device import fork_rng

    clone = copy.deepcopy(model)
    children = dict(clone.named_children())
    names = list(children) if blocks is None else list(blocks)
    unknown = [b for b in names if b not in children]
    if unknown:
        raise ValueError(f"{type(model).__name__} has no block(s) {unknown}; "
                         f"it has {list(children)}")
    device = next(clone.parameters()).device
    with fork_rng(str(device)):  # reset_parameters draws on the parameters' device
        torch.manual_seed(seed)
        for name in names:
            for module in children[name].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
    return clone.eval()


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of each pair of maps ``(N, H, W)``.

    0 when exactly one map of the pair is flat, NaN when both are.
    """
    from scipy.stats import rankdata

    ra = rankdata(np.asarray(a, np.float64).reshape(len(a), -1), axis=1)
    rb = rankdata(np.asarray(b, np.float64).reshape(len(b), -1), axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    va, vb = (ra ** 2).sum(axis=1), (rb ** 2).sum(axis=1)
    den = np.sqrt(va * vb)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(axis=1) / np.where(den > 0, den, 1)
    return np.where(den > 0, rho, np.where((va > 0) | (vb > 0), 0.0, np.nan))


def sanity_check(
    model: nn.Module,
    x: torch.Tensor,
    targets: Sequence[int] | np.ndarray,
    methods: str | Sequence[str] = "all",
    trained: dict[str, np.ndarray] | None = None,
    cascade: bool = False,
    ids: Sequence[str] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    layer: str = "layer4",
) -> pd.DataFrame:
    """Rank correlation between the trained model's maps and a randomized model's.

    Parameters
    ----------
    model : torch.nn.Module
        The trained classifier (not modified).
    x : torch.Tensor
        Normalised inputs.
    targets : sequence of int
        The explained classes (the trained model's predictions, usually):
        the randomized model explains the same classes.
    methods : str or sequence of str
    trained : dict, optional
        The trained model's maps of ``x`` for ``targets`` (computed if absent).
    cascade : bool
        Randomize cumulatively from the top (:data:`CASCADE`), one row per
        stage; otherwise only the whole network.
    ids : sequence of str, optional
    seed : int
    batch_size : int
    layer : str
        The ResNet stage of the maps (:func:`~leukolib.explain.cams.target_layer`).

    Returns
    -------
    DataFrame
        ``id, method, randomized, spearman, empty``; ``randomized`` names the
        deepest block re-initialised (``"all"`` for the whole network);
        ``empty``: one of the two maps is flat.
    """
    names = resolve_methods(methods)
    targets = np.asarray(targets, dtype=np.int64)
    ids = [str(i) for i in range(len(x))] if ids is None else [str(i) for i in ids]
    if trained is None:
        trained = compute_cams(model, x, names, targets, batch_size, layer).cams
    stages: list[tuple[str, list[str] | None]] = []
    if cascade:
        done: list[str] = []
        for stage in CASCADE:
            done += list(stage)
            stages.append((stage[0] if stage != CASCADE[-1] else "all", list(done)))
    else:
        stages.append(("all", None))
    rows = []
    for label, blocks in stages:
        rand = randomized_copy(model, blocks, seed)
        maps = compute_cams(rand, x, names, targets, batch_size, layer).cams
        for m in names:
            flat = (np.ptp(maps[m].reshape(len(x), -1), axis=1) == 0) | (
                np.ptp(trained[m].reshape(len(x), -1), axis=1) == 0)
            rows.append(pd.DataFrame({"id": ids, "method": m, "randomized": label,
                                      "spearman": rank_correlation(trained[m], maps[m]),
                                      "empty": flat}))
        del rand
    return pd.concat(rows, ignore_index=True)


def sanity_summary(frame: pd.DataFrame, n_boot: int = 2000, seed: int = 0,
                   threshold: float = SANITY_MAX_RHO) -> pd.DataFrame:
    """Per method (and stage): mean rank correlation, its interval, empty maps, the verdict.

    Returns
    -------
    DataFrame
        Indexed by ``method`` (and ``randomized`` when there are several
        stages): ``spearman, ci_low, ci_high, n`` (finite correlations),
        ``n_maps`` (pairs of maps compared), ``n_empty`` (pairs with a flat map),
        ``passes``.
    """
    from leukolib.stats import bootstrap_ci, is_degenerate

    keys = ["method", "randomized"]
    rows = []
    for key, g in frame.groupby(keys, sort=False):
        v = g["spearman"].to_numpy(np.float64)
        finite = v[np.isfinite(v)]
        lo, hi = bootstrap_ci(finite, n_boot=n_boot, seed=seed)
        empty = g["empty"].to_numpy(bool) if "empty" in g else ~np.isfinite(v)
        mean = float(finite.mean()) if finite.size else np.nan
        # every correlation equal (e.g. every map empty): no interval, the value itself decides
        top = mean if finite.size and is_degenerate(finite) else hi
        rows.append({"method": key[0], "randomized": key[1], "spearman": mean,
                     "ci_low": lo, "ci_high": hi, "n": int(finite.size),
                     "n_maps": int(len(g)), "n_empty": int(empty.sum()),
                     "passes": bool(np.isfinite(top) and top < threshold)})
    out = pd.DataFrame(rows)
    if out["randomized"].nunique() == 1:
        return out.drop(columns="randomized").set_index("method")
    return out.set_index(keys)
