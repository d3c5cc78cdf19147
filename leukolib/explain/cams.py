"""Class activation maps of the Grad-CAM family, four methods from one pass.

The paper explains its classifiers with four maps computed from the last
bottleneck of ResNet-50's ``layer4`` (its Figures 8 and 9). All four weight
the same activations ``A`` (``K`` channels on a coarse grid) by the gradient
``G`` of the explained class score with respect to them; they differ only in
the weighting:

``gradcam`` (Selvaraju et al. 2017)
    One weight per channel: the spatial mean of ``G``; map ``ReLU(sum_k w_k A_k)``.
``gradcam++`` (Chattopadhay et al. 2018)
    Channel weights from the positive gradients, each pixel weighted by higher
    powers of ``G``, so that several instances of a class all count.
``hirescam`` (Draelos and Carin 2020)
    No averaging: the element-wise product ``ReLU(sum_k G_k * A_k)``, so that
    the map shows exactly the locations that raise the score (the others may
    highlight places the model never used).
``xgradcam`` (Fu et al. 2020)
    Channel weights ``sum(G * A) / sum(A)``, derived from two axioms
    (sensitivity and conservation).

The methods are pytorch-grad-cam's classes. Since they need the same
activations and gradients, :func:`compute_cams` runs one forward and one
backward pass per batch and lets each class turn them into its map; the
backward pass only goes through the network's head (pooling and classifier),
because the gradient with respect to ``layer4``'s output does not depend on
anything before it. Each map is rectified, min-max scaled to [0, 1] and
resized to the input by pytorch-grad-cam's own code, so the maps are the
library's to the last bit.

On a ResNet (ResNet-50 as in the paper, or the ResNet-18 of the ``cpu``
profile) three of the four coincide. ``layer4`` is followed by global
average pooling, so the gradient ``G`` of any head is the same at every
location of the grid: Grad-CAM's channel weight is that gradient,
XGrad-CAM's ``sum(G * A) / sum(A)`` reduces to it, and HiResCAM's
``sum_k G_k * A_k`` is Grad-CAM's map. Only Grad-CAM++, whose weights use
higher powers of ``G`` and the activations' sums, draws another map. The
paper's figures of four methods therefore show two maps (the tests check it).

Examples
--------
>>> import torch, torchvision
>>> model = torchvision.models.resnet50(num_classes=3)
>>> batch = compute_cams(model, torch.zeros(2, 3, 64, 64), methods="all")
>>> sorted(batch.cams), batch.cams["hirescam"].shape, batch.targets.shape
(['gradcam', 'gradcam++', 'hirescam', 'xgradcam'], (2, 64, 64), (2,))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "METHOD_LABELS",
    "METHODS",
    "CamBatch",
    "cam_classes",
    "compute_cams",
    "resolve_methods",
    "softmax",
    "target_layer",
]

#: The four methods, by the names the command line and the tables use.
METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "hirescam", "xgradcam")

#: How figures and tables print them.
METHOD_LABELS: dict[str, str] = {
    "gradcam": "Grad-CAM",
    "gradcam++": "Grad-CAM++",
    "hirescam": "HiResCAM",
    "xgradcam": "XGrad-CAM",
}


def cam_classes() -> dict[str, type]:
    """The pytorch-grad-cam class of each method."""
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, HiResCAM, XGradCAM

    return {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "hirescam": HiResCAM,
            "xgradcam": XGradCAM}


def resolve_methods(methods: str | Sequence[str]) -> tuple[str, ...]:
    """Method names in the canonical order; ``"all"`` for the four.

    Examples
    --------
    >>> resolve_methods("all") == METHODS, resolve_methods(["xgradcam", "gradcam"])
    (True, ('gradcam', 'xgradcam'))
    >>> resolve_methods("scorecam")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown CAM method 'scorecam'; choose from gradcam, gradcam++, ...
    """
    names = [methods] if isinstance(methods, str) else list(methods)
    if "all" in names:
        return METHODS
    for name in names:
        if name not in METHODS:
            raise ValueError(f"unknown CAM method {name!r}; choose from "
                             f"{', '.join(METHODS)}, all")
    if not names:
        raise ValueError("no CAM method given")
    return tuple(m for m in METHODS if m in names)


def target_layer(model: nn.Module, name: str = "layer4") -> nn.Module:
    """The last block of a ResNet stage: ``layer4`` (the paper's target layer) by default.

    An earlier stage (``"layer3"``, ``"layer2"``) gives maps on a finer grid
    (the input side over 16 or 8) that explain the same score from earlier
    features; beyond the paper, for inputs too small for ``layer4``'s grid.

    Raises
    ------
    ValueError
        For a model without that stage (not a torchvision ResNet).
    """
    stage = getattr(model, str(name), None)
    if stage is None or not hasattr(stage, "__getitem__"):
        raise ValueError(f"{type(model).__name__} has no {name}: give the target layer "
                         "explicitly (the CAMs are defined on a ResNet stage's last block)")
    return stage[-1]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``, computed stably.

    Examples
    --------
    >>> softmax(np.array([[0.0, 0.0], [0.0, np.log(3.0)]])).round(2).tolist()
    [[0.5, 0.5], [0.25, 0.75]]
    """
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class CamBatch:
    """Maps of several methods for a batch of inputs.

    Attributes
    ----------
    cams : dict of str to ndarray
        Per method, ``(N, H, W)`` float32 maps in [0, 1] at input resolution;
        an all-zero map means the method found no positive evidence.
    logits : ndarray, shape (N, C)
        The model's outputs for the inputs.
    targets : ndarray of int, shape (N,)
        The class each map explains.
    grid : (int, int)
        Rows and columns of the target layer's output, the maps' true
        resolution before resizing (2 x 2 for a 64 px input, 7 x 7 at 224 px).
    """

    cams: dict[str, np.ndarray]
    logits: np.ndarray
    targets: np.ndarray
    grid: tuple[int, int] = (0, 0)

    @property
    def probabilities(self) -> np.ndarray:
        """Softmax of the logits, ``(N, C)``."""
        return softmax(self.logits)

    @property
    def predictions(self) -> np.ndarray:
        """The predicted class of each input."""
        return self.logits.argmax(axis=1)

    @staticmethod
    def concat(parts: Sequence[CamBatch]) -> CamBatch:
        """One batch from consecutive batches of the same methods."""
        if not parts:
            raise ValueError("nothing to concatenate")
        return CamBatch({m: np.concatenate([p.cams[m] for p in parts]) for m in parts[0].cams},
                        np.concatenate([p.logits for p in parts]),
                        np.concatenate([p.targets for p in parts]), parts[0].grid)


@contextmanager
def _head_only_gradients(model: nn.Module, layer: nn.Module) -> Iterator[None]:
    """Make ``layer``'s output a leaf that requires grad, with the parameters frozen.

    Why: the gradient of a class score with respect to ``layer``'s output
    only involves what comes after ``layer``; without this, a backward pass
    runs through the whole network and costs about twice the forward pass.
    The hook is registered before pytorch-grad-cam's own hooks, which
    therefore record the new leaf and its gradient.
    """
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    handle = layer.register_forward_hook(lambda _m, _i, out: out.detach().requires_grad_())
    try:
        yield
    finally:
        handle.remove()
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def _batch_cams(engines: dict, layer: nn.Module, x: torch.Tensor,
                targets: np.ndarray | None) -> CamBatch:
    import torch
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    first = next(iter(engines.values()))
    recorder = first.activations_and_grads
    with torch.enable_grad():
        logits = recorder(x)  # forward; the hooks record the activations
        chosen = logits.argmax(1) if targets is None else torch.as_tensor(
            targets, dtype=torch.long, device=logits.device)
        logits.gather(1, chosen[:, None]).sum().backward()
    acts = recorder.activations[0].float().numpy()
    grads = recorder.gradients[0].float().numpy()
    recorder.clear()
    chosen_np = chosen.cpu().numpy()
    wrapped = [ClassifierOutputTarget(int(c)) for c in chosen_np]
    size = (x.shape[-1], x.shape[-2])
    cams = {}
    for name, engine in engines.items():
        raw = engine.get_cam_image(x, layer, wrapped, acts, grads, eigen_smooth=False)
        scaled = scale_cam_image(np.maximum(raw, 0), size)
        cams[name] = engine.aggregate_multi_layers([scaled[:, None]]).astype(np.float32)
    return CamBatch(cams, logits.detach().float().cpu().numpy(), chosen_np.astype(np.int64),
                    (int(acts.shape[-2]), int(acts.shape[-1])))


def compute_cams(
    model: nn.Module,
    x: torch.Tensor,
    methods: str | Sequence[str] = "all",
    targets: Sequence[int] | np.ndarray | int | None = None,
    batch_size: int = 16,
    layer: nn.Module | str | None = None,
) -> CamBatch:
    """Maps of ``methods`` for the inputs ``x``, one forward and backward pass per batch.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (set to evaluation mode; its parameters' ``requires_grad``
        flags are restored afterwards). Its device is used.
    x : torch.Tensor, shape (N, 3, H, W)
        Normalized network inputs.
    methods : str or sequence of str
        Names from :data:`METHODS`, or ``"all"``.
    targets : int or sequence of int, optional
        The class to explain, for all inputs or per input; default: each
        input's predicted class.
    batch_size : int
    layer : torch.nn.Module or str, optional
        Target layer, or the name of a ResNet stage whose last block is the
        target (default :func:`target_layer`: ``layer4[-1]``).

    Returns
    -------
    CamBatch
    """
    names = resolve_methods(methods)
    if layer is None or isinstance(layer, str):
        layer = target_layer(model, layer or "layer4")
    device = next(model.parameters()).device
    n = int(x.shape[0])
    if targets is not None:
        t = np.array(np.broadcast_to(np.asarray(targets, dtype=np.int64), (n,)))
    model.eval()
    parts = []
    classes = cam_classes()
    with ExitStack() as stack, _head_only_gradients(model, layer):
        engines = {m: stack.enter_context(classes[m](model=model, target_layers=[layer]))
                   for m in names}
        for extra in list(engines.values())[1:]:
            extra.activations_and_grads.release()  # only the first records; the rest weigh
        for start in range(0, n, batch_size):
            xb = x[start:start + batch_size].to(device)
            tb = None if targets is None else t[start:start + batch_size]
            parts.append(_batch_cams(engines, layer, xb, tb))
    if not parts:
        empty = np.zeros((0, *x.shape[-2:]), np.float32)
        return CamBatch({m: empty for m in names}, np.zeros((0, 0), np.float32),
                        np.zeros(0, np.int64))
    return CamBatch.concat(parts) if len(parts) > 1 else parts[0]

