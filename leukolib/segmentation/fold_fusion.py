"""Each fold's fusion rule, chosen on that fold's own validation images.

The protocol of :mod:`leukolib.segmentation.selection` chooses one fusion
rule and one U-Net threshold for every U-Net, across datasets. Each run's
own images hold a better-placed judge for that run: every fold of a k-fold
run kept some images out of its training to stop it early (``val_ids`` in
``run.json``). Those images are neither the fold's training images nor its
test images, so a choice made on them does not see the images the fold
is reported on.

On each fold's validation images, with that fold's own model at the set's
nucleus scale, every candidate of :func:`fold_candidates` (AND and OR at the
protocol's thresholds, the soft vote at its weights, with the rest of the
ensemble, area opening and fallbacks, as given) is scored by its mean IoU.
The given rule (the global one) stays unless a candidate's mean is higher by
more than :data:`TOLERANCE` (:meth:`FoldFusions.chosen`). The same images also
chose the fold's kept epoch (its best validation IoU), so the U-Net looks a
little better on them than on its test images, a bias towards the rules that
trust it more; the test images, which chose nothing, say whether the choice
held (``segmentation.json``). The choice applies where that fold's model
segments an image: the run's own images, out of fold. An image that no fold
held out (another dataset, a user's new images) is segmented by the average
of all folds, and keeps the global rule: the validation images measured each
fold on its own domain only.

Whether the library's ensemble uses the fold rules at all (:data:`FOLD_FUSION`)
was decided by the protocol of ``benchmarks/segmentation_report.py`` (a test
checks that the constant is the recorded decision).

Examples
--------
>>> list(fold_candidates())[:4]
['global', 'AND t=0.3', 'AND t=0.4', 'AND t=0.5']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.sample import Sample
from leukolib.errors import LeukolibError
from leukolib.segmentation.ensemble import EnsembleParams, fuse
from leukolib.segmentation.selection import SOFT_WEIGHTS, THRESHOLDS

__all__ = ["FOLD_FUSION", "FOLD_SOFT_WEIGHTS", "FOLD_THRESHOLDS", "PER_FOLD_LABEL", "TOLERANCE",
           "FoldFusionRule", "FoldFusions", "NoValidationImages", "choose_fold_fusions",
           "fold_candidates"]

#: Whether leukolib's ensemble takes each fold's rule on the run's own images (out of fold).
#: Decided by the protocol: ``segmentation.json``'s ``fold_fusion``.
FOLD_FUSION: bool = True

#: Appended to the ensemble's label where it takes each fold's rule.
PER_FOLD_LABEL = ("; on the run's own images, each fold's fusion and threshold chosen on "
                  "its validation images")

#: The U-Net thresholds each fold may choose for AND and OR (the protocol's, in order).
FOLD_THRESHOLDS: tuple[float, ...] = tuple(sorted(THRESHOLDS))

#: The soft vote's weights each fold may choose (the protocol's).
FOLD_SOFT_WEIGHTS: tuple[float, ...] = SOFT_WEIGHTS

#: The mean IoU a candidate must gain over the global rule on a fold's validation images (the
#: loss the protocol's no-harm rule forgives: noise of a mean over images).
TOLERANCE: float = 1e-3


class NoValidationImages(LeukolibError, ValueError):
    """None of a run's validation images is in the image set: no fold can choose."""


def fold_candidates(base: EnsembleParams | None = None) -> dict[str, EnsembleParams]:
    """The rules a fold chooses from: ``"global"`` (``base`` itself) first.

    Every candidate is ``base`` with another fusion, threshold or soft weight;
    its area opening and fallbacks stay ``base``'s.

    Examples
    --------
    >>> c = fold_candidates()
    >>> len(c), c["SOFT w=0.67"].fusion, c["OR t=0.6"].threshold
    (15, 'soft', 0.6)
    """
    b = base or EnsembleParams()
    out = {"global": b}
    for fusion in ("and", "or"):
        for t in FOLD_THRESHOLDS:
            out[f"{fusion.upper()} t={t:g}"] = replace(b, fusion=fusion, threshold=t)
    for w in FOLD_SOFT_WEIGHTS:
        out[f"SOFT w={w:g}"] = replace(b, fusion="soft", soft_weight=w)
    return out


