"""One evaluation path for every segmentation method.

:func:`evaluate_segmentation` runs methods over a dataset with ground truth and
scores every image with the paper's six metrics (eq. 1-6) at the image's own
size. What it computes per image is a :class:`Methods`:

* the shared **parts**: at most one handcrafted mask (``hm``) and one U-Net
  probability map (``proba``) per image, U-Net inference batched and grouped by
  the fold models allowed to see each image (out-of-fold on the run's own
  images, :meth:`~leukolib.segmentation.unet.UNetRun.folds_for`);
* the **rules** that turn the parts into masks: ``HM``, ``DEEP`` (``p >= t``),
  the ``ENSEMBLE`` and any other fusion or candidate; adding a rule costs a
  few array operations, not another network pass;
* or a plain **segmenter** (``segmenter(sample) -> mask``) for any other method.

A sample that fails to load or to be segmented is recorded with its reason in
:attr:`Evaluation.failures` and the run goes on; so is a sample without ground
truth or with a prediction of the wrong shape. Masks repaired on reading (stray
values mapped to the nearest level, :func:`leukolib.data.read_mask`) are
counted per image (``mask_repaired``).

Examples
--------
>>> from leukolib.data import load_dataset
>>> ds = load_dataset("synthetic", n_images=3, size=128, seed=0)
>>> ev = evaluate_segmentation(ds, handcrafted_methods(), progress=False)
>>> ev.n_images, ev.methods, ev.failures
(3, ['HM'], [])
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.base import Dataset
from leukolib.data.sample import Sample
from leukolib.errors import DatasetError
from leukolib.metrics import SEGMENTATION_METRICS, segmentation_metrics
from leukolib.segmentation.ensemble import (
    ENSEMBLE,
    GATE_SAMPLE,
    EnsembleParams,
    fuse,
    uncertainty,
)
from leukolib.stats import evenly_spaced

__all__ = [
    "AGREEMENT_COLUMNS",
    "Evaluation",
    "Methods",
    "apply_set_gate",
    "evaluate_segmentation",
    "handcrafted_methods",
    "set_entropies",
    "standard_methods",
]

#: A rule: ``rule(hm, proba) -> bool mask`` (either part may be ``None`` if unused); a rule
#: with ``per_sample = True`` is called ``rule(hm, proba, sample)`` (each fold's own fusion).
Rule = Callable[[np.ndarray | None, np.ndarray | None], np.ndarray]

#: Pixel counts per image of every (HM, DEEP, truth) combination, before any area opening.
AGREEMENT_COLUMNS: tuple[str, ...] = tuple(
    f"hm{h}_deep{d}_gt{g}" for h in (0, 1) for d in (0, 1) for g in (0, 1)
)


@dataclass
class Methods:
    """What an evaluation computes for every image.

    Attributes
    ----------
    rules : dict of str to callable
        Method name to ``rule(hm, proba) -> mask``.
    handcrafted : callable, optional
        ``handcrafted(image) -> bool mask``, the ``hm`` part.
    deep : object, optional
        The ``proba`` part: anything with ``proba(sample)`` (e.g. a
        :class:`~leukolib.segmentation.unet.SegmentationPredictor`); a run's
        predictor is batched by fold model.
    segmenter : callable, optional
        A plain ``segmenter(sample) -> mask``, scored as ``segmenter_name``
        (instead of rules).
    segmenter_name : str
    threshold : float
        DEEP's threshold, used for the pixel agreement counts.
    info : dict
        Recorded with the results (rules in words, the U-Net's mode ...).
    gates : dict of str to EnsembleParams
        Rules with a set gate (``gate_entropy``), decided once the whole set
        is evaluated (:func:`apply_set_gate`).
    """

    rules: dict[str, Rule] = field(default_factory=dict)
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None
    deep: Any = None
    segmenter: Callable[[Sample], np.ndarray] | None = None
    segmenter_name: str = "method"
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)
    gates: dict[str, EnsembleParams] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The method names, in order."""
        return [self.segmenter_name] if self.segmenter is not None else list(self.rules)

    def masks(self, samples: Sequence[Sample], batch_size: int = 16) -> list[dict[str, np.ndarray]]:
        """Every method's mask of each sample (for figures); a failure raises.

        Examples
        --------
        >>> from leukolib.data import load_dataset
        >>> s = load_dataset("synthetic", n_images=1, size=96, seed=0)[0]
        >>> list(handcrafted_methods().masks([s])[0])
        ['HM']
        """
        timing = {"seconds_handcrafted": 0.0, "seconds_deep": 0.0, "seconds_segmenter": 0.0}
        hms, probs, errors = _parts(self, list(samples), batch_size, timing)
        out = []
        for s, hm, p, err in zip(samples, hms, probs, errors, strict=True):
            masks, err = _masks(self, s, hm, p, err, timing)
            if err is not None:
                raise RuntimeError(f"{s.id}: {err}")
            out.append(masks)
        return out


def handcrafted_methods(params: Any = None, name: str = "HM") -> Methods:
    """Only the handcrafted method (``params``: a ``HandcraftedParams``, default Table A1)."""
    from leukolib.segmentation.handcrafted import HandcraftedParams, segment_nucleus

    p = params or HandcraftedParams()
    return Methods({name: lambda hm, _: hm}, lambda im: segment_nucleus(im, p),
                   info={"handcrafted": p.to_dict()})


def standard_methods(
    deep: Any,
    ensemble: EnsembleParams | None = None,
    alternatives: Mapping[str, EnsembleParams] | None = None,
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
    extra: Mapping[str, Rule] | None = None,
    fold_fusion: bool = True,
) -> Methods:
    """HM, DEEP, the ensemble and other fusions, from one HM mask and one U-Net map per image.

    Parameters
    ----------
    deep : object
        ``proba(sample)`` provider (a run's predictor).
    ensemble : EnsembleParams, optional
        The ``ENSEMBLE`` rule (default: leukolib's ensemble).
    alternatives : mapping, optional
        More fusions by name (e.g. ``{"OR": EnsembleParams("or")}``).
    handcrafted : callable, optional
        Default: the handcrafted defaults.
    extra : mapping, optional
        More rules by name (candidates of the selection protocol).
    fold_fusion : bool
        On the run's own images, the ensemble takes each fold's rule, chosen
        on its validation images (:mod:`~leukolib.segmentation.fold_fusion`,
        where the library uses it: :data:`~leukolib.segmentation.fold_fusion.FOLD_FUSION`);
        ``False``: ``ensemble`` everywhere.
    """
    from leukolib.segmentation import fold_fusion as ff
    from leukolib.segmentation.handcrafted import segment_nucleus

    ens = ensemble or EnsembleParams()
    t = ens.threshold
    rules: dict[str, Rule] = {"HM": lambda hm, _: hm, "DEEP": lambda _, p: p >= t,
                              ENSEMBLE: lambda hm, p: fuse(hm, p, ens)}
    # chosen here, once: the label then says what the rows hold
    per_fold = (fold_fusion and ff.FOLD_FUSION and hasattr(deep, "fold_fusions")
                and deep.fold_fusions(ens, handcrafted) is not None)
    if per_fold:
        rules[ENSEMBLE] = ff.FoldFusionRule(deep, ens, handcrafted)
    gates = {ENSEMBLE: ens} if ens.gate_entropy else {}
    for name, params in (alternatives or {}).items():
        rules[name] = lambda hm, p, _q=params: fuse(hm, p, _q)
        if params.gate_entropy:
            gates[name] = params
    rules.update(extra or {})
    info = {"ensemble": ens.label() + (ff.PER_FOLD_LABEL if per_fold else ""),
            "alternatives": {k: v.label() for k, v in (alternatives or {}).items()},
            "mode": str(getattr(deep, "mode", "unknown")),
            "reason": str(getattr(deep, "reason", ""))}
    return Methods(rules, handcrafted or segment_nucleus, deep, threshold=t, info=info,
                   gates=gates)


@dataclass
class Evaluation:
    """Per-image scores of one or more methods on one or more datasets.

    Attributes
    ----------
    per_image : DataFrame
        ``dataset, id, method, trained_on, mode``, the six metrics and
        ``mask_repaired``.
    agreement : DataFrame
        ``dataset, id, trained_on``, :data:`AGREEMENT_COLUMNS` and the U-Net's
        ``uncertainty`` (:func:`~leukolib.segmentation.ensemble.uncertainty`),
        when both HM and DEEP were computed.
    failures : list of (str, str, str)
        ``(dataset, sample id, reason)`` of every sample that was not scored.
    info : dict
        Per dataset: ``n_images``, timings and the methods' ``info``.
    """

    per_image: pd.DataFrame
    agreement: pd.DataFrame
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        """Images scored (failures excluded), over all datasets."""
        return int(self.per_image[["dataset", "id"]].drop_duplicates().shape[0])

    @property
    def datasets(self) -> list[str]:
        """Dataset names, in order of appearance."""
        return list(dict.fromkeys(self.per_image["dataset"]))

    @property
    def methods(self) -> list[str]:
        """Method names, in order of appearance."""
        return list(dict.fromkeys(self.per_image["method"]))

    def summary(self, metrics: Sequence[str] = SEGMENTATION_METRICS) -> pd.DataFrame:
        """Mean and sample std (``ddof=1``) by ``dataset, trained_on, method``, per metric.

        Returns
        -------
        DataFrame
            Index ``(dataset, trained_on, method)`` in order of appearance;
            columns ``n`` and ``<metric>``, ``<metric>_std`` for each metric.
        """
        keys = ["dataset", "trained_on", "method"]
        g = self.per_image.groupby(keys, sort=False)
        out = g[list(metrics)].mean()
        std = g[list(metrics)].std(ddof=1).fillna(0.0).add_suffix("_std")
        out = pd.concat([g.size().rename("n"), out, std], axis=1)
        return out[["n", *[c for m in metrics for c in (m, f"{m}_std")]]]

    @classmethod
    def concat(cls, evaluations: Sequence[Evaluation]) -> Evaluation:
        """One evaluation of several."""
        evs = list(evaluations)
        info: dict[str, dict[str, Any]] = {}
        for e in evs:
            for k, v in e.info.items():
                info.setdefault(k, {}).update(v)
        return cls(pd.concat([e.per_image for e in evs], ignore_index=True),
                   pd.concat([e.agreement for e in evs], ignore_index=True),
                   [f for e in evs for f in e.failures], info)


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"


def _run_of(deep: Any) -> Any | None:
    run = getattr(deep, "run", None)
    return run if run is not None and hasattr(run, "predict_many") else None


def _probas(deep: Any, samples: list[Sample], batch_size: int,
            hms: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray | Exception]:
    """One probability map per sample; a run's predictor is batched by the folds allowed.

    ``hms``: the samples' handcrafted masks, which give a run in diameter mode
    each image's nucleus diameter (the predictor's ``diameter`` when the user
    gave one); the sources are counted in the predictor's ``scale_sources``.
    """
    out: list[np.ndarray | Exception] = []
    run = _run_of(deep)
    if run is None:
        for s in samples:
            try:
                out.append(np.asarray(deep.proba(s), dtype=np.float32))
            except Exception as exc:  # noqa: BLE001 - reported per sample
                out.append(exc)
        return out
    hms = list(hms) if hms is not None else [None] * len(samples)
    diameter = getattr(deep, "diameter", None)
    counts = getattr(deep, "scale_sources", None)
    out = [None] * len(samples)  # type: ignore[list-item]
    groups: dict[tuple[int, ...] | None, list[int]] = {}
    for i, s in enumerate(samples):
        try:
            groups.setdefault(run.folds_for(s.image), []).append(i)
        except Exception as exc:  # noqa: BLE001
            out[i] = exc
    for folds, members in groups.items():
        got: list[str] = []
        try:
            probs = run.predict_many([samples[i].image for i in members], folds, batch_size,
                                     diameter=diameter, handcrafted_masks=[hms[i] for i in members],
                                     sources=got)
        except Exception:  # noqa: BLE001 - one bad image must not sink its batch
            probs, got = [], []
            for i in members:
                try:
                    p, src = run.predict_proba_with_source(samples[i].image, folds, diameter,
                                                           hms[i])
                    probs.append(p)
                    got.append(src)
                except Exception as exc:  # noqa: BLE001
                    probs.append(exc)
        for i, p in zip(members, probs, strict=True):
            out[i] = p
        if counts is not None:
            label = getattr(deep, "diameter_source", "given")
            for src in got:
                src = label if src == "given" else src
                counts[src] = counts.get(src, 0) + 1
    return out


def _parts(methods: Methods, samples: list[Sample], batch_size: int, timing: dict[str, float]):
    """``[(hm or None, proba or None, error or None)]`` per sample."""
    n = len(samples)
    hms: list[Any] = [None] * n
    errors: list[str | None] = [None] * n
    if methods.handcrafted is not None:
        t0 = time.perf_counter()
        for i, s in enumerate(samples):
            try:
                hms[i] = np.asarray(methods.handcrafted(s.image), dtype=bool)
            except Exception as exc:  # noqa: BLE001
                errors[i] = f"handcrafted segmentation failed: {_reason(exc)}"
        timing["seconds_handcrafted"] += time.perf_counter() - t0
    probs: list[Any] = [None] * n
    if methods.deep is not None:
        t0 = time.perf_counter()
        for i, p in enumerate(_probas(methods.deep, samples, batch_size, hms)):
            if isinstance(p, Exception):
                errors[i] = errors[i] or f"U-Net prediction failed: {_reason(p)}"
            else:
                probs[i] = p
        timing["seconds_deep"] += time.perf_counter() - t0
    return hms, probs, errors


def evaluate_segmentation(
    dataset: Dataset,
    methods: Methods | Callable[[Sample], np.ndarray],
    *,
    trained_on: str | None = None,
    limit: int | None = None,
    chunk: int = 64,
    batch_size: int = 16,
    progress: bool = True,
) -> Evaluation:
    """Score methods on every sample of ``dataset`` against its nucleus masks.

    Parameters
    ----------
    dataset : Dataset
        Samples with nucleus masks.
    methods : Methods or callable
        What to compute (:func:`standard_methods`, :func:`handcrafted_methods`),
        or a plain ``segmenter(sample) -> mask``.
    trained_on : str, optional
        Label of the U-Net's training set (default: its run's dataset name).
    limit : int, optional
        Only the first ``limit`` samples.
    chunk : int
        Samples loaded at once (memory stays bounded on large images).
    batch_size : int
        Images per U-Net forward pass.
    progress : bool
        A progress bar on stderr.

    Returns
    -------
    Evaluation

    Raises
    ------
    DatasetError
        When the dataset has no nucleus masks.
    """
    from tqdm.auto import tqdm

    if not getattr(dataset, "has_masks", True):
        raise DatasetError(f"dataset {dataset.name!r} has no nucleus masks: nothing to evaluate")
    if not isinstance(methods, Methods):
        methods = Methods(segmenter=methods, segmenter_name=getattr(methods, "name", "method"),
                          info={"mode": str(getattr(methods, "mode", "")) or None,
                                "reason": str(getattr(methods, "reason", "")) or None})
    run = _run_of(methods.deep) or _run_of(methods.segmenter)
    trained_on = trained_on or str(getattr(run, "dataset_name", None) or "none")
    mode = methods.info.get("mode") or "no training"
    n = len(dataset) if limit is None else max(0, min(int(limit), len(dataset)))
    ids = list(dataset.ids)
    rows, agree, failures = [], [], []
    timing = {"seconds_io": 0.0, "seconds_handcrafted": 0.0, "seconds_deep": 0.0,
              "seconds_segmenter": 0.0}
    bar = tqdm(total=n, desc=dataset.name, unit="img", disable=not progress, file=sys.stderr,
               leave=False)
    for start in range(0, n, chunk):
        samples: list[Sample] = []
        t0 = time.perf_counter()
        for i in range(start, min(n, start + chunk)):
            try:
                samples.append(dataset[i])
            except Exception as exc:  # noqa: BLE001 - report and go on
                failures.append((dataset.name, ids[i], f"cannot load: {_reason(exc)}"))
        timing["seconds_io"] += time.perf_counter() - t0
        hms, probs, errors = _parts(methods, samples, batch_size, timing)
        for s, hm, p, err in zip(samples, hms, probs, errors, strict=True):
            masks, err = _masks(methods, s, hm, p, err, timing)
            if err is None and s.nucleus is None:
                err = "no nucleus ground truth"
            if err is None:
                bad = [k for k, m in masks.items() if m.shape != s.nucleus.shape]
                if bad:
                    err = f"predicted mask {masks[bad[0]].shape} != truth {s.nucleus.shape}"
            if err is not None:
                failures.append((dataset.name, s.id, err))
                continue
            base = {"dataset": dataset.name, "id": s.id, "trained_on": trained_on}
            for name, mask in masks.items():
                row_mode = "no training" if name == "HM" else mode
                rows.append({**base, "method": name, "mode": row_mode,
                             **segmentation_metrics(mask, s.nucleus),
                             "mask_repaired": s.mask_repaired})
            if hm is not None and p is not None:
                code = (hm.astype(np.uint8) << 2) | ((p >= methods.threshold) << 1) | s.nucleus
                agree.append(base | dict(zip(AGREEMENT_COLUMNS,
                                             np.bincount(code.ravel(), minlength=8).tolist(),
                                             strict=True))
                             | {"uncertainty": uncertainty(hm, p)})
        bar.update(min(n, start + chunk) - start)
    bar.close()
    cols = ["dataset", "id", "method", "trained_on", "mode", *SEGMENTATION_METRICS,
            "mask_repaired"]
    per_image = pd.DataFrame(rows, columns=cols)
    agreement = pd.DataFrame(agree, columns=["dataset", "id", "trained_on", *AGREEMENT_COLUMNS,
                                             "uncertainty"])
    k = per_image[["id"]].drop_duplicates().shape[0]
    predict = timing["seconds_handcrafted"] + timing["seconds_deep"] + timing["seconds_segmenter"]
    scale = dict(getattr(methods.deep, "scale_sources", None) or {})
    info = {dataset.name: {**methods.info, "trained_on": trained_on, "n_images": k,
                           "agreement_threshold": methods.threshold,
                           **({"scale_sources": scale} if scale else {}),
                           "n_failures": len(failures), **timing,
                           "images_per_s": k / predict if k and predict > 0 else None,
                           "images_per_s_with_io": (k / (predict + timing["seconds_io"])
                                                    if k and predict > 0 else None),
                           "mask_repaired_images": int((per_image.drop_duplicates("id")
                                                        ["mask_repaired"] > 0).sum()),
                           "mask_repaired_pixels": int(per_image.drop_duplicates("id")
                                                       ["mask_repaired"].sum())}}
    ev = Evaluation(per_image, agreement, failures, info)
    for name, params in methods.gates.items():
        ev = apply_set_gate(ev, params, name)
    return ev


def set_entropies(ev: Evaluation) -> pd.Series:
    """The median U-Net entropy of every evaluated image set, as the set gate reads it.

    Per ``(trained_on, dataset)``: the median of the ``uncertainty`` of up to
    :data:`~leukolib.segmentation.ensemble.GATE_SAMPLE` of its images, evenly
    spaced in the order they were evaluated, like
    :meth:`~leukolib.segmentation.ensemble.EnsembleSegmenter.calibrate`.

    Returns
    -------
    Series
        Index ``(trained_on, dataset)``; empty without an agreement table.
    """
    a = ev.agreement
    if a.empty or "uncertainty" not in a:
        return pd.Series(dtype=float)
    out = {}
    for key, g in a.groupby(["trained_on", "dataset"], sort=False):
        picks = g["uncertainty"].to_numpy()[evenly_spaced(len(g), GATE_SAMPLE)]
        out[key] = float(np.median(picks))
    return pd.Series(out, dtype=float).rename_axis(["trained_on", "dataset"])


def apply_set_gate(ev: Evaluation, params: EnsembleParams, method: str = ENSEMBLE,
                   handcrafted: str = "HM") -> Evaluation:
    """``method``'s rows with its set gate: an out-of-domain set takes the handcrafted rows.

    The gate needs the whole set, so it is applied to an evaluation (the
    rule's own rows were scored as if every set were in the U-Net's domain):
    where :func:`set_entropies` is above ``params.gate_entropy``, every
    image's ``method`` metrics become its ``handcrafted`` metrics.

    Parameters
    ----------
    ev : Evaluation
        With ``method`` and ``handcrafted`` rows and the agreement table.
    params : EnsembleParams
        Its ``gate_entropy`` (0: ``ev`` is returned as it is).
    method, handcrafted : str

    Returns
    -------
    Evaluation
        A new evaluation; ``info[dataset]["set_gate"]`` maps each U-Net's
        training set to the set's median entropy and whether it was gated.
    """
    if not params.gate_entropy:
        return ev
    per = ev.per_image.copy()
    info = {k: dict(v) for k, v in ev.info.items()}
    metrics = [c for c in SEGMENTATION_METRICS if c in per]
    for (trained_on, dataset), median in set_entropies(ev).items():
        gated = bool(median > params.gate_entropy)
        info.setdefault(dataset, {}).setdefault("set_gate", {})[trained_on] = {
            "median_entropy": median, "gate_entropy": params.gate_entropy, "gated": gated}
        if not gated:
            continue
        here = (per["dataset"] == dataset) & (per["trained_on"] == trained_on)
        hm = per[here & (per["method"] == handcrafted)].set_index("id")[metrics]
        rows = here & (per["method"] == method)
        per.loc[rows, metrics] = hm.loc[per.loc[rows, "id"]].to_numpy()
    return Evaluation(per, ev.agreement, list(ev.failures), info)


def _masks(methods: Methods, s: Sample, hm, p, err, timing) -> tuple[dict[str, Any], str | None]:
    if err is not None:
        return {}, err
    if methods.segmenter is not None:
        t0 = time.perf_counter()
        try:
            mask = np.asarray(methods.segmenter(s), dtype=bool)
        except Exception as exc:  # noqa: BLE001 - report and go on
            return {}, f"prediction failed: {_reason(exc)}"
        finally:
            timing["seconds_segmenter"] += time.perf_counter() - t0
        return {methods.segmenter_name: mask}, None
    try:  # a per-sample rule (each fold's own fusion) also takes the sample
        return {name: np.asarray(rule(hm, p, s) if getattr(rule, "per_sample", False)
                                 else rule(hm, p), dtype=bool)
                for name, rule in methods.rules.items()}, None
    except Exception as exc:  # noqa: BLE001
        return {}, f"prediction failed: {_reason(exc)}"
