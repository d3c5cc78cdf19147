"""The sample type every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Sample"]


@dataclass(frozen=True)
class Sample:
    """One image with its ground truth.

    Attributes
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        RGB image.
    nucleus : ndarray of bool, shape (H, W), or None
        Nucleus ground truth; ``None`` for datasets without masks.
    cytoplasm : ndarray of bool, shape (H, W), or None
        Cytoplasm ground truth (nucleus excluded), when the dataset has one.
    label : int or None
        Class index into the dataset's ``class_names``, when known.
    id : str
        Identifier unique within the dataset (usually the file stem).
    path : Path or None
        The image file, or ``None`` for generated samples.
    mask_repaired : int
        Mask pixels that held a value between the levels and were mapped to
        the nearest level when the mask was read (0 for a clean mask).
    """

    image: np.ndarray
    nucleus: np.ndarray | None
    cytoplasm: np.ndarray | None
    label: int | None
    id: str
    path: Path | None = None
    mask_repaired: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """Image height and width."""
        return self.image.shape[:2]
