"""Per-dataset U-Net hyper-parameters, kept as data.

The paper tunes six hyper-parameters of its U-Net for every dataset (its
Table A2, :data:`leukolib.paper.UNET_HPARAMS`): the three parameters of the
Unified Focal Loss (``lam``, ``delta``, ``gamma``), the learning rate, the
dropout rate and the weight decay. Two sources are available:

``"paper"``
    The dataset's Table A2 row (the ``paper`` profile). A dataset without
    a row (``synthetic``, a user's own) falls back to the defaults below.
``"defaults"``
    :data:`DEFAULT_HPARAMS`, leukolib's defaults: ``lam = 0.5``,
    ``delta = 0.6``, ``gamma = 0.5``, the values Yeung et al. (2022)
    recommend for the asymmetric Unified Focal Loss (their reference
    implementation's ``asym_unified_focal_loss(weight=0.5, delta=0.6,
    gamma=0.5)``); ``lr = 1e-3``, Adam's usual starting rate, lowered by
    ReduceLROnPlateau; ``dropout = 0.2`` and ``weight_decay = 1e-5``, light
    regularisation.

Every row of Table A2 has ``gamma = 1``. In the published loss (and in MONAI's)
the foreground focal Tversky term is ``(1 - mTI) ** (1 - gamma)``, which is
then the constant 1: that half of the Tversky term gives no gradient at all,
and the loss reduces to the focal cross-entropy plus the background Tversky
term. Which source a profile uses was decided by measurement (the
segmentation chapter shows it); every run records the values it used and
where they came from (``source``: ``"paper"``, ``"leukolib-default"`` or
``"user"``).

Examples
--------
>>> hp = unet_hparams("jtsc")
>>> hp.source, hp.lam, hp.delta, hp.gamma
('leukolib-default', 0.5, 0.6, 0.5)
>>> unet_hparams("jtsc", source="paper").delta, unet_hparams("synthetic", source="paper").source
(0.8, 'leukolib-default')
>>> unet_hparams("jtsc", {"lr": 3e-4}).lr, unet_hparams("jtsc", {"lr": 3e-4}).source
(0.0003, 'user')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

__all__ = ["DEFAULT_HPARAMS", "UNetHParams", "unet_hparams"]


@dataclass(frozen=True)
class UNetHParams:
    """The U-Net hyper-parameters of one dataset (the paper's Table A2 columns).

    Attributes
    ----------
    lam : float
        Weight of the asymmetric focal loss against the asymmetric focal
        Tversky loss in the Unified Focal Loss (``lambda`` in the paper).
    delta : float
        Weight of the foreground (rare class) against the background in the
        focal term; weight of false negatives against false positives in the
        Tversky term.
    gamma : float
        Focal parameter: background suppression and foreground enhancement.
    lr : float
        Initial learning rate of Adam.
    dropout : float
        Dropout rate of every convolution block of the U-Net.
    weight_decay : float
        Adam's L2 weight decay.
    source : str
        Where the values come from: ``"paper"`` (Table A2 via
        :data:`leukolib.paper.UNET_HPARAMS`), ``"leukolib-default"`` or
        ``"user"`` (some value overridden by the caller).
    """

    lam: float = 0.5
    delta: float = 0.6
    gamma: float = 0.5
    lr: float = 1e-3
    dropout: float = 0.2
    weight_decay: float = 1e-5
    source: str = "leukolib-default"

    def __post_init__(self) -> None:
        for name in ("lam", "delta", "dropout"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= self.gamma <= 1.0:
            # gamma > 1 would turn the Tversky exponent 1 - gamma negative.
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

    def values(self) -> dict[str, float]:
        """The six numbers, without ``source`` (the paper's Table A2 keys)."""
        d = asdict(self)
        d.pop("source")
        return d

    def to_dict(self) -> dict[str, Any]:
        """All fields, ``source`` included (for the run record)."""
        return asdict(self)


#: Our defaults (Yeung et al.'s recommended loss parameters); NOT the paper's Table A2.
DEFAULT_HPARAMS = UNetHParams()

_KEYS = tuple(f.name for f in fields(UNetHParams) if f.name != "source")


def unet_hparams(
    dataset: str,
    overrides: Mapping[str, float] | UNetHParams | None = None,
    source: str = "defaults",
) -> UNetHParams:
    """The hyper-parameters to train the U-Net on ``dataset`` with.

    Parameters
    ----------
    dataset : str
        leukolib dataset name (``"jtsc"``, ``"all_idb2"``, ``"synthetic"`` ...).
    overrides : mapping or UNetHParams, optional
        Values to use instead (a mapping may give only some keys; a
        :class:`UNetHParams` replaces everything and keeps its own source).
    source : str
        ``"paper"`` (Table A2 where it has the dataset) or ``"defaults"``.

    Returns
    -------
    UNetHParams
        With ``overrides`` applied (``source="user"``).

    Raises
    ------
    ValueError
        For an unknown key or an out-of-range value.
    """
    if isinstance(overrides, UNetHParams):
        return overrides
    from leukolib.paper import UNET_HPARAMS

    if source not in ("paper", "defaults"):
        raise ValueError(f"unknown hyper-parameter source {source!r}; use 'paper' or 'defaults'")
    key = str(dataset).lower().replace("-", "_")
    if source == "paper" and key in UNET_HPARAMS:
        base = UNetHParams(**{k: float(UNET_HPARAMS[key][k]) for k in _KEYS}, source="paper")
    else:
        base = DEFAULT_HPARAMS
    if not overrides:
        return base
    unknown = set(overrides) - set(_KEYS)
    if unknown:
        raise ValueError(
            f"unknown U-Net hyper-parameter(s) {sorted(unknown)}; known: {', '.join(_KEYS)}"
        )
    return replace(base, **{k: float(v) for k, v in overrides.items()}, source="user")
