"""On-the-fly augmentation of the classifiers' training images (the paper's section 4.2).

The paper names albumentations' transforms; these are they (albumentations
2.x), each applied with probability 0.5, in the paper's order:

=====================  ==================================================
transform              parameters
=====================  ==================================================
``VerticalFlip``
``HorizontalFlip``
``RandomRotate90``     k = 0, 1, 2 or 3
``RandomGamma``        gamma in [0.8, 1.2] (albumentations' default)
``CLAHE``              clip limit in [1, 4], 8 x 8 tiles (the default)
``Transpose``
``GaussNoise``         standard deviation 3.2 to 7.1 grey levels: the
                       default variance range (10, 50) of albumentations 1.x,
                       which the paper used; 2.x's default (20-44 % of the
                       range) would bury a small nucleus in noise
=====================  ==================================================

Where leukolib differs, and why:

* The transforms act on the network-size view (:mod:`leukolib.classification.inputs`),
  computed once per image, not on the original image before each resize: on a
  CPU this saves the resize of every image at every epoch. The geometric
  transforms commute with the centre crop of a square view; the intensity
  ones act at the network's resolution.
* For a **segmented** input the mask is augmented with the image and the
  pixels outside it are set back to zero afterwards: CLAHE and Gaussian noise
  would otherwise turn the black background into texture, and the network
  would see something outside the nucleus.

The pipeline is one ``albumentations.Compose``; :meth:`Augmenter.reseed`
reseeds it (the training loop does so at every epoch), so a seed gives the
same augmented images.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["AUGMENTATION", "Augmenter", "training_transforms"]

#: The paper's augmentation, as recorded in every run.
AUGMENTATION: dict[str, Any] = {
    "library": "albumentations",
    "p": 0.5,
    "transforms": ["VerticalFlip", "HorizontalFlip", "RandomRotate90", "RandomGamma", "CLAHE",
                   "Transpose", "GaussNoise"],
    "gamma_limit": [80, 120],
    "clahe_clip_limit": [1.0, 4.0],
    "noise_std_range": [math.sqrt(10.0) / 255.0, math.sqrt(50.0) / 255.0],
    "segmented_remasked": True,
    "applied_to": "the network-size view",
}


def training_transforms(seed: int | None = 0, p: float = 0.5):
    """The paper's augmentation as an ``albumentations.Compose`` (image and ``mask`` targets).

    Examples
    --------
    >>> t = training_transforms(seed=0)
    >>> out = t(image=np.zeros((16, 16, 3), np.uint8), mask=np.ones((16, 16), np.uint8))
    >>> out["image"].shape, out["mask"].shape
    ((16, 16, 3), (16, 16))
    """
    import albumentations as A

    a = AUGMENTATION
    return A.Compose(
        [
            A.VerticalFlip(p=p),
            A.HorizontalFlip(p=p),
            A.RandomRotate90(p=p),
            A.RandomGamma(gamma_limit=tuple(a["gamma_limit"]), p=p),
            A.CLAHE(clip_limit=tuple(a["clahe_clip_limit"]), tile_grid_size=(8, 8), p=p),
            A.Transpose(p=p),
            A.GaussNoise(std_range=tuple(a["noise_std_range"]), p=p),
        ],
        seed=seed,
    )


class Augmenter:
    """Augment a network view (and its mask), re-masking segmented inputs.

    Parameters
    ----------
    segmented : bool
        Set the pixels outside the augmented mask back to zero.
    seed : int
    """

    def __init__(self, segmented: bool, seed: int = 0) -> None:
        self.segmented = bool(segmented)
        self.transform = training_transforms(seed)

    def reseed(self, seed: int) -> None:
        """Restart the random stream (called by the training loop at every epoch)."""
        self.transform.set_random_seed(int(seed) % (2**32))

    def __call__(self, image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """An augmented copy of ``image`` (``uint8`` ``(S, S, 3)``)."""
        if mask is None:
            return self.transform(image=image)["image"]
        out = self.transform(image=image, mask=mask.astype(np.uint8))
        img = out["image"]
        if self.segmented:
            img = img * (out["mask"] > 0)[..., None].astype(img.dtype)
        return img
