"""How the segmentation defaults were chosen: the candidates and their scores.

Four defaults of the segmentation are measurements, not the paper's: where
(and whether) the handcrafted dilation goes and whether its radius and the
area threshold scale with the image; the U-Net's probability threshold; the
fusion rule; and the ensemble's area opening. Each was chosen by the rule of
:mod:`leukolib.selection` (the paper's value stays unless a candidate beats
it on every choosing dataset by more than the spread of its gains), in this
order, each with the choices before it fixed:

1. :func:`handcrafted_candidates`, scored on each dataset's images;
2. :data:`THRESHOLDS` for DEEP alone, on each dataset's out-of-fold U-Net;
3. :func:`fusion_candidates`, both in-domain (out-of-fold) and across
   datasets (a U-Net trained on one dataset, applied to another);
4. :data:`AREA_OPENINGS` after the chosen fusion;
5. :func:`fallback_candidates`, when the ensemble keeps the handcrafted mask
   alone: never, below a disagreement (:data:`FALLBACKS`, the IoU of HM and
   DEEP), above an uncertainty of the U-Net (:data:`ENTROPIES`, its mean
   entropy in bits) or either, across datasets and in-domain together, by the
   no-harm rule of a safety switch (:func:`leukolib.selection.choose`): it may
   not lose on any unit;
6. :data:`GATES`, when a whole image set keeps its handcrafted masks (its
   median U-Net entropy above the gate, :func:`gate_scores`), by the same
   no-harm rule.

``benchmarks/segmentation_report.py`` runs the protocol on the shared
datasets, leave-one-dataset-out, and writes the choices and the held-out
scores to ``leukolib/reference/segmentation.json``; a test checks that the
library's defaults are the ones recorded there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.base import Dataset
from leukolib.metrics import segmentation_metrics
from leukolib.segmentation.ensemble import (
    EnsembleParams,
    agreement,
    fuse,
    keeps_handcrafted,
    uncertainty,
)
from leukolib.segmentation.handcrafted import HandcraftedParams, segment_nucleus

__all__ = [
    "AREA_OPENINGS",
    "ENSEMBLE_INCUMBENT",
    "ENTROPIES",
    "FALLBACKS",
    "GATES",
    "HANDCRAFTED_INCUMBENT",
    "SOFT_WEIGHTS",
    "THRESHOLDS",
    "candidate_rules",
    "fallback_candidates",
    "fusion_candidates",
    "gate_candidates",
    "gate_scores",
    "handcrafted_candidates",
    "score_handcrafted",
    "unit_means",
]

#: Table A1 at the paper's working size: its pixel values hold at 256 x 256 (the one size the
#: paper states; its U-Net, and so its ensemble, work there) and scale with the image.
HANDCRAFTED_INCUMBENT = "Table A1 at 256x256: dilate 2 px last, area 150 px"

#: U-Net probability thresholds tried (0.5 is the incumbent).
THRESHOLDS: tuple[float, ...] = (0.5, 0.3, 0.4, 0.6, 0.7)

#: Area openings tried after the fusion, pixels at 256 x 256 (150, the paper's, first).
AREA_OPENINGS: tuple[int, ...] = (150, 0, 75, 300)

#: Soft-vote weights tried (the weight of the U-Net's probability).
SOFT_WEIGHTS: tuple[float, ...] = (0.6, 0.67, 0.75, 0.9)

#: The paper's ensemble, where the protocol starts: AND at p >= 0.5, Table A1's area opening
#: (150 px at 256 x 256), never falling back, no set gate. Not the library's default, which is
#: the result.
ENSEMBLE_INCUMBENT = EnsembleParams("and", threshold=0.5, min_area=AREA_OPENINGS[0],
                                    fallback_iou=0.0, fallback_entropy=0.0, gate_entropy=0.0)

#: Fallback IoUs tried (0, never falling back, the paper's ensemble, first).
FALLBACKS: tuple[float, ...] = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8)

#: U-Net entropies tried (bits, :func:`~leukolib.segmentation.ensemble.uncertainty`): above
#: one, the ensemble keeps the handcrafted mask alone (1 bit is a U-Net answering 0.5).
ENTROPIES: tuple[float, ...] = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)

#: Set gates tried (bits of the set's median U-Net entropy): never (0) first, then from the
#: gate that fires least to the one that fires most, so that a tie keeps the most cautious.
GATES: tuple[float, ...] = (0.0, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15, 0.1, 0.05)


def handcrafted_candidates() -> dict[str, HandcraftedParams]:
    """The handcrafted variants the protocol compares, the paper's reading first.

    The incumbent reads Table A1's pixels at 256 x 256 and applies the
    dilation last; the candidates place the dilation after Otsu, after the
    closing or last, with a radius of 1 px, 2 px (in the image's own pixels)
    or 2 px at 256 x 256 (scaled), or drop it, and take the area threshold in
    the image's own pixels or scaled. "Table A1 in native pixels" is the
    other literal reading.
    """
    base = HandcraftedParams(dilation=2, dilation_position="after_area_filter",
                             scale_dilation=True, scale_min_area=True)
    out = {HANDCRAFTED_INCUMBENT: base}
    positions = {"after_otsu": "after Otsu", "after_closing": "after closing",
                 "after_area_filter": "last"}
    for scaled_area in (True, False):
        area = "area scaled" if scaled_area else "area 150 px"
        out[f"no dilation, {area}"] = replace(base, dilation_position="none",
                                              scale_min_area=scaled_area)
        for pos, where in positions.items():
            for radius, scaled, text in ((2, True, "2 px scaled"), (1, False, "1 px"),
                                         (2, False, "2 px")):
                name = f"dilate {text} {where}, {area}"
                if name == "dilate 2 px last, area 150 px":
                    name = "Table A1 in native pixels: dilate 2 px last, area 150 px"
                out.setdefault(name, replace(base, dilation=radius, dilation_position=pos,
                                             scale_dilation=scaled, scale_min_area=scaled_area))
    out.pop("dilate 2 px scaled last, area scaled", None)  # the incumbent, under its own name
    return out


def score_handcrafted(
    datasets: Mapping[str, Dataset],
    candidates: Mapping[str, HandcraftedParams] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """IoU of every handcrafted candidate on every image of every dataset.

    Each image is read once and segmented by every candidate.

    Returns
    -------
    DataFrame
        ``dataset, id, candidate, iou, dsc``.
    """
    from tqdm.auto import tqdm

    cands = dict(candidates or handcrafted_candidates())
    rows = []
    for name, ds in datasets.items():
        for s in tqdm(ds, total=len(ds), desc=f"HM candidates on {name}", disable=not progress,
                      leave=False):
            for cand, params in cands.items():
                m = segmentation_metrics(segment_nucleus(s.image, params), s.nucleus)
                rows.append({"dataset": name, "id": s.id, "candidate": cand, "iou": m["iou"],
                             "dsc": m["dsc"]})
    return pd.DataFrame(rows)


def fusion_candidates(base: EnsembleParams | None = None) -> dict[str, EnsembleParams]:
    """AND (the paper's rule) first, then OR and soft votes of several weights."""
    b = base or EnsembleParams()
    out = {"AND": replace(b, fusion="and"), "OR": replace(b, fusion="or")}
    for w in SOFT_WEIGHTS:
        out[f"SOFT w={w:g}"] = replace(b, fusion="soft", soft_weight=w)
    return out


def fallback_candidates(base: EnsembleParams | None = None) -> dict[str, EnsembleParams]:
    """Never (``"0"``, the paper's ensemble) first, then each measure alone, then both.

    Named ``"iou<0.3"`` (keep HM alone where IoU(HM, DEEP) < 0.3),
    ``"entropy>0.5"`` (where the U-Net's mean entropy > 0.5 bit) and
    ``"iou<0.3 or entropy>0.5"``; every other parameter is ``base``'s.

    Examples
    --------
    >>> c = fallback_candidates()
    >>> list(c)[:3], len(c)
    (['0', 'iou<0.3', 'iou<0.5'], 60)
    >>> c["entropy>0.5"].fallback_label()
    ", handcrafted alone where the U-Net's entropy > 0.5 bit"
    """
    b = replace(base or EnsembleParams(), fallback_iou=0.0, fallback_entropy=0.0)
    out = {"0": b}
    for f in FALLBACKS[1:]:
        out[f"iou<{f:g}"] = replace(b, fallback_iou=f)
    for u in ENTROPIES:
        out[f"entropy>{u:g}"] = replace(b, fallback_entropy=u)
    for f in FALLBACKS[1:]:
        for u in ENTROPIES:
            out[f"iou<{f:g} or entropy>{u:g}"] = replace(b, fallback_iou=f, fallback_entropy=u)
    return out


def gate_candidates(base: EnsembleParams | None = None) -> dict[str, EnsembleParams]:
    """Never (``"0"``) first, then ``"set entropy>0.6"`` ... (:data:`GATES`), on ``base``.

    Examples
    --------
    >>> list(gate_candidates())[:3]
    ['0', 'set entropy>0.6', 'set entropy>0.55']
    """
    b = base or EnsembleParams()
    return {("0" if not g else f"set entropy>{g:g}"): replace(b, gate_entropy=g) for g in GATES}


def gate_scores(ev: Any, candidates: Mapping[str, EnsembleParams], metric: str = "iou",
                method: str = "ENSEMBLE") -> pd.DataFrame:
    """The mean ``metric`` of every set gate on every unit, from one evaluation.

    The gate replaces a whole set's ``method`` rows by its handcrafted rows
    (:func:`~leukolib.segmentation.evaluate.apply_set_gate`), so each
    candidate is scored on ``ev`` without segmenting again.

    Parameters
    ----------
    ev : Evaluation
        Of the ensemble without a gate (and HM), with the agreement table.
    candidates : mapping of str to EnsembleParams
        :func:`gate_candidates`.

    Returns
    -------
    DataFrame
        Candidates (rows) by unit (columns, as :func:`unit_means`).
    """
    from leukolib.segmentation.evaluate import apply_set_gate

    rows = []
    for name, params in candidates.items():
        per = apply_set_gate(ev, params, method).per_image
        per = per[per["method"] == method].assign(method=f"gate {name}")
        rows.append(per)
    return unit_means(pd.concat(rows, ignore_index=True), "gate ", metric)


class _SharedFusion:
    """The fused mask and both fallback measures of the last image, computed once.

    The fallback candidates differ only in when they keep the handcrafted
    mask, so each image is fused and measured once for all of them.
    """

    def __init__(self, base: EnsembleParams) -> None:
        self.base = replace(base, fallback_iou=0.0, fallback_entropy=0.0)
        self._last: tuple[Any, Any, tuple[np.ndarray, float, float]] | None = None

    def parts(self, hm: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, float, float]:
        if self._last is None or self._last[0] is not hm or self._last[1] is not p:
            t = self.base.threshold
            self._last = (hm, p, (fuse(hm, p, self.base), agreement(hm, p, t),
                                  uncertainty(hm, p)))
        return self._last[2]

    def rule(self, params: EnsembleParams):
        def fallback_rule(hm: np.ndarray, p: np.ndarray) -> np.ndarray:
            fused, a, u = self.parts(hm, p)
            return np.asarray(hm, dtype=bool).copy() if keeps_handcrafted(params, a, u) else fused
        return fallback_rule


def candidate_rules(base: EnsembleParams | None = None) -> dict[str, Any]:
    """Every candidate as an evaluation rule ``rule(hm, proba) -> mask``.

    Named ``"t=0.3"`` (DEEP at that threshold), ``"fusion AND"`` ... (each
    fusion with ``base``'s threshold and area opening) and ``"area 75"`` ...
    (``base``'s fusion with that area opening), so that one evaluation pass
    scores them all (:func:`leukolib.segmentation.evaluate.standard_methods`'s
    ``extra``).
    """
    b = base or EnsembleParams()
    rules: dict[str, Any] = {}
    for t in THRESHOLDS:
        rules[f"t={t:g}"] = lambda _, p, _t=t: p >= _t
    for name, params in fusion_candidates(b).items():
        rules[f"fusion {name}"] = lambda hm, p, _q=params: fuse(hm, p, _q)
    for area in AREA_OPENINGS:
        q = replace(b, min_area=area)
        rules[f"area {area}"] = lambda hm, p, _q=q: fuse(hm, p, _q)
    shared = _SharedFusion(b)
    for name, q in fallback_candidates(b).items():
        rules[f"fallback {name}"] = shared.rule(q)
    return rules


def unit_means(per_image: pd.DataFrame, prefix: str, metric: str = "iou",
               column: str = "method") -> pd.DataFrame:
    """Candidates (rows, prefix removed) by unit (columns): the mean ``metric``.

    A unit is ``"<trained_on> -> <dataset>"`` for U-Net candidates evaluated
    across datasets, the dataset's name otherwise.
    """
    p = per_image[per_image[column].astype(str).str.startswith(prefix)].copy()
    if "trained_on" in p and (p["trained_on"] != p["dataset"]).any():
        p["unit"] = np.where(p["trained_on"] == p["dataset"], p["dataset"],
                             p["trained_on"] + " -> " + p["dataset"])
    else:
        p["unit"] = p["dataset"]
    p["candidate"] = p[column].astype(str).str[len(prefix):]
    order = list(dict.fromkeys(p["candidate"]))
    out = p.groupby(["candidate", "unit"], sort=False)[metric].mean().unstack("unit")
    return out.reindex(order)
