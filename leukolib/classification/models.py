"""The paper's classifiers: a torchvision ResNet-50 with an MLP head (its Table 1).

``arch="resnet18"`` builds the same design on torchvision's ResNet-18 (512
features instead of 2048): the lighter network a profile may choose where
ResNet-50 does not fit its time (the ``cpu`` profile states its choice and why).

Eight models are the combinations of three choices:

=============  =====================================================  ==============
choice         values                                                 key part
=============  =====================================================  ==============
input          the segmented nucleus, or the raw image (the ablation) ``segmented``
                                                                      / ``raw``
activation     every activation of the network, head included:        ``relu`` /
               ReLU or Mish                                           ``mish``
head           Linear ``2048 -> C`` or Medium                         ``linear`` /
               ``2048 -> 1024 -> 512 -> C``                           ``medium``
=============  =====================================================  ==============

:func:`build_classifier` builds the network (the input is a matter of
:mod:`leukolib.classification.inputs`). ``model.fc`` is the head and
``model.layer4[-1]`` the last bottleneck block, the usual target layer of class
activation maps.

Pretrained weights
------------------
``weights="imagenet"`` loads torchvision's ImageNet weights of ResNet-50
(``IMAGENET1K_V2``, whose preprocessing is the paper's resize 232 / crop 224)
into every layer but the head: from the torch hub cache when the file is there,
else downloaded (as in Colab) unless ``download=False``. When they cannot be
had, a :class:`PretrainedWeightsWarning` says so and the network starts from
random initialisation, unless ``required=True`` (the ``paper`` profile), which
raises :class:`WeightsError` naming the file and the folder to put it in. A
path loads a state dict from a file instead (``weights_only``: no code runs).
Mish replaces ReLU *after* loading, as the paper does with its pretrained
ReLU network.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from leukolib.errors import LeukolibError

__all__ = [
    "ACTIVATIONS",
    "ARCHS",
    "HEADS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PretrainedWeightsWarning",
    "WeightsError",
    "build_classifier",
    "build_head",
    "count_activations",
    "fold_batchnorm",
    "imagenet_weights_file",
    "load_backbone",
    "replace_activations",
]

#: Activations of Table 1.
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "mish": nn.Mish}
#: Heads of Table 1: the hidden widths of the MLP that replaces ``fc``.
HEADS: dict[str, tuple[int, ...]] = {"linear": (), "medium": (1024, 512)}
#: ImageNet normalisation (torchvision's), used with and without pretrained weights.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: torchvision's ImageNet weights of each architecture (ResNet-50's V2: whose
#: preprocessing is the paper's resize 232, centre crop 224).
IMAGENET_WEIGHTS: dict[str, tuple[str, str]] = {
    "resnet50": ("ResNet50_Weights", "IMAGENET1K_V2"),
    "resnet18": ("ResNet18_Weights", "IMAGENET1K_V1"),
}
#: The architectures :func:`build_classifier` knows.
ARCHS = tuple(IMAGENET_WEIGHTS)


class WeightsError(LeukolibError, RuntimeError):
    """Pretrained weights that are required but cannot be had, or a bad weights file."""


class PretrainedWeightsWarning(UserWarning):
    """ImageNet weights were asked for but could not be had: random initialisation instead."""


def _check(name: str, value: str, known: dict) -> str:
    key = str(value).lower()
    if key not in known:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(known)}")
    return key


def build_head(in_features: int, num_classes: int, head: str = "linear",
               act: str = "relu") -> nn.Module:
    """The MLP that replaces ResNet-50's ``fc``: Linear or Medium (Table 1).

    Examples
    --------
    >>> build_head(2048, 3, "medium", "mish")
    Sequential(
      (0): Linear(in_features=2048, out_features=1024, bias=True)
      (1): Mish()
      (2): Linear(in_features=1024, out_features=512, bias=True)
      (3): Mish()
      (4): Linear(in_features=512, out_features=3, bias=True)
    )
    """
    widths = HEADS[_check("head", head, HEADS)]
    layer = ACTIVATIONS[_check("activation", act, ACTIVATIONS)]
    if not widths:
        return nn.Linear(in_features, num_classes)
    mods: list[nn.Module] = []
    for w_in, w_out in zip((in_features, *widths), widths, strict=False):
        mods += [nn.Linear(w_in, w_out), layer()]
    mods.append(nn.Linear(widths[-1], num_classes))
    return nn.Sequential(*mods)


def replace_activations(model: nn.Module, act: str) -> nn.Module:
    """Replace every ReLU or Mish module of ``model`` by ``act``, in place; return the model.

    torchvision's ResNet applies its activations as modules only (no functional
    call), so replacing the modules changes every activation of the network.
    """
    layer = ACTIVATIONS[_check("activation", act, ACTIVATIONS)]
    for name, child in model.named_children():
        if isinstance(child, tuple(ACTIVATIONS.values())) and not isinstance(child, layer):
            setattr(model, name, layer())
        else:
            replace_activations(child, act)
    return model


def count_activations(model: nn.Module) -> dict[str, int]:
    """Number of activation modules of each kind (``{"relu": n, "mish": m}``)."""
    return {name: sum(isinstance(m, cls) for m in model.modules())
            for name, cls in ACTIVATIONS.items()}


def _weights_enum(arch: str):
    import torchvision.models as tvm

    enum, member = IMAGENET_WEIGHTS[_check("architecture", arch, IMAGENET_WEIGHTS)]
    return getattr(getattr(tvm, enum), member)


def imagenet_weights_file(arch: str = "resnet50") -> Path:
    """Where torchvision keeps (and looks for) an architecture's ImageNet weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(_weights_enum(arch).url)


