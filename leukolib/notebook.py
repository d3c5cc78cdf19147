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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leukolib.data import Dataset, profile_dataset
from leukolib.device import seed_everything, select_device
from leukolib.profiles import Profile, get_profile
from leukolib.run_cache import run_folder
from leukolib.runs import library_versions, write_json

__all__ = ["Run", "glue", "save_results", "setup"]


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
        """Where this run's U-Net is trained (notebook 03) and found (notebooks 04 and 07).

        ``output_dir/unet_<dataset>_<profile>_seed<seed>``, or under ``$LEUKOLIB_RUNS``
        keyed by the profile's segmentation settings and the data
        (:func:`leukolib.run_cache.run_folder`).
        """
        name = f"unet_{self.dataset.name}_{self.profile.name}_seed{self.seed}"
        settings = {"segmentation": self.profile.segmentation, "seed": self.seed}
        return run_folder(self.output_dir, name, settings, self.dataset)

    def path(self, filename: str) -> Path:
        """A file inside this run's output folder."""
        return self.output_dir / filename

    def save(self, results: dict[str, Any]) -> str:
        """Write ``results`` (plus parameters and versions) to ``<name>.json``.

        Returns the file's name relative to ``output_dir`` (what a notebook
        prints: never a path of the machine that ran it).
        """
        path = save_results(self.output_dir, self.name, results, params=self.params)
        return self.relative(path)

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to ``output_dir``: ``../`` for a shared run folder beside it.

        Unchanged when the two have no relative path (another drive).
        """
        try:
            return os.path.relpath(Path(path).resolve(), self.output_dir.resolve())
        except ValueError:
            return str(path)


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
        The dataset folder (not needed for ``"synthetic"``; for ``"jtsc"`` and
        ``"cellavision"`` an empty one means the cached copy, fetched when
        missing: :func:`leukolib.data.fetch`).
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
    payload = {
        "notebook": name,
        "params": params or {},
        "versions": library_versions(),
        "results": results,
    }
    return write_json(Path(output_dir) / f"{name}.json", payload)


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Make ``value`` available to the notebook's markdown as ``{glue:}`name```.

    With myst-nb (the book build) this is :func:`myst_nb.glue`; elsewhere
    (Colab, JupyterLab without myst-nb) the value is only displayed when
    ``display`` is true. Used so that no number is typed into prose. NumPy
    scalars are glued as Python numbers (their repr, ``np.float64(0.5)``,
    cannot be formatted by ``{glue:text}`name:.2f```).
    """
    if isinstance(value, np.generic):
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # outside the book: nothing to glue into
        if display:
            from IPython.display import display as show

            show(value)
        return value
    _glue(name, value, display=display)
    return value
