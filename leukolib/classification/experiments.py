"""Two experiments beyond the paper: segmentation as hard attention, and colour.

The hard-attention experiment (:func:`shortcut_experiment`)
-----------------------------------------------------------
Synthetic smears carry a background cue that predicts the class as strongly
as asked (:class:`~leukolib.data.synthetic.SyntheticDataset`'s ``shortcut``:
red-cell density and plasma tint). Models are trained where the cue is
perfect (``shortcut=1``) and tested on new smears where it still holds
(``1``), where it is independent of the class (``0``) and where it is reversed
(``-1``). A model that learned the cells keeps its accuracy; one that learned
the background falls to chance, or below it. The paper's claim is that the
segmented model, which never sees the background, is the first kind.
:func:`shortcut_gaps` gives how much more accuracy the raw models lost than the
segmented ones, with a bootstrap interval over the test smears.

The colour experiment (:func:`color_experiment`)
------------------------------------------------
In public sets the classes often differ in stain or acquisition, so a model
can score high on colour alone (the colour-only baseline of
:mod:`~leukolib.classification.baselines` measures how high). The chosen
models are trained again on grey images (``color="gray"``: the luminance in
all three channels, at training and at test), with everything else the same;
what accuracy survives does not come from colour.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukolib.classification.best import best_per_input
from leukolib.classification.grid import train_grid
from leukolib.classification.results import score_logits
from leukolib.classification.run import load_classifier_run
from leukolib.device import derive_seed
from leukolib.profiles import Profile, get_profile

__all__ = ["color_experiment", "shortcut_experiment", "shortcut_gaps", "shortcut_verdict"]


def shortcut_experiment(
    out_dir: str | os.PathLike,
    profile: str | Profile = "cpu",
    seed: int = 0,
    *,
    keys: Sequence[str] = ("segmented-relu-linear", "raw-relu-linear"),
    tests: Sequence[float] = (1.0, 0.0, -1.0),
    n_images: int | None = None,
    n_test: int | None = None,
    size: int | None = None,
    progress: bool = True,
    **train: Any,
) -> pd.DataFrame:
    """Train on a perfect background cue, test where it holds, vanishes and reverses.

    Parameters
    ----------
    out_dir : path
        The runs go to ``out_dir/<key>`` (resumable, as :func:`train_grid`).
    profile, seed :
        The profile's classification sizes; the training smears use ``seed``,
        the test smears a seed derived from it (other images).
    keys : sequence of str
        The models (default: one segmented and one raw).
    tests : sequence of float
        The ``shortcut`` of each test set.
    n_images, n_test, size : int, optional
        Training smears (default: half the profile's ``synthetic_images``: a
        perfect cue is learned from fewer images), test smears per cue (default:
        half as many) and their side (default: the profile's ``synthetic_size``).
    progress : bool
    **train
        Passed to :func:`train_grid` (``weights``, ``device``, ``epochs`` ...).

    Returns
    -------
    DataFrame
        One row per model and test set: ``model, shortcut, accuracy, CI low,
        CI high`` (the accuracy's exact Clopper-Pearson interval), ``n``;
        ``attrs["drop"]``: per model, the accuracy lost from
        ``shortcut=1`` to each other test; ``attrs["gap"]``: the records of
        :func:`shortcut_gaps`.
    """
    from leukolib.data import load_dataset

    c = get_profile(profile).classification
    n = int(n_images or max(16, c.synthetic_images // 2))
    side = int(size or c.synthetic_size)
    m = int(n_test or max(30, n // 2))
    train_set = load_dataset("synthetic", n_images=n, size=side, seed=seed, shortcut=1.0)
    train_grid(train_set, out_dir, profile, seed, keys=list(keys), progress=progress, **train)
    rows, correct, cells = [], {}, set()
    test_seed = derive_seed(seed, 1) % (2**31)
    for s in tests:
        # one seed for every test set: the same cells, only the background changes
        test_set = load_dataset("synthetic", n_images=m, size=side, seed=test_seed, shortcut=s)
        images = [smp.image for smp in test_set]
        cells.add(tuple((smp.label, smp.nucleus.tobytes()) for smp in test_set))
        for key in keys:
            run = load_classifier_run(Path(out_dir) / key, device=train.get("device"))
            logits = run.predict_images(images)
            sc = score_logits(test_set.labels, logits, test_set.class_names, seed=seed)
            correct[key, float(s)] = np.asarray(logits).argmax(axis=1) == np.asarray(
                test_set.labels)
            rows.append({"model": key, "shortcut": float(s), "accuracy": sc["accuracy"],
                         "CI low": sc["accuracy_ci"][0], "CI high": sc["accuracy_ci"][1],
                         "n": sc["n"]})
    frame = pd.DataFrame(rows)
    ref = frame[frame.shortcut == float(tests[0])].set_index("model")["accuracy"]
    frame.attrs["drop"] = {
        key: {float(s): float(ref[key] - frame[(frame.model == key) & (frame.shortcut == s)]
                              ["accuracy"].iloc[0]) for s in tests[1:]}
        for key in keys}
    frame.attrs["gap"] = _gap_records(correct, frame.attrs["drop"], list(keys),
                                      [float(t) for t in tests], seed, paired=len(cells) == 1)
    return frame


def _gap_records(correct: dict[tuple[str, float], np.ndarray],
                 drop: dict[str, dict[float, float]], keys: list[str], tests: list[float],
                 seed: int, paired: bool = True) -> list[dict[str, float]]:
    """Raw minus segmented accuracy lost from ``tests[0]`` to each other test, with intervals.

    ``paired``: the test sets hold the same smears (same cells, another
    background), so the per-smear differences are resampled together;
    otherwise each test set is resampled on its own.
    """
    from leukolib.stats import bootstrap_ci, stratified_bootstrap_ci

    seg = [k for k in keys if k.startswith("segmented")]
    raw = [k for k in keys if k.startswith("raw")]
    if not seg or not raw:
        return []

    def advantage(s: float) -> np.ndarray:
        # per test smear: raw right minus segmented right (both models see the same smears)
        return (np.mean([correct[k, s] for k in raw], axis=0)
                - np.mean([correct[k, s] for k in seg], axis=0))

    held = advantage(tests[0])
    out = []
    for s in tests[1:]:
        broken = advantage(s)
        if paired:
            per_smear = held - broken
            gap = float(per_smear.mean())
            lo, hi = bootstrap_ci(per_smear, n_boot=2000, seed=seed)
        else:
            values = np.concatenate([held, broken])
            first = np.arange(len(values)) < len(held)
            statistic = partial(_mean_difference, values, first)
            gap = statistic(np.arange(len(values)))
            lo, hi = stratified_bootstrap_ci(statistic, first, n_boot=2000, seed=seed)[0]
        out.append({"shortcut": s,
                    "segmented drop": float(np.mean([drop[k][s] for k in seg])),
                    "raw drop": float(np.mean([drop[k][s] for k in raw])),
                    "raw minus segmented": gap, "CI low": float(lo), "CI high": float(hi)})
    return out


def _mean_difference(values: np.ndarray, first: np.ndarray, idx: np.ndarray) -> float:
    """Mean of ``values[idx]`` in the first group minus the mean in the second."""
    return float(values[idx[first[idx]]].mean() - values[idx[~first[idx]]].mean())


def shortcut_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """How much more accuracy the raw models lost than the segmented ones, per broken cue.

    One row per test after the first (``shortcut`` 0: the cue absent, -1:
    reversed): the mean drop of the segmented and of the raw models from the
    test where the cue holds, their difference (``raw minus segmented``) and
    its 95 % bootstrap interval over the test smears (the same cells in every
    test set, resampled together; none, NaN, when every smear gives the same
    difference). The interval covers the test smears only:
    each model is trained once, so training's own variability is not in it.

    Parameters
    ----------
    frame : DataFrame
        :func:`shortcut_experiment`'s result.

    Returns
    -------
    DataFrame
        ``shortcut, segmented drop, raw drop, raw minus segmented, CI low,
        CI high`` (empty when only one kind of model was trained).
    """
    return pd.DataFrame(frame.attrs.get("gap", []),
                        columns=["shortcut", "segmented drop", "raw drop", "raw minus segmented",
                                 "CI low", "CI high"])


def color_experiment(
    dataset,
    grid_dir: str | os.PathLike,
    records: dict[str, dict[str, Any]],
    profile: str | Profile = "cpu",
    seed: int = 0,
    *,
    keys: Sequence[str] | None = None,
    progress: bool = True,
    **train: Any,
) -> pd.DataFrame:
    """Train chosen models again on grey images; compare their test accuracy with colour.

    Parameters
    ----------
    dataset : Dataset
        The grid's dataset.
    grid_dir : path
        The grid folder: the grey runs go to ``grid_dir/gray/<key>``.
    records : dict
        The grid's records (``key -> record``), in colour.
    profile, seed :
        As the grid's.
    keys : sequence of str, optional
        Default: the best segmented and the best raw model by mean validation
        accuracy (never by test accuracy).
    progress : bool
    **train
        Passed to :func:`train_grid` (as for the grid: ``segmenter``, ``crop``,
        ``weights`` ...).

    Returns
    -------
    DataFrame
        Per model: ``colour``, ``gray`` (test accuracy of the fold average),
        ``gray CI low``, ``gray CI high``, ``kept`` (gray over colour).
    """
    if keys is None:
        keys = list(best_per_input(records).values())
    gray = train_grid(dataset, Path(grid_dir) / "gray", profile, seed, keys=list(keys),
                      color="gray", progress=progress,
                      **{"mask_cache": Path(grid_dir) / "masks", **train})
    rows = {}
    for key in keys:
        c, g = records[key]["summary"], gray[key]["summary"]
        rows[key] = {"colour": c["test_acc"], "gray": g["test_acc"],
                     "gray CI low": g["test_acc_ci"][0], "gray CI high": g["test_acc_ci"][1],
                     "kept": g["test_acc"] / c["test_acc"] if c["test_acc"] else np.nan}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = "model"
    frame.attrs["records"] = gray
    return frame


def shortcut_verdict(frame: pd.DataFrame, margin: float = 0.15, chance: float = 1 / 3) -> str:
    """The hard-attention experiment in two sentences, from its numbers (for the book's prose).

    Compares the accuracy each kind of model loses when the cue is reversed
    (the last test), segmented against raw, with the target ``margin`` (in
    accuracy, 0.15 = 15 points), on the low end of its interval where the
    frame has one; then (:func:`shortcut_gaps`) the difference of the losses
    for every broken cue with its interval.

    Examples
    --------
    >>> f = pd.DataFrame({"model": ["segmented-relu-linear", "raw-relu-linear"] * 2,
    ...                   "shortcut": [1.0, 1.0, -1.0, -1.0], "accuracy": [0.9, 1.0, 0.85, 0.2]})
    >>> f.attrs["drop"] = {"segmented-relu-linear": {-1.0: 0.05}, "raw-relu-linear": {-1.0: 0.8}}
    >>> shortcut_verdict(f)[:60]
    'As the paper argues, the raw model learned the background: r'
    """
    drop = frame.attrs["drop"]
    last = min(float(s) for d in drop.values() for s in d)
    seg = [d[last] for k, d in drop.items() if k.startswith("segmented")]
    raw = [d[last] for k, d in drop.items() if k.startswith("raw")]
    if not seg or not raw:
        return "Only one kind of model was trained: nothing to compare."
    held = frame[frame.shortcut == frame.shortcut.max()]["accuracy"]
    if held.max() < chance + 0.2:
        return (f"Neither model learned the task at this size (at most {held.max():.0%} accuracy "
                "where the cue holds, near chance): the experiment says nothing here; run it "
                "under the cpu profile.")
    s, r = float(np.mean(seg)), float(np.mean(raw))

    def points(x: float) -> str:
        return f"lost {100 * x:.0f} points" if x >= 0 else f"gained {-100 * x:.0f} points"

    gaps = shortcut_gaps(frame)
    low = gaps["CI low"].iloc[-1] if len(gaps) else None
    low = None if low is None or not np.isfinite(low) else low  # no interval: the gap decides
    return _verdict(s, r, margin, points, low) + _gap_sentence(gaps, margin)


def _gap_sentence(gaps: pd.DataFrame, margin: float) -> str:
    """The raw-minus-segmented loss of every broken cue, with its interval (empty without it)."""
    if not len(gaps):
        return ""
    names = {0.0: "absent", -1.0: "reversed"}
    parts = [f"{100 * g['raw minus segmented']:.0f} points where the cue was "
             f"{names.get(float(g['shortcut']), f'set to {g.shortcut:g}')} ({_ci_words(g)})"
             for _, g in gaps.iterrows()]
    return (" The accuracy the raw model lost minus the accuracy the segmented one lost: "
            + " and ".join(parts) + f"; the experiment looks for at least {100 * margin:.0f}.")


def _ci_words(gap: pd.Series) -> str:
    """A gap's interval in points, or why it has none (every smear the same difference)."""
    lo, hi = gap["CI low"], gap["CI high"]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "the same on every smear: no interval"
    return f"95 % CI {100 * lo:.0f} to {100 * hi:.0f}"


def _verdict(s: float, r: float, margin: float, points: Callable[[float], str],
             low: float | None = None) -> str:
    """The first sentence, on the reversed cue; decided on the interval's low end when known."""
    if r - s >= margin and low is not None and low < margin:
        return (f"Reversing the cue, the raw model {points(r)} of accuracy and the segmented one "
                f"{points(s)}: the raw model relied more on the background, by the "
                f"{100 * margin:.0f} points this experiment looks for, but the interval of the "
                "difference reaches below that.")
    if r - s >= margin:
        return (f"As the paper argues, the raw model learned the background: reversing the cue, "
                f"it {points(r)} of accuracy, while the segmented model, which never saw the "
                f"background, {points(s)}.")
    if r - s > 0:
        return (f"Reversing the cue, the raw model {points(r)} of accuracy and the segmented one "
                f"{points(s)}: the raw model relied more on the background, but by less than the "
                f"{100 * margin:.0f} points this experiment looks for.")
    return (f"Against the paper's argument, reversing the cue the segmented model {points(s)} "
            f"of accuracy and the raw one {points(r)}: what reaches the segmented model through "
            "its mask (the stain of the nucleus, a mask that spills over) carried the cue.")
