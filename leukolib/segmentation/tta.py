"""Test-time augmentation: the U-Net's probability averaged over mirrored views.

The U-Net was trained on flipped, rotated and transposed patches
(:mod:`~leukolib.segmentation.augment`), so a nucleus seen in a mirror is as
familiar to it as seen upright. Segmenting each patch also in its mirror
images, mapping every probability back and averaging them removes part of the
noise of a single view at the cost of one forward pass per view, with no
training. The views are nnU-Net's test-time mirroring in two dimensions: the
image, its horizontal and vertical mirrors, and both (the mirrors about each
axis and the rotation by 180 degrees).

Whether the library uses it is the selection protocol's decision
(:data:`TTA`, recorded in the shipped segmentation report): it is scored
against single-view inference on the ensemble's in-domain IoU, by the
consistent rule, leave-one-dataset-out (``benchmarks/segmentation_report.py``).

Examples
--------
>>> import torch
>>> x = torch.arange(6.0).reshape(1, 1, 2, 3)
>>> net = lambda t: t * 2  # equivariant: every view, mapped back, agrees
>>> bool(torch.equal(mirrored(net, "flips")(x), net(x)))
True
>>> [len(VIEWS[k]) for k in VIEW_SETS]
[1, 4]
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["TTA", "VIEWS", "VIEW_SETS", "check_tta", "mirrored", "tta_label"]

#: Views by name: the spatial axes (of an ``(N, C, H, W)`` tensor) each mirrors.
_AXES: dict[str, tuple[int, ...]] = {"identity": (), "horizontal": (-1,), "vertical": (-2,),
                                     "both": (-2, -1)}

#: The view sets by name: ``"none"``, one view; ``"flips"``, nnU-Net's mirroring.
VIEWS: dict[str, tuple[str, ...]] = {"none": ("identity",),
                                     "flips": ("identity", "horizontal", "vertical", "both")}

#: The names :func:`mirrored` accepts, the single view first.
VIEW_SETS: tuple[str, ...] = tuple(VIEWS)

#: The library's test-time augmentation: chosen by the selection protocol and
#: checked against the shipped report by the tests.
TTA: str = "none"


def check_tta(name: str) -> str:
    """``name`` when it is a view set (:data:`VIEW_SETS`), else a ``ValueError`` naming them."""
    if name not in VIEWS:
        raise ValueError(f"unknown test-time augmentation {name!r}; known: {', '.join(VIEWS)}")
    return name


def mirrored(net: Callable[[torch.Tensor], torch.Tensor],
             tta: str = "flips") -> Callable[[torch.Tensor], torch.Tensor]:
    """``net`` averaged over the views of ``tta``, each mapped back to the input's frame.

    Parameters
    ----------
    net : callable
        ``(N, C, H, W)`` tensor to a tensor of the same height and width (a
        probability, so that the average stays one).
    tta : str
        One of :data:`VIEW_SETS`; ``"none"`` returns ``net`` itself.

    Returns
    -------
    callable
    """
    views = [_AXES[v] for v in VIEWS[check_tta(tta)]]
    if len(views) == 1:
        return net

    def averaged(x: torch.Tensor) -> torch.Tensor:
        total = None
        for axes in views:
            y = net(torch.flip(x, axes)) if axes else net(x)
            y = torch.flip(y, axes) if axes else y  # a mirror is its own inverse
            total = y if total is None else total + y
        return total / len(views)

    return averaged


def tta_label(tta: str) -> str:
    """Words for a view set, e.g. ``"mirrored views (4)"``."""
    n = len(VIEWS[check_tta(tta)])
    return "one view" if n == 1 else f"mirrored views ({n})"
