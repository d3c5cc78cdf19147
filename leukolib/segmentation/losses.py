r"""The (asymmetric) Unified Focal Loss of Yeung et al. (2022), for binary masks.

The paper trains its U-Net with the Unified Focal Loss (its eq. 9-11)::

    L_UF = lambda * L_maF + (1 - lambda) * L_maFT

Written out for one foreground class (the nucleus, the rare class ``r``) and
the background, with ``p`` the predicted nucleus probability of a pixel,
``y`` its ground truth (0 or 1) and ``N`` the number of pixels:

.. math::

    L_{maF} = \frac{1}{N} \sum_i \big[ -\delta\, y_i \log p_i
              - (1 - \delta)\, (1 - y_i)\, p_i^{\gamma} \log (1 - p_i) \big]

(the focal modulation ``(1 - p_t)^gamma = p^gamma`` suppresses only the easy
background pixels; the rare class keeps its plain, ``delta``-weighted cross
entropy), and, per image, with the modified Tversky index of each class

.. math::

    mTI_c = \frac{TP_c + \epsilon}{TP_c + \delta FN_c + (1 - \delta) FP_c + \epsilon},
    \qquad
    L_{maFT} = \tfrac{1}{2} \big[ (1 - mTI_{bg}) + (1 - mTI_{r})^{1 - \gamma} \big]

(soft counts: ``TP_r = sum y p``, ``FN_r = sum y (1 - p)``, ``FP_r = sum (1 -
y) p``; for the background the roles of ``y`` and ``p`` are swapped: ``TP_bg =
sum (1 - y)(1 - p)``, ``FN_bg = sum (1 - y) p``, ``FP_bg = sum y (1 - p)``),
averaged over the images of the batch. The exponent ``1 - gamma < 1``
enhances the loss of the foreground only.

Why our own implementation, and not MONAI's
--------------------------------------------
``monai.losses.AsymmetricUnifiedFocalLoss`` (read in the installed MONAI 1.6.1,
``monai/losses/unified_focal_loss.py``) was checked against the published
formula and Yeung et al.'s reference code
(github.com/mlyg/unified-focal-loss, ``loss_functions.py``):

* **no sigmoid**: its docstring says "the input should be the original logits
  since it will be transformed by a sigmoid", but ``forward`` applies none;
  for a one-channel output it builds ``cat([1 - y_pred, y_pred])`` from the
  raw input and then clamps it to ``[eps, 1 - eps]``, so logits outside
  ``(0, 1)`` get a zero gradient (on the 2x2 logits ``[[2, -1], [0.5, -3]]``
  with target ``[[1, 0], [1, 0]]`` three of the four pixels get a zero
  gradient). This is a known, open problem (MONAI issue
  #8603 "Add sigmoid/softmax interface for AsymmetricUnifiedFocalLoss", PRs
  #8607 and #8669, the latter's review noting the inconsistent reductions);
* **focal term halved**: its ``AsymmetricFocalLoss`` averages the stacked
  ``[background, foreground]`` terms over the class axis, whereas the formula
  (and the reference code, ``K.mean(K.sum(..., axis=-1))``) sums the two
  class terms of each pixel; MONAI's value is half of the published one, which
  silently changes the effective ``lambda``;
* its defaults (``delta = 0.7``) differ from Yeung et al.'s recommended
  ``delta = 0.6`` for the unified loss.

Its Tversky part does follow the formula (``tests/test_losses.py`` checks our
Tversky term against ``monai.losses.AsymmetricFocalTverskyLoss`` on
probabilities, and our focal term against twice ``AsymmetricFocalLoss``).
So the formula is written once here, on logits:

* ``log p`` and ``log(1 - p)`` come from ``logsigmoid`` (exact and stable for
  any logit, no clamping; the reference code clamps ``p`` to
  ``[1e-7, 1 - 1e-7]``, which only matters for pixels predicted with
  ``|logit| > 16``), and ``p^gamma = exp(gamma * logsigmoid(z))`` keeps a
  finite gradient at ``p -> 0``;
* ``lambda`` multiplies the focal term as in the paper's eq. (11). Yeung's
  reference code multiplies the Tversky term by its ``weight`` instead; the
  two conventions agree at the default ``lambda = 0.5``;
* ``(1 - mTI_r)`` is clamped at ``epsilon`` before the power ``1 - gamma``
  so that a perfect prediction gives a finite gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UnifiedFocalLoss", "focal_tversky_terms", "unified_focal_terms"]


def unified_focal_terms(
    logits: torch.Tensor,
    target: torch.Tensor,
    delta: float = 0.6,
    gamma: float = 0.5,
    epsilon: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of the asymmetric Unified Focal Loss.

    Parameters
    ----------
    logits : Tensor, shape (N, 1, H, W)
        Raw network outputs (before the sigmoid).
    target : Tensor, shape (N, 1, H, W) or (N, H, W)
        Binary ground truth (bool, int or float in {0, 1}).
    delta, gamma, epsilon : float
        See :class:`UnifiedFocalLoss`.

    Returns
    -------
    (Tensor, Tensor)
        ``L_maF`` and ``L_maFT``, scalars in float32.
    """
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"logits must have shape (N, 1, H, W), got {tuple(logits.shape)}")
    z = logits.float()  # the loss stays in float32 under autocast
    y = target.to(torch.float32).reshape(z.shape)
    log_p = F.logsigmoid(z)
    log_q = F.logsigmoid(-z)  # log(1 - p)
    p = torch.sigmoid(z)

    # Asymmetric focal loss: plain delta-weighted CE for the nucleus, focal
    # suppression p^gamma (= (1 - p_t)^gamma) for the background only.
    fore = -delta * y * log_p
    back = -(1.0 - delta) * (1.0 - y) * torch.exp(gamma * log_p) * log_q
    maf = (fore + back).mean()

    back_t, fore_t = _tversky_terms(y, p, delta, gamma, epsilon)
    maft = torch.stack([back_t, fore_t], dim=1).mean()
    return maf, maft


