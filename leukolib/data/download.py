"""Download the datasets that have a stable public address.

Only JTSC ("Dataset 1") and CellaVision ("Dataset 2") of Zheng et al. (2018)
are public (github.com/zxaoyou/segmentation_WBC, GPL-3.0). ALL-IDB is given by
its authors on request and the other sets come from their papers' pages: put
them in place by hand, in the layouts described in
:mod:`leukolib.data.datasets`.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from leukolib.errors import DownloadError

__all__ = ["SOURCES", "download"]

_ZHENG = "https://github.com/zxaoyou/segmentation_WBC/archive/refs/heads/master.zip"

#: Dataset name -> (archive URL, folder the loader needs).
SOURCES: dict[str, tuple[str, str]] = {
    "jtsc": (_ZHENG, "Dataset 1"),
    "cellavision": (_ZHENG, "Dataset 2"),
}

_BY_HAND = {
    "all_idb2": "ask the ALL-IDB authors (scotti.di.unimi.it/all) and copy img/ (and masks/)",
    "bloodseg": "get SMC_IDB from its authors and copy images/ and masks/",
    "leukemia_fab": "copy the ALL1/, ALL2/ and ALL3/ folders",
}


def download(name: str, dest: str | Path, timeout: float = 60.0) -> Path:
    """Download a public dataset into ``dest`` and return the dataset root.

    Files already in ``dest`` are never overwritten: if the dataset is there,
    nothing is downloaded.

    Parameters
    ----------
    name : str
        ``"jtsc"`` or ``"cellavision"``.
    dest : str or Path
        Folder to create or fill; it becomes the ``root`` of the loader.
    timeout : float
        Network timeout in seconds.

    Returns
    -------
    Path
        ``dest``, ready for ``load_dataset(name, dest)``.

    Raises
    ------
    DownloadError
        Offline, or the server did not answer; the message says where to put
        the files by hand.
    """
    dest = Path(dest).expanduser()
    key = name.lower()
    if key not in SOURCES:
        how = _BY_HAND.get(key, "see leukolib.data.datasets for the layouts")
        raise DownloadError(f"{name!r} has no public download; to use it, {how} into {dest}")
    url, folder = SOURCES[key]
    if (dest / folder).is_dir() and any((dest / folder).iterdir()):
        return dest
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            payload = resp.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DownloadError(
            f"could not download {name} from {url} ({exc}). Offline? Download the archive "
            f"elsewhere and unpack it so that '{dest / folder}' holds the images and masks and "
            f"the 'Class Labels of {folder}.csv' file sits in '{dest}'."
        ) from exc
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(io.BytesIO(payload)) as zf:
        zf.extractall(tmp)
        (top,) = [p for p in Path(tmp).iterdir() if p.is_dir()]
        for item in top.iterdir():
            target = dest / item.name
            if target.exists():
                continue  # never overwrite what the user has
            shutil.move(str(item), target)
    return dest
