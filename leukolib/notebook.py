"""What every notebook of the book does first and last.

A notebook's first code cell (tagged ``parameters``) sets ``profile``,
``dataset``, ``data_root``, ``output_dir`` and ``seed``; it then calls
:func:`setup`, which seeds every generator, picks the device, creates the
output folder and loads the dataset under the profile's size limits. At the
end :func:`save_results` writes the notebook's key numbers to
``output_dir/<notebook>.json``, which papermill runs, tests and the book's
tables read back.
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leukolib.data import Dataset, Subset, load_dataset
from leukolib.profiles import Profile, get_profile

__all__ = [
    "Run",
    "in_colab",
    "profile_dataset",
    "save_results",
    "seed_everything",
    "select_device",
    "setup",
]


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def select_device(prefer: str | None = None) -> str:
    """``"cuda"`` when a GPU is visible (or ``prefer`` says so), else ``"cpu"``."""
    if prefer:
        return prefer
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) for a reproducible run.

    On the CPU the same seed gives the same numbers; on a GPU some cuDNN
    kernels stay nondeterministic (see PyTorch's reproducibility notes).
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may still use the legacy global
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@dataclass
class Run:
    """The context of one notebook run.

    Attributes
    ----------
    name : str
        Notebook name (the JSON file is ``output_dir/<name>.json``).
    profile : Profile
    dataset : Dataset
        Loaded and limited to the profile's size.
    output_dir : Path
    seed : int
    device : str
    params : dict
        The parameters as given (recorded in the JSON).
    """

    name: str
    profile: Profile
    dataset: Dataset
    output_dir: Path
    seed: int
    device: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def unet_run_dir(self) -> Path:
        """Where this run's U-Net is trained (notebook 03) and found (notebook 04)."""
        return self.output_dir / f"unet_{self.dataset.name}_{self.profile.name}_seed{self.seed}"

    def path(self, filename: str) -> Path:
        """A file inside this run's output folder."""
        return self.output_dir / filename

    def save(self, results: dict[str, Any]) -> Path:
        """Write ``results`` (plus parameters and versions) to ``<name>.json``."""
        return save_results(self.output_dir, self.name, results, params=self.params)


def limit_dataset(dataset: Dataset, max_images: int | None, seed: int) -> Dataset:
    """A seeded random subset of at most ``max_images`` samples, stratified when labelled."""
    n = len(dataset)
    if max_images is None or n <= max_images:
        return dataset
    rng = np.random.default_rng(seed)
    labels = dataset.labels
    idx = None
    if labels is not None and len(np.unique(labels)) > 1:
        from sklearn.model_selection import train_test_split

        try:
            idx, _ = train_test_split(
                np.arange(n), train_size=max_images, stratify=labels, random_state=seed
            )
        except ValueError:  # a class too rare to stratify at this size: plain sampling
            idx = None
    if idx is None:
        idx = rng.choice(n, size=max_images, replace=False)
    return Subset(dataset, sorted(int(i) for i in idx))


def profile_dataset(
    name: str,
    root: str | os.PathLike | None,
    profile: str | Profile,
    seed: int = 0,
    **kwargs: Any,
) -> Dataset:
    """A dataset at the size a profile runs it.

    ``synthetic``: the profile's number and size of smears, generated with
    ``seed``; a real dataset: a seeded, stratified subset of at most the
    profile's ``max_images`` (all of it under ``cpu`` and ``paper``).

    Examples
    --------
    >>> ds = profile_dataset("synthetic", None, "smoke")
    >>> len(ds), ds[0].image.shape
    (12, (128, 128, 3))
    """
    prof = get_profile(profile)
    if name == "synthetic":
        options = {"n_images": prof.synthetic_images, "size": prof.synthetic_size, "seed": seed}
        return load_dataset("synthetic", **{**options, **kwargs})
    return limit_dataset(load_dataset(name, root, **kwargs), prof.max_images, seed)


def setup(
    name: str,
    profile: str | Profile = "cpu",
    dataset: str = "synthetic",
    data_root: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "outputs",
    seed: int = 0,
    device: str | None = None,
    **dataset_kwargs: Any,
) -> Run:
    """Prepare a notebook run: seeds, device, output folder and dataset.

    Parameters
    ----------
    name : str
        The notebook's name, e.g. ``"01_datasets"``.
    profile : str or Profile
        ``"smoke"``, ``"cpu"`` or ``"paper"``.
    dataset : str
        A name known to :func:`leukolib.data.load_dataset`.
    data_root : path, optional
        The dataset folder (not needed for ``"synthetic"``).
    output_dir : path
        Where the notebook writes its JSON and figures (created).
    seed : int
        Seed of every random generator.
    device : str, optional
        Force ``"cpu"`` or ``"cuda"``; default: CUDA when present.
    **dataset_kwargs
        Extra loader arguments (e.g. ``shortcut`` for synthetic smears).

    Returns
    -------
    Run
    """
    prof = get_profile(profile)
    seed_everything(seed)
    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    ds = profile_dataset(dataset, data_root, prof, seed, **dataset_kwargs)
    params = {
        "profile": prof.name,
        "dataset": dataset,
        "data_root": None if data_root is None else str(data_root),
        "output_dir": str(out),
        "seed": seed,
        **{k: v for k, v in dataset_kwargs.items() if isinstance(v, int | float | str | bool)},
    }
    return Run(name, prof, ds, out, seed, select_device(device), params)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def library_versions() -> dict[str, str]:
    """Versions of leukolib and the libraries its numbers depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("leukolib", "numpy", "opencv-python-headless", "scikit-image", "torch", "monai"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def save_results(
    output_dir: str | os.PathLike,
    name: str,
    results: dict[str, Any],
    params: dict[str, Any] | None = None,
) -> Path:
    """Write a notebook's key numbers to ``output_dir/<name>.json``.

    The file is the notebook's own record and is replaced on every run of
    the notebook. NumPy scalars and arrays are converted to JSON types.

    Returns
    -------
    Path
        The JSON file written.
    """
    out = Path(output_dir) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "notebook": name,
        "params": params or {},
        "versions": library_versions(),
        "results": results,
    }
    out.write_text(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")
    return out