def _file_digest(path: Path) -> str:
    """The first 12 hex digits of a weights file's SHA-256 (recorded in a run's config)."""
    from leukolib.data.fingerprint import file_sha256

    return file_sha256(path)[:12]


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise WeightsError(f"{path}: not a PyTorch weights file ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: holds no state dict")
    return state


def _imagenet_state(download: bool, arch: str = "resnet50"
                    ) -> tuple[dict[str, torch.Tensor] | None, str]:
    """ImageNet weights from the hub cache, else from the network; or ``None`` and why not."""
    target = imagenet_weights_file(arch)
    if target.is_file():
        return _read_state(target), ""
    if not download:
        return None, f"{target.name} is not in the torch hub cache and downloads are off"
    import socket

    url = _weights_enum(arch).url
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # a firewall that drops packets must not hang a notebook
    try:  # torchvision's file names end with the first digits of their SHA-256
        torch.hub.download_url_to_file(url, str(target), hash_prefix=target.stem.split("-")[-1],
                                       progress=False)
    except Exception as exc:  # noqa: BLE001 - offline, proxy, HTTP: all mean "not here"
        return None, f"download failed: {type(exc).__name__}: {exc}"
    finally:
        socket.setdefaulttimeout(previous)
    return _read_state(target), ""


def _shown(path: Path) -> str:
    """``path`` with the home folder as ``~`` (messages end up in notebooks' outputs)."""
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def load_backbone(
    model: nn.Module,
    weights: str | os.PathLike | None,
    *,
    required: bool = False,
    download: bool = True,
    arch: str = "resnet50",
) -> str:
    """Load pretrained weights into every layer of a ResNet but ``fc``.

    Parameters
    ----------
    model : nn.Module
        A torchvision ResNet of ``arch`` (its ``fc`` is left as it is).
    weights : None, "imagenet" or path
        ``None``: nothing is loaded (random initialisation).
    required : bool
        Raise :class:`WeightsError` instead of warning when ImageNet weights
        cannot be had.
    download : bool
        Try the network when the file is not in the torch hub cache.
    arch : str
        Which ImageNet weights (``"resnet50"``, ``"resnet18"``).

    Returns
    -------
    str
        What the backbone holds: ``"random"``, ``"imagenet"`` or
        ``"file:<name>:<sha256 prefix>"``.
    """
    if weights is None or str(weights).lower() in ("", "none", "random"):
        return "random"
    if str(weights).lower() != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        state, source = _read_state(path), f"file:{path.name}:{_file_digest(path)}"
    else:
        state, why = _imagenet_state(download, arch)
        if state is None:
            target = imagenet_weights_file(arch)
            msg = (f"ImageNet weights of {arch} are not available ({why}); put torchvision's "
                   f"file {target.name} into {_shown(target.parent)} (or pass a weights file)")
            if required:
                raise WeightsError(msg)
            warnings.warn(msg + "; training starts from random initialisation",
                          PretrainedWeightsWarning, stacklevel=2)
            return "random"
        source = "imagenet"
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise WeightsError(f"{weights}: not {arch} weights (missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]})")
    return source


