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
The given rule (the global one) stays unless a candidate's mean is higher
(:meth:`FoldFusions.chosen`). The choice applies where that fold's model
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

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.sample import Sample
from leukolib.segmentation.ensemble import EnsembleParams, fuse

__all__ = ["FOLD_FUSION", "FOLD_THRESHOLDS", "PER_FOLD_LABEL", "FoldFusionRule", "FoldFusions",
           "choose_fold_fusions", "fold_candidates"]

#: Whether leukolib's ensemble takes each fold's rule on the run's own images (out of fold).
#: Decided by the protocol: ``segmentation.json``'s ``fold_fusion``.
FOLD_FUSION: bool = True

#: Appended to the ensemble's label where it takes each fold's rule.
PER_FOLD_LABEL = ("; on the run's own images, each fold's fusion and threshold chosen on "
                  "its validation images")

#: The U-Net thresholds each fold may choose for AND and OR (the protocol's, in order).
FOLD_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)

#: The soft vote's weights each fold may choose (the protocol's).
FOLD_SOFT_WEIGHTS: tuple[float, ...] = (0.6, 0.67, 0.75, 0.9)


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
        Why some folds have no rule (their validation images were not in the
        dataset), or ``""``.
    """

    base: EnsembleParams
    scores: pd.DataFrame
    n_val: dict[int, int] = field(default_factory=dict)
    note: str = ""

    @property
    def chosen(self) -> dict[int, str]:
        """Per fold, the candidate with the highest mean (``"global"`` unless beaten)."""
        out = {}
        for fold, row in self.scores.iterrows():
            best = row.idxmax()
            out[int(fold)] = best if row[best] > row["global"] else "global"
        return out

    def params(self, fold: int | None) -> EnsembleParams:
        """The rule of ``fold`` (``base`` for ``None`` or a fold without one)."""
        name = self.chosen.get(int(fold)) if fold is not None else None
        return fold_candidates(self.base)[name] if name else self.base

    def label(self) -> str:
        """The choices in words, e.g. ``"fold 0 SOFT w=0.67, fold 1 global ..."``."""
        return ", ".join(f"fold {k} {v}" for k, v in self.chosen.items())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: the base, every fold's choice, scores and images."""
        return {"base": self.base.to_dict(), "note": self.note,
                "folds": [{"fold": int(k), "chosen": self.chosen[int(k)],
                           "n_val": int(self.n_val.get(int(k), 0)),
                           "val_iou": {c: float(v) for c, v in row.items()}}
                          for k, row in self.scores.iterrows()]}


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
        The run's training set (its samples are found by id, and checked by
        their pixels against the run's record).
    base : EnsembleParams, optional
        The global rule (default: leukolib's ensemble).
    handcrafted : callable, optional
        ``handcrafted(image) -> mask`` (default: the handcrafted defaults).
    diameter : float, optional
        The set's nucleus diameter in pixels, as the predictor segments the
        set (a run in diameter mode); ``None``: each image's own estimate.
    progress : bool

    Returns
    -------
    FoldFusions

    Raises
    ------
    ValueError
        When no fold's validation images are in ``dataset`` (by id and pixels).
    """
    from tqdm.auto import tqdm

    from leukolib.metrics import segmentation_metrics
    from leukolib.segmentation.handcrafted import segment_nucleus

    b = base or EnsembleParams()
    hm_of = handcrafted or segment_nucleus
    cands = fold_candidates(b)
    index = {str(sid): i for i, sid in enumerate(dataset.ids)}
    rows, n_val, missing = {}, {}, []
    folds = run.record["folds"]
    for f in tqdm(folds, desc=f"fold rules of {run.dataset_name}", disable=not progress,
                  leave=False):
        k, ids = int(f["fold"]), [str(i) for i in f["val_ids"]]
        found = [index[i] for i in ids if i in index and _same_pixels(run, i, dataset[index[i]])]
        if len(found) < len(ids):
            missing.append(k)
        if not found:
            continue
        scores: dict[str, list[float]] = {c: [] for c in cands}
        for i in found:
            s: Sample = dataset[i]
            hm = np.asarray(hm_of(s.image), dtype=bool)
            p, _ = run.predict_proba_with_source(s.image, folds=k, diameter=diameter,
                                                 handcrafted_mask=hm)
            truth = np.asarray(s.nucleus, dtype=bool)
            for c, q in cands.items():
                scores[c].append(float(segmentation_metrics(fuse(hm, p, q), truth)["iou"]))
        rows[k] = {c: float(np.mean(v)) for c, v in scores.items()}
        n_val[k] = len(found)
    if not rows:
        raise ValueError(f"none of the validation images of {run.run_dir} is in dataset "
                         f"{getattr(dataset, 'name', '?')!r} (matched by id)")
    note = (f"folds {', '.join(map(str, missing))} had validation images missing from the "
            "dataset: their rules were chosen on the rest" if missing else "")
    scores = pd.DataFrame.from_dict(rows, orient="index")[list(cands)]
    return FoldFusions(b, scores.rename_axis("fold"), n_val, note)


def _same_pixels(run: Any, sid: str, sample: Sample) -> bool:
    """Whether ``sample`` is the training image ``sid`` by its recorded fingerprint."""
    from leukolib.data.fingerprint import image_fingerprint

    prints = run.record["dataset"].get("fingerprints") or {}
    return sid not in prints or prints[sid] == image_fingerprint(sample.image)


class FoldFusionRule:
    """The ensemble rule ``rule(hm, proba, sample)`` with each fold's own fusion.

    The fold rules are chosen (:func:`choose_fold_fusions`) on first use,
    through the predictor (:meth:`~leukolib.segmentation.unet.SegmentationPredictor.fold_fusions`);
    an image that no single fold held out takes ``base``.
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
