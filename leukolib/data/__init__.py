"""Datasets: real ones by name, the user's own folders, and synthetic smears."""

from leukolib.data.base import Dataset, Subset
from leukolib.data.datasets import DATASETS, FileDataset, Record, load_dataset
from leukolib.data.download import download
from leukolib.data.io import read_image, read_mask, to_rgb_uint8
from leukolib.data.sample import Sample

__all__ = [
    "DATASETS",
    "Dataset",
    "FileDataset",
    "Record",
    "Sample",
    "Subset",
    "download",
    "load_dataset",
    "read_image",
    "read_mask",
    "to_rgb_uint8",
]
