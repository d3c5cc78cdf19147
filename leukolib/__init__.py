"""leukolib: explainable computer-aided diagnosis of Acute Lymphoblastic Leukemia.

A reproducible rebuild of Diaz Resendiz et al. (2023): handcrafted and deep
white-blood-cell nucleus segmentation, their ensemble, ResNet-50
classification and its explanations. The library holds the logic; the
notebooks of the book narrate it.

The data flow::

    image --> nucleus mask --> segmented input --> classifier --+--> explanations (CAMs)
             (handcrafted,     (or the raw image,  (ResNet-50)  +--> clusters (logit PCA)
              U-Net, ensemble)  the ablation)                   +--> robustness (corruptions)

The package, one sub-package per stage of the paper and small modules for
what every stage shares::

    leukolib/
      data/            datasets by name, image and mask reading, synthetic smears, fingerprints
      segmentation/    handcrafted (Algorithm 1), U-Net, ensemble, evaluation, selection
      classification/  ResNet-50 heads, segmented or raw inputs, k-fold protocol, baselines
      explain/         Grad-CAM family, nucleus share, faithfulness, calibration, clusters
      robustness/      corruptions and severity sweeps
      paper/           the paper's tables, as data
      metrics, stats, tables      scores, intervals and tests, results tables
      folds, training, runs       grouped splits, the training loop, run directories
      device, profiles, selection seeding and devices, run sizes, how defaults are chosen
      plotting                    figures shared by the stages
      cli/             the ``leukolib`` command
      notebook, book   helpers of the notebooks and of the book build

Dependencies point one way: ``data`` and the shared modules -> the stages
(segmentation -> classification -> explain, robustness) -> reports and
tables -> the command line and the notebooks. The core never imports
``notebook`` or ``book``.
"""

import os
from importlib.metadata import PackageNotFoundError, version

# albumentations asks the network for a newer release at import: on an offline machine
# (a GPU node, a firewalled laptop) that waits for a timeout and warns; leukolib pins no
# version of it to be told about
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from leukolib.errors import (  # noqa: E402 - after the environment it sets
    DataError,
    DatasetError,
    DownloadError,
    ImageReadError,
    LeukolibError,
    MaskError,
)
from leukolib.profiles import PROFILES, Profile, get_profile

try:
    __version__ = version("leukolib")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "PROFILES",
    "DataError",
    "DatasetError",
    "DownloadError",
    "ImageReadError",
    "LeukolibError",
    "MaskError",
    "Profile",
    "__version__",
    "get_profile",
]
