"""Loaders for the real datasets, by name, and for a user's own folders.

Each loader lists its files when it is built (cheap: no image is decoded),
checks the layout and raises a :class:`~leukolib.errors.DatasetError` or
:class:`~leukolib.errors.MaskError` that names the offending path when
something is missing. Images and masks are decoded on access. Loaders only
read: nothing is ever written under a data root.

Layouts
-------
``jtsc``
    ``ROOT/Dataset 1/NNN.bmp`` images (120x120), ``ROOT/Dataset 1/NNN.png``
    masks (0 background, 128 cytoplasm, 255 nucleus) and
    ``ROOT/Class Labels of Dataset 1.csv`` (``image ID,class label`` with
    labels 1-5: neutrophil, lymphocyte, monocyte, eosinophil, basophil).
    Zheng et al. (2018), public at github.com/zxaoyou/segmentation_WBC.
``cellavision``
    The same layout with ``Dataset 2`` (100 images, 300x300).
``all_idb2``
    ``ROOT/img/ImNNN_L.tif`` (``L`` = 1 lymphoblast, 0 normal) and, when
    present, ``ROOT/masks/ImNNN_L.png`` (0 / 155 cytoplasm / 255 nucleus).
    Without ``masks/`` the set loads for classification only.
``bloodseg``
    The SMC_IDB set: ``ROOT/images/BloodImage_NNNNN.jpg`` and
    ``ROOT/masks/BloodImage_Mask_NNNNN.png`` (0 / 155 / 255; some masks are
    RGB with compression noise: the set is read as lossy, every pixel mapped to the
    nearest level and the repaired pixels counted).

Masks
-----
Every loader reads masks with :func:`leukolib.data.io.read_mask`: a few stray
values between the levels (under 1 % of a mask's pixels, as public masks
saved with a lossy brush or format have) are mapped to the nearest level,
counted in the sample's ``mask_repaired`` and reported with a
:class:`~leukolib.errors.LossyMaskWarning`; more than that is a
:class:`~leukolib.errors.MaskError` that names the file.
``leukemia_fab``
    The paper's 651-image FAB set: one folder per class, ``ALL1``, ``ALL2``,
    ``ALL3`` (FAB L1, L2, L3), no masks.
``paired``
    A user's own segmentation data: ``ROOT/images/STEM.ext`` and
    ``ROOT/masks/STEM.ext`` (or ``STEM_mask.ext``); the nucleus level (and
    optionally a cytoplasm level) are parameters.
``imagefolder``
    A user's own classification data: one sub-folder per class, class names
    from the folder names (sorted).
``synthetic``
    Generated smears (:class:`~leukolib.data.synthetic.SyntheticDataset`);
    no root needed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leukolib.data.base import Dataset
from leukolib.data.download import SOURCES, fetch, where_to_get
from leukolib.data.io import is_image_file, read_image, read_mask
from leukolib.data.sample import Sample
from leukolib.errors import DatasetError, DownloadError, MaskError

__all__ = [
    "DATASETS",
    "DISPLAY_NAMES",
    "display_name",
    "display_names_in",
    "FileDataset",
    "Record",
    "load_dataset",
    "jtsc",
    "cellavision",
    "all_idb2",
    "bloodseg",
    "leukemia_fab",
    "paired",
    "imagefolder",
]

WBC_CLASSES = ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil")
FAB_CLASSES = ("L1", "L2", "L3")


@dataclass(frozen=True)
class Record:
    """Where one sample lives on disk (no pixels)."""

    id: str
    image: Path
    mask: Path | None = None
    label: int | None = None


class FileDataset(Dataset):
    """A dataset of image files with optional label masks and class labels.

    Parameters
    ----------
    name : str
        Dataset name, used in messages and reports.
    records : list of Record
        One entry per sample, in a stable order.
    class_names : tuple of str
        Names of the label indices (empty when unlabelled).
    levels : dict of str to int
        Mask level of ``"nucleus"`` and optionally ``"cytoplasm"``.
    lossy : bool
        The masks are known to be stored lossily: map every pixel to the
        nearest level (and count the repaired ones) without warning.
    """

    def __init__(
        self,
        name: str,
        records: list[Record],
        class_names: tuple[str, ...] = (),
        levels: dict[str, int] | None = None,
        lossy: bool = False,
    ) -> None:
        self.name = name
        self.records = list(records)
        self.class_names = tuple(class_names)
        self.levels = dict(levels or {"nucleus": 255})
        self.lossy = lossy
        self.has_masks = bool(self.records) and all(r.mask is not None for r in self.records)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        """Sample identifiers, in index order."""
        return [r.id for r in self.records]

    @property
    def labels(self) -> np.ndarray | None:
        """Class index of every sample, or ``None`` when any is unlabelled."""
        if not self.records or any(r.label is None for r in self.records):
            return None
        return np.array([r.label for r in self.records], dtype=np.int64)

    def _load(self, index: int) -> Sample:
        r = self.records[index]
        image = read_image(r.image)
        nucleus = cytoplasm = None
        repaired = 0
        if r.mask is not None:
            masks = read_mask(r.mask, self.levels, shape=image.shape[:2], lossy=self.lossy)
            nucleus, cytoplasm, repaired = masks["nucleus"], masks.get("cytoplasm"), masks.repaired
        return Sample(image, nucleus, cytoplasm, r.label, r.id, r.image, repaired)


# ----------------------------------------------------------------------------- helpers


def _folder(root: str | Path, *parts: str, what: str) -> Path:
    path = Path(root).expanduser().joinpath(*parts)
    if not path.exists():
        raise DatasetError(f"{path}: {what} folder not found")
    if not path.is_dir():
        raise DatasetError(f"{path}: expected the {what} folder, found a file")
    return path


def _images(folder: Path, what: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise DatasetError(f"{folder}: no images found in the {what} folder")
    return files


def _find_mask(folder: Path, stems: Iterable[str], image: Path) -> Path:
    for stem in stems:
        for p in sorted(folder.glob(f"{glob_escape(stem)}.*")):
            if is_image_file(p):
                return p
    raise MaskError(f"{image}: no mask found for this image in {folder}")


def glob_escape(text: str) -> str:
    """Escape glob metacharacters in a file stem."""
    return re.sub(r"([\[\]*?])", r"[\1]", text)


# ----------------------------------------------------------------------------- loaders


def _zheng(root: str | Path, number: int, name: str) -> FileDataset:
    root = Path(root).expanduser()
    folder = _folder(root, f"Dataset {number}", what=f"'Dataset {number}'")
    csv_path = root / f"Class Labels of Dataset {number}.csv"
    labels: dict[str, int] = {}
    if csv_path.exists():
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            for i, row in enumerate(csv.reader(fh)):
                if i == 0 or not row or not row[0].strip():
                    continue
                try:
                    key, value = int(row[0]), int(row[1])
                except (ValueError, IndexError) as exc:
                    msg = f"{csv_path}: line {i + 1} is not 'id,label': {row}"
                    raise DatasetError(msg) from exc
                if not 1 <= value <= len(WBC_CLASSES):
                    raise DatasetError(f"{csv_path}: line {i + 1}: label {value} not in 1-5")
                labels[str(key)] = value - 1
    # Images are the non-PNG files; the PNGs beside them are the masks.
    images = [p for p in _images(folder, f"Dataset {number}") if p.suffix.lower() != ".png"]
    if not images:
        raise DatasetError(f"{folder}: no images found (expected NNN.bmp beside NNN.png masks)")
    records = []
    for p in images:
        mask = p.with_suffix(".png")
        if not mask.exists():
            raise MaskError(f"{p}: no mask found (expected {mask.name} beside it)")
        label = labels.get(str(int(p.stem))) if p.stem.isdigit() else None
        records.append(Record(p.stem, p, mask, label))
    return FileDataset(
        name,
        records,
        WBC_CLASSES if labels else (),
        {"nucleus": 255, "cytoplasm": 128},
    )


def jtsc(root: str | Path) -> FileDataset:
    """JTSC, "Dataset 1" of Zheng et al. (2018): 300 images, 5 WBC classes.

    Examples
    --------
    >>> ds = jtsc("../shared/data/segmentation_WBC")  # doctest: +SKIP
    >>> len(ds), ds.class_names[0]  # doctest: +SKIP
    (300, 'neutrophil')
    """
    return _zheng(root, 1, "jtsc")


def cellavision(root: str | Path) -> FileDataset:
    """CellaVision, "Dataset 2" of Zheng et al. (2018): 100 images, 5 WBC classes."""
    return _zheng(root, 2, "cellavision")


_ALL_IDB = re.compile(r"^Im\d+_([01])$")


def all_idb2(root: str | Path) -> FileDataset:
    """ALL-IDB2 (Labati et al. 2011): single-cell crops, blast (1) or normal (0)."""
    root = Path(root).expanduser()
    images = _images(_folder(root, "img", what="ALL-IDB2 'img'"), "img")
    mask_dir = root / "masks"
    records = []
    for p in images:
        m = _ALL_IDB.match(p.stem)
        if m is None:
            raise DatasetError(f"{p}: name does not follow ALL-IDB2's ImNNN_L pattern")
        mask = _find_mask(mask_dir, [p.stem], p) if mask_dir.is_dir() else None
        records.append(Record(p.stem, p, mask, int(m.group(1))))
    return FileDataset("all_idb2", records, ("normal", "blast"), {"nucleus": 255, "cytoplasm": 155})


def bloodseg(root: str | Path) -> FileDataset:
    """SMC_IDB / BloodSeg: 640 x 480 fields, nucleus masks stored lossily (nearest level)."""
    root = Path(root).expanduser()
    images = _images(_folder(root, "images", what="BloodSeg 'images'"), "images")
    mask_dir = _folder(root, "masks", what="BloodSeg 'masks'")
    records = []
    for p in images:
        stem = p.stem.replace("BloodImage_", "BloodImage_Mask_", 1)
        records.append(Record(p.stem, p, _find_mask(mask_dir, [stem, p.stem], p)))
    return FileDataset(
        "bloodseg", records, (), {"nucleus": 255, "cytoplasm": 155}, lossy=True
    )


def _class_folders(root: Path, names: Iterable[str] | None, what: str) -> list[tuple[str, Path]]:
    if names is None:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise DatasetError(f"{root}: no class folders found in the {what} folder")
        return [(p.name, p) for p in folders]
    return [(n, _folder(root, n, what=f"class '{n}'")) for n in names]


def _imagefolder(root: Path, name: str, folders: list[tuple[str, Path]], names) -> FileDataset:
    records = []
    for label, (_, folder) in enumerate(folders):
        for p in _images(folder, f"class '{folder.name}'"):
            records.append(Record(f"{folder.name}/{p.stem}", p, None, label))
    return FileDataset(name, records, tuple(names))


def leukemia_fab(root: str | Path) -> FileDataset:
    """The paper's FAB set: folders ``ALL1``, ``ALL2``, ``ALL3`` (L1, L2, L3), no masks."""
    root = _folder(root, what="leukemia_fab")
    folders = _class_folders(root, ["ALL1", "ALL2", "ALL3"], "leukemia_fab")
    return _imagefolder(root, "leukemia_fab", folders, FAB_CLASSES)


