"""Exceptions raised by leukolib.

Every error that concerns a file names it, so that a user running a batch over
their own data can find and fix the offending input.
"""

from __future__ import annotations

__all__ = [
    "LeukolibError",
    "DataError",
    "ImageReadError",
    "MaskError",
    "DatasetError",
    "DownloadError",
    "LossyMaskWarning",
]


class LeukolibError(Exception):
    """Base class of every error raised on purpose by leukolib."""


class DataError(LeukolibError, ValueError):
    """Bad input data: a file or a folder that cannot be used as it is."""


class ImageReadError(DataError):
    """An image file is missing, empty, truncated or of an unsupported kind."""


class MaskError(DataError):
    """A mask file is missing, of the wrong size or holds an unknown level."""


class DatasetError(DataError):
    """A dataset folder is missing, empty or does not follow its layout."""


class DownloadError(LeukolibError, OSError):
    """A dataset could not be downloaded (typically: no network)."""


class LossyMaskWarning(UserWarning):
    """A mask held a few stray values between its levels; they were mapped to the nearest."""
