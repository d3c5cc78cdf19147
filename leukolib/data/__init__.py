"""Datasets: real ones by name, the user's own folders, and synthetic smears."""

from leukolib.data.base import Dataset, Subset
from leukolib.data.datasets import (
    DATASETS,
    DISPLAY_NAMES,
    FileDataset,
    Record,
    display_name,
    load_dataset,
)
from leukolib.data.download import data_dir, download, fetch
from leukolib.data.duplicates import DuplicateRule, near_duplicate_groups, near_duplicate_pairs
from leukolib.data.fingerprint import duplicate_groups, image_fingerprint, merge_groups
from leukolib.data.io import LabelMask, read_image, read_mask, to_rgb_uint8
from leukolib.data.sample import Sample
from leukolib.data.subsets import limit_dataset, profile_dataset

__all__ = [
    "DATASETS",
    "DISPLAY_NAMES",
    "Dataset",
    "DuplicateRule",
    "FileDataset",
    "LabelMask",
    "Record",
    "Sample",
    "Subset",
    "data_dir",
    "display_name",
    "download",
    "duplicate_groups",
    "fetch",
    "image_fingerprint",
    "limit_dataset",
    "load_dataset",
    "merge_groups",
    "near_duplicate_groups",
    "near_duplicate_pairs",
    "profile_dataset",
    "read_image",
    "read_mask",
    "to_rgb_uint8",
]