def build_classifier(
    num_classes: int,
    head: Literal["linear", "medium"] | str = "linear",
    act: Literal["relu", "mish"] | str = "relu",
    weights: str | os.PathLike | None = None,
    *,
    required: bool = False,
    download: bool = True,
    arch: str = "resnet50",
) -> nn.Module:
    """One of the paper's eight networks: ResNet-50, an MLP head, ReLU or Mish throughout.

    Parameters
    ----------
    num_classes : int
        ``C``, from the dataset.
    head : {"linear", "medium"}
    act : {"relu", "mish"}
        Every activation of the network, the head's included.
    weights : None, "imagenet" or path
        Backbone weights (see the module docstring); ``None``: random.
    required, download : bool
        Of :func:`load_backbone`.
    arch : {"resnet50", "resnet18"}
        The backbone (the paper's ResNet-50 by default).

    Returns
    -------
    torchvision.models.ResNet
        ``model.fc`` is the head, ``model.layer4[-1]`` the CAM target layer;
        ``model.weights_source`` records what the backbone was loaded from.

    Examples
    --------
    >>> m = build_classifier(3, head="medium", act="mish")
    >>> count_activations(m), m.weights_source
    ({'relu': 0, 'mish': 19}, 'random')
    >>> tuple(m.eval()(torch.zeros(1, 3, 32, 32)).shape)
    (1, 3)
    """
    import torchvision.models as tvm

    if int(num_classes) < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    head, act = _check("head", head, HEADS), _check("activation", act, ACTIVATIONS)
    model = getattr(tvm, _check("architecture", arch, IMAGENET_WEIGHTS))(weights=None)
    source = load_backbone(model, weights, required=required, download=download, arch=arch)
    model.fc = build_head(model.fc.in_features, int(num_classes), head, act)
    replace_activations(model, act)
    left = {k: v for k, v in count_activations(model).items() if k != act and v}
    if left:  # pragma: no cover - a torchvision change would show here
        raise RuntimeError(f"activations left after replacement: {left}")
    model.weights_source = source
    return model


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every batch normalisation of a ResNet into the convolution before it, in place.

    For inference only: in eval mode a batch norm is a fixed affine map, which
    :func:`torch.nn.utils.fusion.fuse_conv_bn_eval` merges into the preceding
    convolution's weights and bias, so the forward pass skips the batch norms'
    share of its work (13 % of ``leukolib classify``'s time under cProfile).
    The logits agree to about 1e-5. Not for training, nor for the
    randomisation check, which resets batch norms with the other layers.

    Parameters
    ----------
    model : torchvision.models.ResNet
        In eval mode (e.g. from :func:`build_classifier`).

    Returns
    -------
    torchvision.models.ResNet
        ``model`` itself, its batch norms replaced by ``nn.Identity``.

    Raises
    ------
    ValueError
        When ``model`` is in training mode.

    Examples
    --------
    >>> m = build_classifier(3, arch="resnet18").eval()
    >>> x = torch.rand(2, 3, 64, 64)
    >>> with torch.inference_mode():
    ...     before = m(x)
    >>> m = fold_batchnorm(m)
    >>> with torch.inference_mode():
    ...     after = m(x)
    >>> bool(torch.allclose(before, after, atol=1e-4))
    True
    >>> any(isinstance(q, nn.BatchNorm2d) for q in m.modules())
    False
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (batch statistics are fixed)")

    def put(parent: nn.Module, path: str, module: nn.Module) -> None:
        owner, _, name = path.rpartition(".")
        setattr(parent.get_submodule(owner) if owner else parent, name, module)

    def fold(parent: nn.Module, conv: str, bn: str) -> None:
        c, b = parent.get_submodule(conv), parent.get_submodule(bn)
        if isinstance(c, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
            put(parent, conv, fuse_conv_bn_eval(c, b))
            put(parent, bn, nn.Identity())

    fold(model, "conv1", "bn1")
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in layer:
            for i in (1, 2, 3):
                if hasattr(block, f"conv{i}"):
                    fold(block, f"conv{i}", f"bn{i}")
            if block.downsample is not None:
                fold(block, "downsample.0", "downsample.1")
    left = [n for n, q in model.named_modules() if isinstance(q, nn.BatchNorm2d)]
    if left:  # pragma: no cover - a torchvision change would show here
        raise RuntimeError(f"batch norms left after folding: {left[:3]}")
    return model
