"""Run profiles: how big every stage runs, defined once for the whole book.

Three profiles cover the ways the book is used:

``smoke``
    Continuous integration: tiny images, one epoch, a dozen samples. Checks
    that every notebook runs end to end in a few minutes on 2 CPU cores; its
    numbers mean nothing.
``cpu``
    The default ``make book`` on a laptop (2 cores, no GPU): reduced image
    size, folds and epochs, sized so the whole book executes in about 20
    minutes while the results are meaningful.
``paper``
    The protocol of Diaz Resendiz et al. (2023): 10-fold cross-validation,
    30 epochs, batch size 8, images resized to 256x256. Meant for a GPU. The
    paper's learning rates and per-dataset U-Net hyperparameters (its Table
    A2) could not be transcribed: :mod:`leukolib.segmentation.hparams` uses
    documented defaults until they are filled in :mod:`leukolib.paper`.

Every notebook takes a ``profile`` parameter and reads all sizes from here.

Examples
--------
>>> p = get_profile("smoke")
>>> p.seg_folds, p.seg_epochs
(2, 1)
>>> get_profile("paper").seg_folds
10
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["PROFILES", "Profile", "get_profile"]


@dataclass(frozen=True)
class Profile:
    """Sizes of every stage of the pipeline.

    Attributes
    ----------
    name : str
        ``"smoke"``, ``"cpu"`` or ``"paper"``.
    description : str
        One line on what the profile is for.
    max_images : int or None
        Cap on the number of images taken from a real dataset (``None``: all).
    synthetic_images : int
        Number of generated smears when the dataset is ``synthetic``.
    synthetic_size : int
        Side of the generated smears, in pixels.
    seg_image_size : int
        Side the U-Net input is resized to (a multiple of 8: three stride-2
        levels).
    seg_folds, seg_epochs, seg_batch_size : int
        U-Net k-fold cross-validation: folds, epochs per fold, batch size.
    seg_val_fraction : float
        Share of each fold's training images held out for the learning-rate
        scheduler and model selection (never the test fold).
    cls_image_size : int
        Side of the classifier input.
    cls_folds, cls_epochs, cls_batch_size : int
        Classifier k-fold cross-validation.
    cls_lr : float
        Classifier learning rate (Adam).
    cls_test_fraction : float
        Stratified hold-out test share for the classifier.
    pretrained : bool
        Start ResNet-50 from ImageNet weights (downloaded; needs a network).
    num_workers : int
        DataLoader worker processes.
    """

    name: str
    description: str
    max_images: int | None
    synthetic_images: int
    synthetic_size: int
    seg_image_size: int
    seg_folds: int
    seg_epochs: int
    seg_batch_size: int
    seg_val_fraction: float
    cls_image_size: int
    cls_folds: int
    cls_epochs: int
    cls_batch_size: int
    cls_lr: float
    cls_test_fraction: float
    pretrained: bool
    num_workers: int

    def to_dict(self) -> dict[str, Any]:
        """The profile as a plain dict (for JSON run records)."""
        return asdict(self)

    def with_overrides(self, **changes: Any) -> Profile:
        """A copy with some fields changed, e.g. ``p.with_overrides(seg_epochs=5)``."""
        unknown = set(changes) - set(self.to_dict())
        if unknown:
            raise ValueError(f"unknown profile field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: every notebook end to end in minutes on 2 cores; numbers meaningless",
        max_images=12,
        synthetic_images=12,
        synthetic_size=128,
        seg_image_size=64,
        seg_folds=2,
        seg_epochs=1,
        seg_batch_size=4,
        seg_val_fraction=0.2,
        cls_image_size=64,
        cls_folds=2,
        cls_epochs=1,
        cls_batch_size=4,
        cls_lr=1e-4,
        cls_test_fraction=0.25,
        pretrained=False,
        num_workers=0,
    ),
    "cpu": Profile(
        name="cpu",
        description="default book on a 2-core laptop: meaningful results, ~20 minutes in all",
        max_images=None,
        synthetic_images=150,
        synthetic_size=256,
        seg_image_size=128,
        # 5 folds x 8 epochs at 128 px: JTSC out-of-fold IoU 0.920 (3 folds: 0.915) and
        # the soft ensemble 0.926 (3 folds: 0.923); ~15 min for JTSC's 300 images on 2
        # cores, ~6 min for the book's 150 synthetic smears. benchmarks/bench_unet.py.
        seg_folds=5,
        seg_epochs=8,
        seg_batch_size=8,
        seg_val_fraction=0.1,
        cls_image_size=128,
        cls_folds=3,
        cls_epochs=5,
        cls_batch_size=16,
        cls_lr=1e-4,
        cls_test_fraction=0.2,
        pretrained=False,
        num_workers=0,
    ),
    "paper": Profile(
        name="paper",
        description="the paper's protocol (10 folds, 30 epochs, batch 8, 256 px); for a GPU",
        max_images=None,
        synthetic_images=651,
        synthetic_size=256,
        seg_image_size=256,
        seg_folds=10,
        seg_epochs=30,
        seg_batch_size=8,
        seg_val_fraction=0.1,
        cls_image_size=256,
        cls_folds=10,
        cls_epochs=30,
        cls_batch_size=8,
        cls_lr=1e-4,
        cls_test_fraction=0.2,
        pretrained=True,
        num_workers=2,
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """Return the profile called ``name`` (a :class:`Profile` passes through).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None
