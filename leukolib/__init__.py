"""leukolib: explainable computer-aided diagnosis of Acute Lymphoblastic Leukemia.

A reproducible rebuild of Diaz Resendiz et al. (2023): handcrafted and deep
white-blood-cell nucleus segmentation, their ensemble, ResNet-50
classification and visual explanations. The library holds the logic; the
notebooks of the book narrate it.
"""

from importlib.metadata import PackageNotFoundError, version

from leukolib.errors import (
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
