"""Which backbone weights a run uses: the profile's rule, resolved once per run.

``weights="profile"`` (the default of every entry point) follows the run
profile: ImageNet weights are **required** under ``paper`` (a clear error says
where to put the file when they cannot be had), **tried** under ``cpu`` (a
warning, then random initialisation, when they cannot be had) and **not used**
under ``smoke`` (continuous integration never downloads 100 MB). ``"imagenet"``,
``None`` and a file path choose explicitly.

The answer is resolved before a run's configuration is written, so the
record says what the backbone really held (``"imagenet"``, ``"random"`` or
``"file:NAME:SHA256"``) and which learning rate that implied.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from leukolib.classification.models import (
    PretrainedWeightsWarning,
    WeightsError,
    _file_digest,
    _imagenet_state,
    _shown,
    imagenet_weights_file,
)
from leukolib.profiles import Profile, get_profile

__all__ = ["resolve_weights"]


def resolve_weights(
    weights: str | os.PathLike | None, profile: str | Profile = "cpu", download: bool = True,
    arch: str = "resnet50",
) -> tuple[str, str | None]:
    """What a run's backbone will hold, and the file to load it from.

    Parameters
    ----------
    weights : "profile", "imagenet", None or path
    profile : str or Profile
    download : bool
        Try the network when ImageNet weights are not in the torch hub cache.
    arch : str
        The backbone whose ImageNet weights are meant.

    Returns
    -------
    (str, str or None)
        ``("random", None)``, ``("imagenet", FILE)`` or ``("file:NAME:SHA", FILE)``.

    Raises
    ------
    WeightsError
        ImageNet weights required (``paper``) but not available, or a weights
        file that does not exist.

    Examples
    --------
    >>> resolve_weights("profile", "smoke"), resolve_weights(None, "cpu")
    (('random', None), ('random', None))
    """
    c = get_profile(profile).classification
    if isinstance(weights, str) and weights == "profile":
        if not (c.pretrained or c.try_pretrained):
            return "random", None
        weights = "imagenet"
    if weights is None or str(weights).lower() in ("", "none", "random"):
        if c.pretrained:
            raise WeightsError(f"the {get_profile(profile).name!r} profile requires ImageNet "
                               "weights (the paper fine-tunes them)")
        return "random", None
    if str(weights).lower() == "imagenet":
        state, why = _imagenet_state(download, arch)
        if state is None:
            target = imagenet_weights_file(arch)
            msg = (f"ImageNet weights of {arch} are not available ({why}); put torchvision's "
                   f"file {target.name} into {_shown(target.parent)} (or pass a weights file)")
            if c.pretrained:
                raise WeightsError(msg)
            warnings.warn(msg + "; training starts from random initialisation",
                          PretrainedWeightsWarning, stacklevel=2)
            return "random", None
        return "imagenet", "imagenet"
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    return f"file:{path.name}:{_file_digest(path)}", str(path)