def imagefolder(root: str | Path, name: str = "imagefolder") -> FileDataset:
    """A user's classification data: one sub-folder per class (sorted names)."""
    root = _folder(root, what="image")
    folders = _class_folders(root, None, "image")
    return _imagefolder(root, name, folders, [n for n, _ in folders])


def paired(
    root: str | Path,
    nucleus_level: int = 255,
    cytoplasm_level: int | None = None,
    lossy: bool = False,
    name: str = "paired",
) -> FileDataset:
    """A user's segmentation data: ``images/`` and ``masks/`` with matching stems.

    Parameters
    ----------
    root : str or Path
        Folder holding ``images/`` and ``masks/``.
    nucleus_level : int
        Pixel value of the nucleus in the masks (0 is background).
    cytoplasm_level : int, optional
        Pixel value of the cytoplasm, when the masks have one.
    lossy : bool
        The masks are stored lossily (e.g. JPEG): map every pixel to the
        nearest level.
    """
    root = Path(root).expanduser()
    images = _images(_folder(root, "images", what="'images'"), "images")
    mask_dir = _folder(root, "masks", what="'masks'")
    levels = {"nucleus": int(nucleus_level)}
    if cytoplasm_level is not None:
        levels["cytoplasm"] = int(cytoplasm_level)
    records = [
        Record(p.stem, p, _find_mask(mask_dir, [p.stem, p.stem + "_mask"], p)) for p in images
    ]
    return FileDataset(name, records, (), levels, lossy=lossy)


