"""Where trained runs live when builds share them: folders keyed by configuration and data.

The notebooks name their run folders (the U-Net of chapter 3, the classifiers and
the hard-attention runs of chapter 5) with :func:`run_folder`:

* by default ``output_dir/<name>``, as always (Colab, JupyterLab, the
  benchmarks' ``--runs``), e.g. ``outputs/classifiers_synthetic_cpu_seed0``;
* when ``$LEUKOLIB_RUNS`` names a folder (the book build sets it to
  ``_build/cache/runs``), ``$LEUKOLIB_RUNS/<name>-<key>`` instead, where
  ``key`` hashes the stage's profile settings, the seed and the data's
  fingerprint (:func:`dataset_fingerprint`).

So every chapter and every build that trains the same configuration on the same
data finds the same run (:class:`~leukolib.runs.RunDirectory` resumes it, or
returns at once when it is complete): chapters 6 and 7 never retrain chapter 5's
models, and a later build retrains nothing. A changed profile trains into a
folder of its own beside the old one, never into (or out of) a run of another
configuration; what the key cannot see (a default changed in the library's
code) is still refused by the run directory itself, loudly.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leukolib.data.base import Dataset

__all__ = ["ENV_VAR", "dataset_fingerprint", "digest", "run_folder", "shared_runs_dir"]

#: Environment variable naming the folder of shared, configuration-keyed runs.
ENV_VAR = "LEUKOLIB_RUNS"


def digest(obj: Any, n: int | None = None) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys), optionally its first ``n`` hex digits.

    Examples
    --------
    >>> digest({"b": 1, "a": [1, 2]}, 8) == digest({"a": [1, 2], "b": 1}, 8)
    True
    """
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    h = hashlib.sha256(text.encode()).hexdigest()
    return h[:n] if n else h


def shared_runs_dir() -> Path | None:
    """The folder named by ``$LEUKOLIB_RUNS``, or ``None`` when it is unset."""
    folder = os.environ.get(ENV_VAR, "").strip()
    return Path(folder).expanduser() if folder else None


def _size(path: Path | None) -> int | None:
    try:
        return None if path is None else Path(path).stat().st_size
    except OSError:
        return None


def dataset_fingerprint(dataset: Dataset | str) -> dict[str, Any]:
    """What identifies a dataset's samples, cheaply (no image is decoded).

    Synthetic smears: the generator's settings (its :class:`SmearConfig`, seed
    and number of images). Image files: every sample's id, file name, file size
    and label (the runs check the pixels themselves, by their fingerprints).
    Always: the ids of the samples, in order (a subset is another dataset).

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> a = dataset_fingerprint(load_dataset("synthetic", n_images=6, size=64, seed=1))
    >>> b = dataset_fingerprint(load_dataset("synthetic", n_images=6, size=64, seed=2))
    >>> a["generator"]["seed"], a == b
    (1, False)
    """
    if isinstance(dataset, str):
        return {"name": dataset}
    from leukolib.data.base import Subset

    base = dataset
    while isinstance(base, Subset):
        base = base.dataset
    out: dict[str, Any] = {"name": dataset.name, "ids": digest([str(i) for i in dataset.ids])}
    config = getattr(base, "config", None)
    if is_dataclass(config) and hasattr(base, "seed"):  # synthetic smears
        out["generator"] = {"config": asdict(config), "seed": int(base.seed),
                            "n_images": len(base)}
    records = getattr(base, "records", None)
    if records:
        out["files"] = digest([(str(r.id), Path(r.image).name, _size(r.image),
                                None if r.mask is None else _size(r.mask), r.label)
                               for r in records])
    return out


def run_folder(output_dir: str | os.PathLike, name: str, settings: Mapping[str, Any],
               data: Dataset | str | None = None) -> Path:
    """The folder of a run (or a grid of runs): ``output_dir/name``, or keyed in ``$LEUKOLIB_RUNS``.

    Parameters
    ----------
    output_dir : path
        The notebook's output folder (used when ``$LEUKOLIB_RUNS`` is unset).
    name : str
        The folder's readable name, e.g. ``"classifiers_synthetic_cpu_seed0"``.
    settings : mapping
        Everything of the configuration the caller knows before training: the
        profile's stage settings, the seed (JSON-able; dataclasses allowed).
    data : Dataset or str, optional
        The training data (:func:`dataset_fingerprint`).

    Returns
    -------
    Path
        ``output_dir/name`` or ``$LEUKOLIB_RUNS/name-<12 hex digits>``.

    Examples
    --------
    >>> run_folder("outputs", "unet_synthetic_cpu_seed0", {"seed": 0}).as_posix()
    'outputs/unet_synthetic_cpu_seed0'
    """
    shared = shared_runs_dir()
    if shared is None:
        return Path(output_dir) / name
    from leukolib.data.duplicates import DEFAULT_RULE

    plain = {k: asdict(v) if is_dataclass(v) else v for k, v in settings.items()}
    fingerprint = None if data is None else dataset_fingerprint(data)
    # the rule that groups near duplicates decides every split: another rule, other runs
    key = {"settings": plain, "data": fingerprint, "grouping": DEFAULT_RULE.to_dict()}
    return shared / f"{name}-{digest(key, 12)}"
