"""Fetch the public datasets by name into a cache, checked file by file.

Only JTSC ("Dataset 1") and CellaVision ("Dataset 2") of Zheng et al. (2018)
are public. Both come in one archive of github.com/zxaoyou/segmentation_WBC
(GPL-3.0; its ``LICENSE`` is kept beside the data), which :func:`fetch`
downloads with `pooch <https://www.fatiando.org/pooch>`_ (progress bar,
timeout), unpacks and checks against a manifest shipped with leukolib.
:func:`~leukolib.data.load_dataset` calls :func:`fetch` when ``jtsc`` or
``cellavision`` is asked for without a root, so a notebook with
``dataset = "jtsc"`` and an empty ``data_root`` needs nothing else.

ALL-IDB is given by its authors on request and the other sets come from their
papers' pages: put them in place by hand, in the layouts described in
:mod:`leukolib.data.datasets`, and pass their folder as the root.

Cache
-----
The folder named by the environment variable ``LEUKOLIB_DATA`` when it is
set, else ``pooch.os_cache("leukolib")`` (``~/.cache/leukolib`` on Linux).
The archive unpacks to ``CACHE/segmentation_WBC/``, the repository's own
layout, so a copy of the repository put there by hand (on a machine without
network) is used as it is. Files in the cache are never overwritten nor
deleted: an incomplete or changed copy is reported, naming the file.

Checks
------
The archive's own bytes are not checked: GitHub builds archives on the fly and
their bytes have changed before for the same commit. The unpacked content is:
the size and SHA-256 of every file the ``jtsc`` loader reads (and the licence)
are listed in ``manifests/jtsc.csv``, written by :func:`write_manifest` from a
copy of Dataset 1 as published. ``cellavision`` has no manifest: leukolib's
developers have no copy of Dataset 2 to hash, so rather than invent checksums
only the counts the publication gives are checked (100 images, 100 masks).
"""

from __future__ import annotations

import csv
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from leukolib.data.fingerprint import file_sha256
from leukolib.errors import DatasetError, DownloadError

__all__ = [
    "ENV_VAR",
    "SOURCES",
    "data_dir",
    "download",
    "fetch",
    "verify",
    "where_to_get",
    "write_manifest",
]

#: Environment variable that overrides the cache folder.
ENV_VAR = "LEUKOLIB_DATA"

_REPO = "github.com/zxaoyou/segmentation_WBC"
# A commit, not the branch, so the archive cannot move under the manifest: the
# latest commit known here (its README.rst is the one beside the published data).
# If it ever lacks a file, verify() names it.
_COMMIT = "fa9c01622f52bccb9aeb8a6f2628f564e377767d"
_ZHENG = f"https://{_REPO}/archive/{_COMMIT}.zip"
_CACHE_FOLDER = "segmentation_WBC"  # the archive's root, inside the cache
_LICENCE = "LICENSE"

#: Dataset name -> (archive URL, folder the loader needs).
SOURCES: dict[str, tuple[str, str]] = {
    "jtsc": (_ZHENG, "Dataset 1"),
    "cellavision": (_ZHENG, "Dataset 2"),
}

_MANIFEST_DIR = Path(__file__).with_name("manifests")

# No copy of Dataset 2 was at hand to hash: its counts, from the publication, are
# all that is checked (see the module docstring).
_COUNTS: dict[str, dict[str, int]] = {"cellavision": {".bmp": 100, ".png": 100}}

_BY_HAND = {
    "all_idb2": "ask the ALL-IDB authors (scotti.di.unimi.it/all) and copy img/ (and masks/)",
    "bloodseg": "get SMC_IDB from its authors and copy images/ and masks/",
    "leukemia_fab": "copy the ALL1/, ALL2/ and ALL3/ folders",
    "paired": "put your images/ and masks/ folders",
    "imagefolder": "put one sub-folder of images per class",
}


def _key(name: str) -> str:
    return name.lower().replace("-", "_")


def where_to_get(name: str) -> str:
    """How to get a dataset that has no public download, as a clause of a sentence.

    Examples
    --------
    >>> where_to_get("bloodseg")
    'get SMC_IDB from its authors and copy images/ and masks/'
    """
    return _BY_HAND.get(_key(name), "see leukolib.data.datasets for the layouts")


def data_dir() -> Path:
    """The cache folder: ``$LEUKOLIB_DATA``, else ``pooch.os_cache("leukolib")``."""
    folder = os.environ.get(ENV_VAR, "").strip()
    if folder:
        return Path(folder).expanduser()
    import pooch  # here: importing leukolib stays fast

    return Path(pooch.os_cache("leukolib"))


def _public(name: str, dest: Path) -> str:
    key = _key(name)
    if key not in SOURCES:
        raise DownloadError(
            f"{name!r} has no public download; to use it, {where_to_get(key)} into {dest}"
        )
    return key