def _synthetic(root: str | Path | None = None, **kwargs) -> Dataset:
    from leukolib.data.synthetic import SyntheticDataset

    return SyntheticDataset(**kwargs)


#: Dataset names and their loaders.
DATASETS: dict[str, Callable[..., Dataset]] = {
    "synthetic": _synthetic,
    "jtsc": jtsc,
    "cellavision": cellavision,
    "all_idb2": all_idb2,
    "bloodseg": bloodseg,
    "leukemia_fab": leukemia_fab,
    "paired": paired,
    "imagefolder": imagefolder,
}


#: One display name per dataset, used by every page and table of the book.
DISPLAY_NAMES: dict[str, str] = {
    "synthetic": "synthetic smears",
    "jtsc": "JTSC",
    "cellavision": "CellaVision",
    "all_idb2": "ALL-IDB2",
    "bloodseg": "SMC_IDB (BloodSeg)",
    "leukemia_fab": "Leukemia FAB",
    "raabin": "Raabin-WBC",
}


# a dataset's code name standing alone ("jtsc", "jtsc -> all_idb2", "on jtsc."), not inside a
# file or other name ("classification_jtsc_cpu.json"); "synthetic" is an ordinary word
_CODE_NAME = re.compile(r"(?<![\w.])(" + "|".join(k for k in DISPLAY_NAMES if k != "synthetic")
                        + r")(?!\w|\.\w)")


