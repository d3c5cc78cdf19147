"""Run directories: a record of what was trained, its weights, and resumption.

Every trained model of leukolib (a k-fold U-Net, a k-fold classifier) lives in
a directory of its own::

    RUN_DIR/run.json      the record: format, status, config, dataset, folds,
                          curves, metrics, library versions, timings
    RUN_DIR/fold_00.pt    state dict of fold 0's selected model
    RUN_DIR/fold_01.ckpt  while fold 1 trains: its last finished epoch

:class:`RunDirectory` implements the rules every stage shares:

* a directory holding a run of the **same configuration** is resumed (finished
  folds are skipped, the fold in progress restarts from its checkpoint);
* one holding a run of **another configuration**, or anything else, is
  refused unless ``overwrite=True``, and then only the run's own files are
  deleted;
* JSON and weights are written atomically (a temporary file, then a rename),
  so an interruption never leaves half a file;
* weights are read with ``torch.load(..., weights_only=True)``: a run
  directory from elsewhere cannot execute code.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from leukolib.errors import LeukolibError

__all__ = [
    "RunDirectory",
    "RunError",
    "jsonable",
    "library_versions",
    "load_torch",
    "now",
    "read_json",
    "save_torch",
    "write_json",
]

RECORD = "run.json"


class RunError(LeukolibError, ValueError):
    """A run directory that cannot be used: missing, incomplete or of another config."""


def jsonable(obj: Any) -> Any:
    """``obj`` with NumPy scalars and arrays, paths and non-finite floats made JSON-ready.

    Non-finite floats become ``None``; mapping keys become strings.

    Examples
    --------
    >>> import numpy as np
    >>> jsonable({1: np.float32(0.5), "x": [np.nan, np.int64(3)]})
    {'1': 0.5, 'x': [None, 3]}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(jsonable(payload), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a clear :class:`RunError` names a file that is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc})") from exc


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically (a temporary file, then a rename)."""
    import torch

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_torch(path: str | os.PathLike, device: str = "cpu") -> Any:
    """``torch.load(..., weights_only=True)``: tensors and plain containers, never code."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: not found (the run is incomplete?)")
    return torch.load(path, map_location=device, weights_only=True)


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions of Python, leukolib and the libraries its numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("leukolib", "numpy", "opencv-python-headless", "scikit-image", "scikit-learn",
                "torch", "torchvision", "monai", "albumentations", "grad-cam"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


class RunDirectory:
    """One run directory of a given kind (its ``format`` string).

    Parameters
    ----------
    path : path
        The directory (created by :meth:`prepare`).
    format : str
        The record's ``format`` (e.g. ``"leukolib.unet-run/1"``); a directory
        holding a record of another format is not this kind of run.

    Examples
    --------
    >>> import tempfile
    >>> d = RunDirectory(tempfile.mkdtemp() + "/run", "demo/1")
    >>> d.prepare({"epochs": 2}) is None  # a fresh start
    True
    >>> d.write({"config": {"epochs": 2}, "status": "running"})
    >>> d.prepare({"epochs": 2})["status"]  # the same config: resume
    'running'
    """

    def __init__(self, path: str | os.PathLike, format: str) -> None:
        self.path = Path(path).expanduser()
        self.format = format

    @property
    def record_path(self) -> Path:
        """``RUN_DIR/run.json``."""
        return self.path / RECORD

    def weights(self, fold: int) -> Path:
        """The selected model of one fold."""
        return self.path / f"fold_{int(fold):02d}.pt"

    def checkpoint(self, fold: int) -> Path:
        """The last finished epoch of a fold in progress."""
        return self.path / f"fold_{int(fold):02d}.ckpt"

    def read(self) -> dict[str, Any] | None:
        """The record, or ``None`` when there is none.

        Raises
        ------
        RunError
            When ``run.json`` is not JSON or is a run of another kind.
        """
        if not self.record_path.is_file():
            return None
        record = read_json(self.record_path)
        if not isinstance(record, dict) or record.get("format") != self.format:
            got = record.get("format") if isinstance(record, dict) else None
            raise RunError(f"{self.record_path}: not a {self.format} run (format {got!r})")
        return record

    def write(self, record: dict[str, Any]) -> None:
        """Write the record atomically (``format`` is set)."""
        write_json(self.record_path, {"format": self.format, **record})

    def own_files(self) -> list[Path]:
        """The files this kind of run writes (deleted by ``overwrite``)."""
        pats = ("run.json", "run.json.tmp", "fold_*.pt", "fold_*.ckpt", "fold_*.tmp",
                "fold_*.pt.tmp", "fold_*.ckpt.tmp", "*.npz", "*.npz.tmp")
        return sorted({p for pat in pats for p in self.path.glob(pat)})

    def clear(self) -> None:
        """Delete the run's own files (nothing else in the directory)."""
        for p in self.own_files():
            p.unlink()

    def prepare(self, config: dict[str, Any], overwrite: bool = False) -> dict[str, Any] | None:
        """Make the directory ready for a run of ``config``.

        Returns
        -------
        dict or None
            The record to resume (same configuration), or ``None`` for a
            fresh start (the directory is then empty of run files).

        Raises
        ------
        RunError
            When the directory holds a run of another configuration, or other
            files, and ``overwrite`` is False.
        """
        if not self.path.exists():
            self.path.mkdir(parents=True)
            return None
        if not self.path.is_dir():
            raise RunError(f"{self.path}: exists and is not a directory")
        try:
            record = self.read()
        except RunError:
            if not overwrite:
                raise
            record = None
        if record is not None and record.get("config") == config:
            return record
        if any(self.path.iterdir()) and not overwrite:
            if record is not None:
                old = record.get("config", {})
                diff = ", ".join(k for k in sorted(set(old) | set(config))
                                 if old.get(k) != config.get(k))
                raise RunError(
                    f"{self.path} holds a run of another configuration (differs in: {diff}); "
                    "choose another directory or pass overwrite=True to replace it"
                )
            raise RunError(
                f"{self.path} is not empty and holds no {self.format} run; choose an empty "
                "directory or pass overwrite=True"
            )
        self.clear()
        return None