@dataclass
class FoldFusions:
    """Each fold's rule, and the validation scores it was chosen on.

    Attributes
    ----------
    base : EnsembleParams
        The global rule (the incumbent of every fold).
    scores : DataFrame
        Folds (rows) by candidates (columns, :func:`fold_candidates`'s
        order): the mean IoU on the fold's validation images.
    n_val : dict of int to int
        The validation images each fold was scored on.
    note : str
        Why some folds chose on fewer images (validation images missing from
        the dataset, or unreadable), or ``""``.
    seconds : float
        The time the choice took (one U-Net pass over the validation images).
    """

    base: EnsembleParams
    scores: pd.DataFrame
    n_val: dict[int, int] = field(default_factory=dict)
    note: str = ""
    seconds: float = 0.0

    @cached_property
    def chosen(self) -> dict[int, str]:
        """Per fold, the best candidate if it beats ``"global"`` by :data:`TOLERANCE`."""
        out = {}
        for fold, row in self.scores.iterrows():
            best = row.idxmax()
            out[int(fold)] = best if row[best] > row["global"] + TOLERANCE else "global"
        return out

    @cached_property
    def _rules(self) -> dict[str, EnsembleParams]:
        return fold_candidates(self.base)

    def params(self, fold: int | None) -> EnsembleParams:
        """The rule of ``fold`` (``base`` for ``None`` or a fold without one)."""
        name = self.chosen.get(int(fold)) if fold is not None else None
        return self._rules[name] if name else self.base

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: the base, every fold's choice, scores and images."""
        return {"base": self.base.to_dict(), "note": self.note, "seconds": self.seconds,
                "folds": [{"fold": int(k), "chosen": self.chosen[int(k)],
                           "n_val": int(self.n_val.get(int(k), 0)),
                           "val_iou": {c: float(v) for c, v in row.items()}}
                          for k, row in self.scores.iterrows()]}


def _validation_index(run: Any, dataset: Any, val_ids: list[str]) -> dict[str, int]:
    """Where each validation image is in ``dataset``: by id, else by its pixels.

    A set that holds the run's images under other names (renamed files, another
    folder layout) is recognised by the fingerprints the run recorded; its
    images are read only when some validation id is missing and the set has
    images under ids the run does not know.
    """
    from leukolib.data.fingerprint import image_fingerprint

    index = {str(sid): i for i, sid in enumerate(dataset.ids)}
    prints = run.record["dataset"].get("fingerprints") or {}
    wanted: dict[str, list[str]] = {}  # identical validation images share a fingerprint
    for sid in val_ids:
        if sid not in index and sid in prints:
            wanted.setdefault(prints[sid], []).append(sid)
    known = {str(i) for i in run.record["dataset"]["ids"]}
    others = [i for i, sid in enumerate(dataset.ids) if str(sid) not in known]
    found = {}
    for i in others if wanted else []:
        try:
            fp = image_fingerprint(dataset[i].image)
        except (LeukolibError, OSError):  # reported where the set is segmented
            continue
        for sid in wanted.pop(fp, []):
            found[sid] = i
        if not wanted:
            break
    return {**index, **found}