def _what(key: str) -> str:
    folder = SOURCES[key][1]
    return f"the '{folder}' folder, 'Class Labels of {folder}.csv' and {_LICENCE} of {_REPO}"


def _short(exc: BaseException) -> str:
    """An exception as a few words on one line (requests' messages run long)."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 120 else text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# ----------------------------------------------------------------------------- download


def fetch(name: str, progressbar: bool = True, timeout: float = 60.0) -> Path:
    """The cached root of a public dataset, downloaded and checked when missing.

    Nothing is downloaded when the dataset is in the cache (:func:`data_dir`);
    its files are checked against the manifest every time.

    Parameters
    ----------
    name : str
        ``"jtsc"`` or ``"cellavision"``.
    progressbar : bool
        Show a progress bar while downloading.
    timeout : float
        Network timeout in seconds.

    Returns
    -------
    Path
        ``data_dir() / "segmentation_WBC"``, ready for ``load_dataset(name, root)``.

    Raises
    ------
    DownloadError
        The dataset is not in the cache and cannot be downloaded (offline):
        the one-line message names the folder to put the files in.
    DatasetError
        The cache holds an incomplete or changed copy: the message names the file.
    """
    root = data_dir() / _CACHE_FOLDER
    key = _public(name, root)
    hint = (
        f"without network, put {_what(key)} in {root}, set {ENV_VAR} to a folder that "
        f"holds {_CACHE_FOLDER}/, or pass a copy's folder as root (data_root, --root)"
    )
    _download(key, root, progressbar, timeout, hint)
    return verify(key, root)


def download(name: str, dest: str | Path, timeout: float = 60.0, progressbar: bool = True) -> Path:
    """Download a public dataset into ``dest`` and return the dataset root.

    Files already in ``dest`` are never overwritten: if the dataset's folder
    is there, nothing is downloaded (check it with :func:`verify`). Use
    :func:`fetch` to let leukolib choose the folder.

    Parameters
    ----------
    name : str
        ``"jtsc"`` or ``"cellavision"``.
    dest : str or Path
        Folder to create or fill; it becomes the ``root`` of the loader.
    timeout : float
        Network timeout in seconds.
    progressbar : bool
        Show a progress bar while downloading.

    Returns
    -------
    Path
        ``dest``, ready for ``load_dataset(name, dest)``.

    Raises
    ------
    DownloadError
        Offline, or the server did not answer; the message says where to put
        the files by hand.
    DatasetError
        The downloaded files differ from the published ones.
    """
    dest = Path(dest).expanduser()
    key = _public(name, dest)
    hint = f"without network, put {_what(key)} in {dest}"
    if _download(key, dest, progressbar, timeout, hint):
        verify(key, dest)
    return dest


def _download(key: str, dest: Path, progressbar: bool, timeout: float, hint: str) -> bool:
    """Download and unpack ``key``'s archive into ``dest`` unless its folder is there."""
    folder = dest / SOURCES[key][1]
    if folder.is_dir() and any(folder.iterdir()):
        return False
    new_parent = not dest.parent.exists()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Work beside dest: the final move is a rename, so no half-unpacked dest appears.
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".leukolib-") as tmp:
            archive = _retrieve(SOURCES[key][0], Path(tmp), progressbar, timeout)
            _unpack(archive, Path(tmp) / "unpacked", dest)
    except OSError as exc:  # DownloadError, or disk full, no write permission
        if new_parent and dest.parent.is_dir() and not any(dest.parent.iterdir()):
            dest.parent.rmdir()  # offline: leave no empty cache folder behind
        if isinstance(exc, DownloadError):
            raise DownloadError(f"cannot download {key!r} ({exc}); {hint}") from exc
        raise DownloadError(f"cannot download {key!r} into {dest} ({_short(exc)}); {hint}") from exc
    return True


def _retrieve(url: str, folder: Path, progressbar: bool, timeout: float) -> Path:
    """Download ``url`` into ``folder`` with pooch; one-line DownloadError when it fails."""
    import pooch
    import requests  # pooch's HTTP library, for its errors

    downloader = pooch.HTTPDownloader(progressbar=progressbar, timeout=timeout)
    host = url.split("/")[2]
    try:
        with _quiet_pooch():
            path = pooch.retrieve(url, None, "archive.zip", folder, downloader=downloader)
    except requests.Timeout as exc:
        raise DownloadError(f"no answer from {host} within {timeout:g} s") from exc
    except requests.ConnectionError as exc:
        raise DownloadError(f"no connection to {host}") from exc
    except OSError as exc:  # HTTP errors (requests' errors are OSErrors), disk full
        raise DownloadError(f"{url}: {_short(exc)}") from exc
    return Path(path)


@contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's advice to pin the archive's hash: the content is checked instead."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


def _unpack(archive: Path, work: Path, dest: Path) -> None:
    """Unpack the archive's single top folder into ``dest``, adding only missing items."""
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(work)  # extractall drops '..' and absolute parts of names
    except zipfile.BadZipFile as exc:
        raise DownloadError(f"{archive.name} is not a zip archive ({exc})") from exc
    tops = [p for p in work.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise DownloadError(f"{archive.name} does not hold one top folder")
    if not dest.exists():
        tops[0].rename(dest)
        return
    for item in tops[0].iterdir():
        target = dest / item.name
        if not target.exists():  # never overwrite what the user has
            item.rename(target)


# ----------------------------------------------------------------------------- checks


def _dataset_files(key: str, root: Path) -> list[str]:
    """The files a manifest lists: the dataset's folder, its labels and the licence."""
    folder = SOURCES[key][1]
    files = sorted(
        p.relative_to(root).as_posix() for p in (root / folder).rglob("*") if p.is_file()
    )
    return [_LICENCE, f"Class Labels of {folder}.csv", *files]


def _read_manifest(key: str) -> list[tuple[str, int, str]]:
    path = _MANIFEST_DIR / f"{key}.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return [(r["path"], int(r["bytes"]), r["sha256"]) for r in csv.DictReader(fh)]


def write_manifest(name: str, root: str | Path, out: str | Path | None = None) -> Path:
    """Write the size and SHA-256 of a dataset's files to a CSV manifest.

    The manifest shipped for ``jtsc`` was written from a copy of the
    published Dataset 1 (the repository's layout)::

        write_manifest("jtsc", "../shared/data/segmentation_WBC")

    Parameters
    ----------
    name : str
        ``"jtsc"`` or ``"cellavision"``.
    root : str or Path
        A complete copy of the dataset, as published.
    out : str or Path, optional
        The CSV to write; default: the package's ``manifests/<name>.csv``.

    Returns
    -------
    Path
        The manifest written (columns ``path``, ``bytes``, ``sha256``).
    """
    root = Path(root).expanduser()
    key = _public(name, root)
    out = Path(out) if out is not None else _MANIFEST_DIR / f"{key}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "bytes", "sha256"])
        for rel in _dataset_files(key, root):
            path = root / rel
            writer.writerow([rel, path.stat().st_size, file_sha256(path)])
    return out


def verify(name: str, root: str | Path) -> Path:
    """Check a copy of a public dataset against what was published.

    ``jtsc``: every file of the manifest is there with its size and SHA-256.
    ``cellavision``: the number of images and masks (no manifest, see the
    module's notes). Both: the labels and the archive's licence are there.
    Extra files are allowed.

    Parameters
    ----------
    name : str
        ``"jtsc"`` or ``"cellavision"``.
    root : str or Path
        The folder that holds ``Dataset N/``.

    Returns
    -------
    Path
        ``root``.

    Raises
    ------
    DatasetError
        A file is missing or differs; the message names it.
    """
    root = Path(root).expanduser()
    key = _public(name, root)
    fix = (
        f"an incomplete or changed copy of {_REPO}: "
        f"replace the file, or remove {root} to fetch it again"
    )
    if key in _COUNTS:
        _check_counts(key, root, fix)
    else:
        _check_manifest(key, root, fix)
    return root


def _check_manifest(key: str, root: Path, fix: str) -> None:
    manifest = _read_manifest(key)
    for rel, size, sha in manifest:
        path = root / rel
        if not path.is_file():
            raise DatasetError(f"{path}: missing ({fix})")
        if path.stat().st_size != size or file_sha256(path) != sha:
            raise DatasetError(f"{path}: differs from the published file ({fix})")
    # A file added to the dataset's folder would be loaded as part of the set.
    listed = {rel for rel, _, _ in manifest}
    for rel in _dataset_files(key, root):
        if rel not in listed and not Path(rel).name.startswith("."):
            raise DatasetError(f"{root / rel}: not a file of the published set ({fix})")


def _check_counts(key: str, root: Path, fix: str) -> None:
    folder_name = SOURCES[key][1]
    for rel in (_LICENCE, f"Class Labels of {folder_name}.csv"):
        if not (root / rel).is_file():
            raise DatasetError(f"{root / rel}: missing ({fix})")
    folder = root / folder_name
    if not folder.is_dir():
        raise DatasetError(f"{folder}: missing ({fix})")
    for suffix, expected in _COUNTS[key].items():
        found = sum(1 for p in folder.iterdir() if p.suffix.lower() == suffix)
        if found != expected:
            raise DatasetError(f"{folder}: {found} {suffix} files, {expected} published ({fix})")
