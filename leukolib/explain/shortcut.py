"""The runs of chapter 5's hard-attention experiment, for their maps.

:func:`leukolib.classification.experiments.shortcut_experiment` trains a
segmented and a raw model on synthetic smears whose background gives the class
away (``shortcut=1``: red-cell density and plasma tint). Accuracy alone tells
whether a model cheated only once the cue is removed; its maps tell it on the
very images it was trained for: a model that learned the background puts its
energy off the nucleus. :func:`shortcut_grid` returns those runs and the
smears they were trained on (their test split is looked up there by id and
checked pixel by pixel), training them first when chapter 5 did not.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from leukolib.profiles import Profile, get_profile

__all__ = ["SHORTCUT_KEYS", "shortcut_folder", "shortcut_grid"]

#: The experiment's two models (its default).
SHORTCUT_KEYS = ("segmented-relu-linear", "raw-relu-linear")


def shortcut_folder(output_dir: str | os.PathLike, profile: str | Profile, seed: int) -> Path:
    """Where chapter 5 trains the experiment: ``output_dir/shortcut_<profile>_seed<seed>``.

    Or under ``$LEUKOLIB_RUNS``, keyed by the profile's classification settings
    (they set the smears too): :func:`leukolib.run_cache.run_folder`.

    Examples
    --------
    >>> shortcut_folder("outputs", "cpu", 0).as_posix()
    'outputs/shortcut_cpu_seed0'
    """
    from leukolib.run_cache import run_folder

    prof = get_profile(profile)
    settings = {"classification": prof.classification, "seed": int(seed), "shortcut": 1.0}
    return run_folder(output_dir, f"shortcut_{prof.name}_seed{int(seed)}", settings)


def shortcut_grid(output_dir: str | os.PathLike, profile: str | Profile, seed: int = 0,
                  device: str | None = None, train: bool = True) -> tuple[Any, dict[str, Any]]:
    """The experiment's training smears and its complete runs (trained first with ``train``).

    Returns
    -------
    (Dataset, dict)
        The ``shortcut=1`` smears of the profile's classification size, and
        ``key -> ClassifierRun`` of the complete runs found.
    """
    from leukolib.classification import load_classifier_run
    from leukolib.classification.experiments import shortcut_experiment
    from leukolib.data import load_dataset
    from leukolib.runs import RunError

    prof = get_profile(profile)
    folder = shortcut_folder(output_dir, prof, seed)
    if train:  # resumes, or returns at once (after scoring its test sets) when complete
        shortcut_experiment(folder, prof, seed, device=device, progress=False)
    runs = {}
    for key in SHORTCUT_KEYS:
        try:
            runs[key] = load_classifier_run(folder / key, device=device)
        except RunError:
            continue
    # the smears as shortcut_experiment draws them, as many as the runs record; a mismatch is
    # caught later, image by image, by the fingerprints the runs keep
    first = next(iter(runs.values()), None)
    n = int((first.record.get("dataset") or {}).get("n_images", 0)) if first else 0
    c = prof.classification
    data = load_dataset("synthetic", n_images=n or max(16, c.synthetic_images // 2),
                        size=c.synthetic_size, seed=seed, shortcut=1.0)
    return data, runs