def choose_fold_fusions(
    run: Any,
    dataset: Any,
    base: EnsembleParams | None = None,
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
    diameter: float | None = None,
    progress: bool = True,
) -> FoldFusions:
    """Choose each fold's rule on its validation images (the module docstring).

    Parameters
    ----------
    run : UNetRun
        The trained run (its ``record["folds"]`` name each fold's ``val_ids``).
    dataset : Dataset
        The run's training set (its samples are found by id, else by their
        pixels, and checked by their pixels:
        :meth:`~leukolib.segmentation.unet.UNetRun.seen_by`).
    base : EnsembleParams, optional
        The global rule (default: leukolib's ensemble).
    handcrafted : callable, optional
        ``handcrafted(image) -> mask`` (default: the handcrafted defaults).
    diameter : float, optional
        The set's nucleus diameter in pixels, as the predictor segments the
        set (a run in diameter mode); ``None``: each image's own estimate.
    progress : bool
        A progress bar over the folds on stderr.

    Returns
    -------
    FoldFusions

    Raises
    ------
    NoValidationImages
        When no fold's validation images are in ``dataset`` (by id or by
        their pixels, checked against the run's record).
    """
    from tqdm.auto import tqdm

    from leukolib.data.fingerprint import image_fingerprint
    from leukolib.metrics import segmentation_metrics
    from leukolib.segmentation.handcrafted import segment_nucleus

    t0 = time.perf_counter()
    b = base or EnsembleParams()
    hm_of = handcrafted or segment_nucleus
    cands = fold_candidates(b)
    folds = run.record["folds"]
    index = _validation_index(run, dataset, [str(i) for f in folds for i in f["val_ids"]])
    prints = run.record["dataset"].get("fingerprints") or {}
    rows, n_val, short, unreadable = {}, {}, [], []
    for f in tqdm(folds, desc=f"fold rules of {run.dataset_name}", disable=not progress,
                  leave=False):
        k, ids = int(f["fold"]), [str(i) for i in f["val_ids"]]
        scores: dict[str, list[float]] = {c: [] for c in cands}
        for sid in ids:
            if sid not in index:
                continue
            try:
                s: Sample = dataset[index[sid]]
            except (LeukolibError, OSError):  # reported where the set is segmented
                unreadable.append(sid)
                continue
            # another image under the same id: its recorded pixels, else the folds that saw it
            recorded = prints.get(sid)
            if (image_fingerprint(s.image) != recorded if recorded
                    else k not in (run.seen_by(s.image) or ())):
                continue
            hm = np.asarray(hm_of(s.image), dtype=bool)
            p, _ = run.predict_proba_with_source(s.image, folds=k, diameter=diameter,
                                                 handcrafted_mask=hm)
            truth = np.asarray(s.nucleus, dtype=bool)
            for c, q in cands.items():
                scores[c].append(float(segmentation_metrics(fuse(hm, p, q), truth)["iou"]))
        n_val[k] = len(scores["global"])
        if n_val[k] < len(ids):
            short.append(k)
        if n_val[k]:
            rows[k] = {c: float(np.mean(v)) for c, v in scores.items()}
    if not rows:
        raise NoValidationImages(
            f"none of the validation images of {run.run_dir} is in dataset "
            f"{getattr(dataset, 'name', '?')!r} (looked up by id and by pixels)")
    note = ""
    if short:
        note = (f"folds {', '.join(map(str, short))} chose on fewer validation images than they "
                "kept (missing from the set, other pixels under their id, or unreadable"
                + (f": {', '.join(unreadable)}" if unreadable else "") + ")")
    scores = pd.DataFrame.from_dict(rows, orient="index")[list(cands)]
    return FoldFusions(b, scores.rename_axis("fold"), {k: v for k, v in n_val.items() if v},
                       note, time.perf_counter() - t0)


class FoldFusionRule:
    """The ensemble rule ``rule(hm, proba, sample)`` with each fold's own fusion.

    The fold rules are chosen (:func:`choose_fold_fusions`) once, through the
    predictor (:meth:`~leukolib.segmentation.unet.SegmentationPredictor.fold_fusions`);
    an image that no single fold held out takes ``base``. Used whatever
    :data:`FOLD_FUSION` says (the protocol measures it with this rule); the
    library's ensemble asks :data:`FOLD_FUSION` before it builds one.
    """

    per_sample = True  # the evaluation passes the sample: its fold decides the rule

    def __init__(self, deep: Any, base: EnsembleParams,
                 handcrafted: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.deep, self.base, self.handcrafted = deep, base, handcrafted

    def params_for(self, sample: Sample) -> EnsembleParams:
        """The rule of the fold that segments ``sample`` (``base`` where none alone does)."""
        rules = self.deep.fold_fusions(self.base, self.handcrafted)
        if rules is None:
            return self.base
        return rules.params(self.deep.fold_of(sample))

    def __call__(self, hm: np.ndarray, p: np.ndarray, sample: Sample) -> np.ndarray:
        """The fused mask of ``sample`` under its fold's rule."""
        return fuse(hm, p, self.params_for(sample))