def display_names_in(text: str) -> str:
    """``text`` with every dataset code name that stands alone replaced by its display name.

    Examples
    --------
    >>> display_names_in("bloodseg -> jtsc"), display_names_in("classification_jtsc_cpu.json")
    ('SMC_IDB (BloodSeg) -> JTSC', 'classification_jtsc_cpu.json')
    """
    return _CODE_NAME.sub(lambda m: DISPLAY_NAMES[m.group(1)], str(text))


def display_name(name: str) -> str:
    """The name a reader sees for a dataset (its own name when it has no display name).

    Examples
    --------
    >>> display_name("bloodseg"), display_name("all_idb2"), display_name("my_folder")
    ('SMC_IDB (BloodSeg)', 'ALL-IDB2', 'my_folder')
    """
    return DISPLAY_NAMES.get(str(name), str(name))


def load_dataset(name: str, root: str | Path | None = None, **kwargs) -> Dataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS` (``"synthetic"``, ``"jtsc"``, ``"all_idb2"`` ...).
    root : str or Path, optional
        The dataset folder; not needed for ``"synthetic"``. For ``"jtsc"``
        and ``"cellavision"`` without one, the copy in the cache
        (``$LEUKOLIB_DATA``, else pooch's cache folder), downloaded when missing
        (see :func:`leukolib.data.download.fetch`).
    **kwargs
        Passed to the loader (e.g. ``n_images``, ``size``, ``seed`` for
        ``synthetic``; ``nucleus_level`` for ``paired``).

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        Unknown name, a folder that does not follow the layout, or no root
        and no way to get one: the one-line message says where to put the files.

    Examples
    --------
    >>> ds = load_dataset("synthetic", n_images=6, seed=0)
    >>> len(ds), ds.class_names
    (6, ('L1', 'L2', 'L3'))
    """
    key = name.lower().replace("-", "_")
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    if key == "synthetic":
        return DATASETS[key](root, **kwargs)
    if root is None or str(root) == "":
        root = _default_root(name, key)
    return DATASETS[key](root, **kwargs)


def _default_root(name: str, key: str) -> Path:
    """The cached copy of a public dataset (fetched when missing); the others need a root."""
    if key not in SOURCES:
        how = where_to_get(key)
        raise DatasetError(f"dataset {name!r} needs a root folder (data_root): {how} into one")
    try:
        return fetch(key)
    except DownloadError as exc:  # a DataError, so that the command line reports it in one line
        raise DatasetError(str(exc)) from exc