def _tversky_terms(y, p, delta, gamma, epsilon):
    """Per image: the background term ``1 - mTI_bg``, the nucleus term ``(1 - mTI_r)^(1-g)``."""
    dims = (1, 2, 3)
    tp_r = (y * p).sum(dims)
    fn_r = (y * (1.0 - p)).sum(dims)
    fp_r = ((1.0 - y) * p).sum(dims)
    tp_b = ((1.0 - y) * (1.0 - p)).sum(dims)
    fn_b, fp_b = fp_r, fn_r  # a background miss is a nucleus false positive, and vice versa
    mti_r = (tp_r + epsilon) / (tp_r + delta * fn_r + (1.0 - delta) * fp_r + epsilon)
    mti_b = (tp_b + epsilon) / (tp_b + delta * fn_b + (1.0 - delta) * fp_b + epsilon)
    return 1.0 - mti_b, torch.clamp(1.0 - mti_r, min=epsilon) ** (1.0 - gamma)


def focal_tversky_terms(
    logits: torch.Tensor, target: torch.Tensor, delta: float = 0.6, gamma: float = 0.5,
    epsilon: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two halves of the asymmetric focal Tversky term, averaged over the batch.

    ``L_maFT`` is their mean. With ``gamma = 1`` (every row of the paper's
    Table A2) the nucleus half is the constant 1, whatever the prediction.

    Examples
    --------
    >>> import torch
    >>> target = torch.zeros(1, 1, 8, 8); target[..., 2:6, 2:6] = 1
    >>> good, poor = 6 * (2 * target - 1), 0.3 * (2 * target - 1)
    >>> [round(float(focal_tversky_terms(z, target, 0.7, 1.0)[1]), 3) for z in (good, poor)]
    [1.0, 1.0]
    """
    z = logits.float()
    y = target.to(torch.float32).reshape(z.shape)
    back, fore = _tversky_terms(y, torch.sigmoid(z), delta, gamma, epsilon)
    return back.mean(), fore.mean()


class UnifiedFocalLoss(nn.Module):
    """Asymmetric Unified Focal Loss (Yeung et al. 2022) on logits of a binary mask.

    ``L = lam * L_maF + (1 - lam) * L_maFT``; the formulas and the reasons for
    not using MONAI's implementation are in the module docstring.

    Parameters
    ----------
    lam : float
        Weight of the asymmetric focal (cross-entropy) term; ``1 - lam`` weighs
        the asymmetric focal Tversky term. The paper's ``lambda``.
    delta : float
        In the focal term, the weight of the nucleus pixels (``1 - delta`` for
        the background); in the Tversky term, the weight of false negatives
        (``1 - delta`` for false positives). ``delta > 0.5`` favours recall.
    gamma : float
        Focal parameter in [0, 1]: background pixels are weighted by
        ``p^gamma`` in the focal term and the nucleus Tversky loss is raised to
        ``1 - gamma``. ``gamma = 0`` removes both modulations.
    epsilon : float
        Smoothing of the Tversky index.

    Examples
    --------
    >>> import torch
    >>> loss = UnifiedFocalLoss()
    >>> target = torch.zeros(1, 1, 4, 4); target[..., 1:3, 1:3] = 1
    >>> good = loss(20 * (2 * target - 1), target)
    >>> bad = loss(-20 * (2 * target - 1), target)
    >>> bool(good < 1e-3), bool(bad > 1)
    (True, True)
    """

    def __init__(
        self, lam: float = 0.5, delta: float = 0.6, gamma: float = 0.5, epsilon: float = 1e-7
    ) -> None:
        super().__init__()
        for name, value in (("lam", lam), ("delta", delta), ("gamma", gamma)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.lam = float(lam)
        self.delta = float(delta)
        self.gamma = float(gamma)
        self.epsilon = float(epsilon)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss of a batch (a scalar).

        Parameters
        ----------
        logits : Tensor, shape (N, 1, H, W)
        target : Tensor, shape (N, 1, H, W) or (N, H, W), values in {0, 1}
        """
        maf, maft = unified_focal_terms(logits, target, self.delta, self.gamma, self.epsilon)
        return self.lam * maf + (1.0 - self.lam) * maft

    def extra_repr(self) -> str:
        """The parameters, shown by ``repr``."""
        return f"lam={self.lam}, delta={self.delta}, gamma={self.gamma}"
