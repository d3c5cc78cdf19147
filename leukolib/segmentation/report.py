"""The segmentation evaluation report: HM, DEEP and their fusions, beside the paper.

The paper's segmentation claim (its Tables 2-4) is that the handcrafted mask
(HM) AND the U-Net's mask (DEEP), followed by an area opening, beats either
alone. This module measures that claim on a dataset, honestly and cheaply:

1. :func:`evaluate_methods` computes, for every sample, **one** handcrafted
   mask and **one** U-Net probability map (out-of-fold on the run's training
   set, the fold average elsewhere: :meth:`~leukolib.segmentation.unet.UNetRun.predictor_for`),
   and derives every method from those two: ``HM``, ``DEEP`` (probability
   ``>= 0.5``), ``ENSEMBLE`` (the paper's AND) and the other fusions of
   :mod:`leukolib.segmentation.ensemble` (``ENSEMBLE-OR``, ``ENSEMBLE-SOFT``).
   Each is scored with the paper's six metrics at the image's own size.
   U-Net inference is batched, grouped by fold model.
2. The result, a :class:`SegmentationReport`, holds a tidy per-image table
   (``dataset, id, method, trained_on, mode`` and the six metrics) and the
   pixel agreement of HM, DEEP and the truth per image (to explain *why* one
   fusion wins). From it:

   * :meth:`~SegmentationReport.summary`: mean and sample std per dataset,
     method and metric (the numbers of :func:`leukolib.metrics.summarize`);
   * :meth:`~SegmentationReport.paper_table`: the paper's layout, rows =
     methods, our rows then ``paper HM/DEEP/ENSEMBLE`` and the competitors
     of its Table 4, the best of each column marked; a number the paper
     gives but :mod:`leukolib.paper` could not transcribe is ``n/a`` (never
     invented);
   * :meth:`~SegmentationReport.mean_ci`: the mean IoU with a bootstrap 95 %
     interval, and whether the paper's number falls inside it;
   * :meth:`~SegmentationReport.paired`: per-image paired differences
     (ENSEMBLE - DEEP, ENSEMBLE - HM, best fusion - DEEP) with a seeded
     bootstrap 95 % CI of the mean difference and a Wilcoxon signed-rank
     p-value;
   * :meth:`~SegmentationReport.diagnostics`: what AND removes from DEEP
     (false positives, but also true positives where HM misses nucleus);
   * CSV, JSON and markdown writers (:meth:`~SegmentationReport.save`).

3. :func:`generalization` applies every U-Net run to every dataset
   (out-of-fold on the diagonal, fold average elsewhere) and returns the
   cross-dataset matrix of mean IoU, with the handcrafted method (no
   training) as one more row (:func:`run_dataset` reloads a run's dataset).
4. :func:`failure_gallery` draws the worst images of each method with the
   HM, DEEP and ENSEMBLE contours side by side (the paper's Figure 4 style).

Examples
--------
>>> import numpy as np
>>> from leukolib.data import load_dataset
>>> class Blob:  # a stand-in U-Net: probability 0.9 where the truth is
...     mode = "fold-average"
...     def proba(self, s):
...         return np.where(s.nucleus, 0.9, 0.1).astype(np.float32)
>>> ds = load_dataset("synthetic", n_images=3, size=128, seed=0)
>>> rep = evaluate_methods(ds, Blob(), progress=False)
>>> len(rep.per_image), rep.methods
(15, ['HM', 'DEEP', 'ENSEMBLE', 'ENSEMBLE-OR', 'ENSEMBLE-SOFT'])
>>> float(rep.summary_wide().loc[("synthetic", "DEEP"), "iou"])
1.0
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leukolib.data.base import Dataset
from leukolib.data.sample import Sample
from leukolib.metrics import SEGMENTATION_METRICS, segmentation_metrics
from leukolib.segmentation.ensemble import EnsembleParams, fuse

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "AGREEMENT_COLUMNS",
    "FUSION_METHODS",
    "HANDCRAFTED_ROW",
    "METHODS",
    "PAPER_METHODS",
    "Generalization",
    "SegmentationReport",
    "bootstrap_ci",
    "evaluate_methods",
    "failure_gallery",
    "fusion_diagnostics",
    "generalization",
    "markdown_table",
    "mean_ci",
    "method_masks",
    "overall_table",
    "paired_comparison",
    "paper_table",
    "run_dataset",
    "summarize_per_image",
    "wilcoxon_p",
]

#: The fusions evaluated, by method name. ``ENSEMBLE`` is the paper's rule (AND),
#: whatever the library's default fusion is.
FUSION_METHODS: dict[str, EnsembleParams] = {
    "ENSEMBLE": EnsembleParams(fusion="and"),
    "ENSEMBLE-OR": EnsembleParams(fusion="or"),
    "ENSEMBLE-SOFT": EnsembleParams(fusion="soft"),
}

#: Every method of a report, in table order.
METHODS: tuple[str, ...] = ("HM", "DEEP", *FUSION_METHODS)

#: The methods the paper reports on every dataset (its Tables 2-3).
PAPER_METHODS: tuple[str, ...] = ("HM", "DEEP", "ENSEMBLE")

#: Row label of the handcrafted method in a generalization matrix.
HANDCRAFTED_ROW = "handcrafted (no training)"

#: Pixel counts per image of every (HM, DEEP, truth) combination, before any area opening.
AGREEMENT_COLUMNS: tuple[str, ...] = tuple(
    f"hm{h}_deep{d}_gt{g}" for h in (0, 1) for d in (0, 1) for g in (0, 1)
)

_ID_COLUMNS = ("dataset", "id", "method", "trained_on", "mode")


# --------------------------------------------------------------------------- evaluation


def _handcrafted_default() -> Callable[[np.ndarray], np.ndarray]:
    from leukolib.segmentation.handcrafted import segment_nucleus

    return segment_nucleus


def _as_predictor(deep: Any, dataset: Dataset) -> Any:
    """A ``proba(sample)`` object from a predictor, a UNetRun or a run directory."""
    if isinstance(deep, str | os.PathLike):
        from leukolib.segmentation.unet import load_unet_run

        deep = load_unet_run(deep)
    if hasattr(deep, "predictor_for"):  # a UNetRun: out-of-fold where it can
        return deep.predictor_for(dataset)
    if not hasattr(deep, "proba"):
        raise TypeError(f"{deep!r}: expected an object with proba(sample), a UNetRun or a path")
    return deep


def _run_of(deep: Any) -> Any | None:
    """The UNetRun behind a SegmentationPredictor (duck-typed: no torch import)."""
    run = getattr(deep, "run", None)
    if run is not None and hasattr(run, "predict_many") and hasattr(run, "oof_fold_of"):
        return run
    return None


def _probas(deep: Any, samples: Sequence[Sample], batch_size: int) -> list[np.ndarray]:
    """One probability map per sample; batched by fold model when ``deep`` is a run's."""
    run = _run_of(deep)
    if run is None:
        return [np.asarray(deep.proba(s), dtype=np.float32) for s in samples]
    groups: dict[int | None, list[int]] = {}
    for i, s in enumerate(samples):
        # a training image of the run gets its out-of-fold model, any other the fold average
        groups.setdefault(run.fold_for(s.image), []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(samples)
    for fold, members in groups.items():
        probs = run.predict_many([samples[i].image for i in members], fold, batch_size)
        for i, p in zip(members, probs, strict=True):
            out[i] = p
    return out


def method_masks(
    hm: np.ndarray,
    proba: np.ndarray,
    threshold: float = 0.5,
    fusions: Mapping[str, EnsembleParams] | None = None,
) -> dict[str, np.ndarray]:
    """Every method's mask from one handcrafted mask and one U-Net probability.

    Parameters
    ----------
    hm : ndarray of bool, shape (H, W)
        The handcrafted mask.
    proba : ndarray of float, shape (H, W)
        The U-Net's nucleus probability.
    threshold : float
        DEEP is ``proba >= threshold``.
    fusions : mapping, optional
        ``{method name: EnsembleParams}``; default :data:`FUSION_METHODS`.

    Returns
    -------
    dict
        ``{"HM": ..., "DEEP": ..., "ENSEMBLE": ..., ...}``, boolean masks.
    """
    fusions = FUSION_METHODS if fusions is None else fusions
    hm = np.asarray(hm, dtype=bool)
    out = {"HM": hm, "DEEP": np.asarray(proba) >= threshold}
    for name, params in fusions.items():
        out[name] = fuse(hm, proba, params)
    return out


def evaluate_methods(
    dataset: Dataset,
    deep: Any,
    *,
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
    fusions: Mapping[str, EnsembleParams] | None = None,
    trained_on: str | None = None,
    batch_size: int = 16,
    chunk: int = 96,
    progress: bool = True,
    seed: int = 0,
) -> SegmentationReport:
    """Score HM, DEEP and every fusion on every sample of ``dataset``.

    Each sample gets **one** handcrafted mask and **one** U-Net probability
    map; every method is derived from the two (:func:`method_masks`). Samples
    are read ``chunk`` at a time, so memory stays bounded on large images.

    Parameters
    ----------
    dataset : Dataset
        Samples with nucleus masks.
    deep : object
        The U-Net side: a :class:`~leukolib.segmentation.unet.SegmentationPredictor`
        (or anything with ``proba(sample)``, optionally ``mode`` and
        ``threshold``), a :class:`~leukolib.segmentation.unet.UNetRun` or a
        run directory (then :meth:`~leukolib.segmentation.unet.UNetRun.predictor_for`
        picks out-of-fold or fold-average).
    handcrafted : callable, optional
        ``handcrafted(image) -> bool mask``; default
        :func:`~leukolib.segmentation.handcrafted.segment_nucleus`.
    fusions : mapping, optional
        ``{method name: EnsembleParams}``; default :data:`FUSION_METHODS`.
    trained_on : str, optional
        Label of the U-Net's training set (default: the run's dataset name).
    batch_size : int
        Images per U-Net forward pass.
    chunk : int
        Samples loaded at once.
    progress : bool
        Show a progress bar.
    seed : int
        Seed of the report's bootstrap intervals.

    Returns
    -------
    SegmentationReport
        One dataset's report.

    Raises
    ------
    ValueError
        When a sample has no nucleus mask, or a prediction has the wrong shape.
    """
    from tqdm.auto import tqdm

    predictor = _as_predictor(deep, dataset)
    segment = handcrafted or _handcrafted_default()
    fusions = FUSION_METHODS if fusions is None else dict(fusions)
    threshold = float(getattr(predictor, "threshold", 0.5))
    mode = str(getattr(predictor, "mode", "unknown"))
    run = _run_of(predictor)
    if trained_on is None:
        trained_on = str(getattr(run, "dataset_name", None) or "unknown")
    rows: list[dict[str, Any]] = []
    agree: list[dict[str, Any]] = []
    t_hm = t_deep = 0.0
    n = len(dataset)
    bar = tqdm(total=n, desc=f"HM+DEEP on {dataset.name}", disable=not progress, leave=False)
    for start in range(0, n, chunk):
        samples = [dataset[i] for i in range(start, min(n, start + chunk))]
        t0 = time.perf_counter()
        hms = [np.asarray(segment(s.image), dtype=bool) for s in samples]
        t1 = time.perf_counter()
        probs = _probas(predictor, samples, batch_size)
        t_hm, t_deep = t_hm + t1 - t0, t_deep + time.perf_counter() - t1
        for s, hm, p in zip(samples, hms, probs, strict=True):
            if s.nucleus is None:
                raise ValueError(f"{dataset.name}: sample {s.id!r} has no nucleus mask")
            truth = np.asarray(s.nucleus, dtype=bool)
            if hm.shape != truth.shape or p.shape != truth.shape:
                raise ValueError(
                    f"{dataset.name}/{s.id}: HM {hm.shape}, DEEP {p.shape} and "
                    f"truth {truth.shape} differ in shape"
                )
            for method, mask in method_masks(hm, p, threshold, fusions).items():
                rows.append(
                    {
                        "dataset": dataset.name,
                        "id": s.id,
                        "method": method,
                        "trained_on": trained_on,
                        "mode": "no training" if method == "HM" else mode,
                        **segmentation_metrics(mask, truth),
                    }
                )
            code = (hm.astype(np.uint8) << 2) | ((p >= threshold).astype(np.uint8) << 1) | truth
            counts = np.bincount(code.ravel(), minlength=8)
            agree.append(
                {"dataset": dataset.name, "id": s.id, "trained_on": trained_on}
                | dict(zip(AGREEMENT_COLUMNS, counts.tolist(), strict=True))
            )
        bar.update(len(samples))
    bar.close()
    info = {
        dataset.name: {
            "n_images": n,
            "trained_on": trained_on,
            "mode": mode,
            "reason": str(getattr(predictor, "reason", "")),
            "run_dir": str(getattr(run, "run_dir", "")) or None,
            "threshold": threshold,
            "fusions": {k: vars(v) for k, v in fusions.items()},
            "seconds_handcrafted": t_hm,
            "seconds_deep": t_deep,
        }
    }
    per_image = pd.DataFrame(rows, columns=[*_ID_COLUMNS, *SEGMENTATION_METRICS])
    agreement = pd.DataFrame(agree, columns=["dataset", "id", "trained_on", *AGREEMENT_COLUMNS])
    return SegmentationReport(per_image, agreement, info, seed)


# --------------------------------------------------------------------------- summaries


def _method_order(methods: Sequence[str]) -> list[str]:
    known = [m for m in METHODS if m in set(methods)]
    return known + sorted(set(methods) - set(METHODS))


def summarize_per_image(
    per_image: pd.DataFrame, metrics: Sequence[str] = SEGMENTATION_METRICS
) -> pd.DataFrame:
    """Tidy summary: one row per (dataset, method, metric) with ``mean``, ``std``, ``n``.

    The std is the sample standard deviation (``ddof=1``; 0 for one image),
    as in :func:`leukolib.metrics.summarize`.
    """
    keys = ["dataset", "method"]
    long = per_image.melt(id_vars=keys, value_vars=list(metrics), var_name="metric")
    g = long.groupby([*keys, "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0, n="size")
    out = out.reset_index()
    order = {m: i for i, m in enumerate(_method_order(out["method"].unique()))}
    morder = {m: i for i, m in enumerate(metrics)}
    out = out.sort_values(
        ["dataset", "method", "metric"],
        key=lambda c: (
            c.map(order) if c.name == "method" else c.map(morder) if c.name == "metric" else c
        ),
    )
    return out.reset_index(drop=True)


def _cell(mean: float | None, std: float | None, digits: int) -> str:
    if mean is None or not np.isfinite(mean):
        return "n/a"
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _paper_rows(dataset: str, metrics: Sequence[str]) -> dict[str, dict[str, tuple]]:
    """``{row label: {metric: (mean, std)}}`` of the paper's numbers for ``dataset``."""
    from leukolib import paper

    theirs = paper.reported(dataset=dataset)
    theirs = theirs[theirs["metric"].isin(list(metrics))]
    rows: dict[str, dict[str, tuple]] = {}

    def add(label_base: str, group: pd.DataFrame) -> None:
        tables = sorted(set(group["table"]))
        label = label_base + (f" (Table {', '.join(tables)})" if tables else "")
        by_metric = {r.metric: (r.value, r.std) for r in group.itertuples()}
        rows[label] = {m: by_metric.get(m, (None, None)) for m in metrics}

    for method in PAPER_METHODS:
        add(f"paper {method}", theirs[theirs["method"] == method])
    competitors = theirs[~theirs["method"].isin(PAPER_METHODS)]
    if competitors.empty:
        # Table 4's competitors were not transcribed (leukolib.paper.MISSING): say so.
        rows["competitors (Table 4)"] = {m: (None, None) for m in metrics}
    for method, group in competitors.groupby("method", sort=True):
        add(str(method), group)
    return rows


def paper_table(
    summary: pd.DataFrame,
    dataset: str,
    metrics: Sequence[str] = SEGMENTATION_METRICS,
    digits: int = 3,
    mark: str = "**",
) -> pd.DataFrame:
    """One dataset in the paper's Table 2/3/4 layout, the best of each column marked.

    Parameters
    ----------
    summary : DataFrame
        Tidy summary (:func:`summarize_per_image`).
    dataset : str
        The dataset to show.
    metrics : sequence of str
        The columns, in order.
    digits : int
        Decimals shown.
    mark : str
        Put around the best cell(s) of each column (markdown bold by default).
        The best is taken over every row with a number, ours and the paper's,
        at the shown precision (ties are all marked).

    Returns
    -------
    DataFrame of str
        Rows: our methods, then ``paper HM``, ``paper DEEP``, ``paper ENSEMBLE``
        (with the table they come from) and the competitors (one
        ``competitors (Table 4)`` row of ``n/a`` when none was transcribed);
        cells ``"mean ± std"``, ``"mean"`` when the paper gives no std, or
        ``"n/a"``.
    """
    ours = summary[summary["dataset"] == dataset]
    if ours.empty:
        raise KeyError(f"no summary rows for dataset {dataset!r}")
    values: dict[str, dict[str, tuple]] = {}
    for method in _method_order(ours["method"].unique()):
        sub = ours[ours["method"] == method].set_index("metric")
        values[method] = {
            m: (float(sub.loc[m, "mean"]), float(sub.loc[m, "std"]))
            if m in sub.index
            else (None, None)
            for m in metrics
        }
    values.update(_paper_rows(dataset, metrics))
    table: dict[str, dict[str, str]] = {row: {} for row in values}
    for m in metrics:
        shown = {row: round(v[m][0], digits) for row, v in values.items() if v[m][0] is not None}
        best = max(shown.values()) if shown else None
        for row, v in values.items():
            text = _cell(v[m][0], v[m][1], digits)
            table[row][m] = f"{mark}{text}{mark}" if row in shown and shown[row] == best else text
    out = pd.DataFrame.from_dict(table, orient="index")[list(metrics)]
    out.index.name = dataset
    return out


def overall_table(summary: pd.DataFrame, metric: str = "iou", digits: int = 3) -> pd.DataFrame:
    """Mean ``metric`` per method and dataset, their mean, and the paper's ENSEMBLE row.

    Columns: one per dataset and ``mean``; the paper's row holds what
    :mod:`leukolib.paper` has (JTSC's Table 2 value and the six-dataset mean of
    Tables 2-4), ``n/a`` elsewhere. Our ``mean`` is over *our* datasets only.
    """
    from leukolib import paper

    sub = summary[summary["metric"] == metric]
    wide = sub.pivot(index="method", columns="dataset", values="mean")
    wide = wide.loc[_method_order(list(wide.index))]
    datasets = list(wide.columns)
    wide["mean"] = wide[datasets].mean(axis=1)
    out = wide.map(lambda v: _cell(v, None, digits)).astype(object)
    theirs = paper.reported(method="ENSEMBLE")
    theirs = theirs[theirs["metric"] == metric]
    row = {}
    for d in datasets:
        hit = theirs[theirs["dataset"] == d]
        row[d] = _cell(float(hit["value"].iloc[0]), None, digits) if len(hit) else "n/a"
    six = theirs[theirs["dataset"] == "six_databases"]
    six = six[six["table"] != "abstract"] if (six["table"] != "abstract").any() else six
    row["mean"] = (
        f"{_cell(float(six['value'].iloc[0]), None, digits)} (six datasets)" if len(six) else "n/a"
    )
    out.loc["paper ENSEMBLE"] = row
    out.columns.name = f"mean {metric}"
    return out


# --------------------------------------------------------------------------- statistics


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean, seeded.

    Parameters
    ----------
    values : array_like
        Per-image values (e.g. paired IoU differences).
    n_boot : int
        Bootstrap resamples.
    ci : float
        Coverage (0.95: the 2.5 and 97.5 percentiles).
    seed : int
        Seed of :func:`numpy.random.default_rng`: the same seed gives the same CI.

    Returns
    -------
    (float, float)
        ``(low, high)``; ``(nan, nan)`` for no values.

    Examples
    --------
    >>> lo, hi = bootstrap_ci([0.1, 0.2, 0.3, 0.4], seed=0)
    >>> lo <= 0.25 <= hi, bootstrap_ci([0.1, 0.2, 0.3, 0.4], seed=0) == (lo, hi)
    (True, True)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot))
    step = max(1, 2_000_000 // v.size)  # bound the index matrix to ~16 MB
    for start in range(0, len(means), step):
        k = min(step, len(means) - start)
        means[start : start + k] = v[rng.integers(0, v.size, size=(k, v.size))].mean(axis=1)
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def wilcoxon_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences.

    Zero differences are dropped (``zero_method="wilcox"``); when every
    difference is zero (or there is none) the p-value is 1.
    """
    from scipy.stats import wilcoxon

    d = np.asarray(differences, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    return float(wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def mean_ci(
    per_image: pd.DataFrame,
    metric: str = "iou",
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean ``metric`` per dataset and method with a bootstrap CI, beside the paper's value.

    Tells whether our mean and the paper's number (a fixed value, from
    :mod:`leukolib.paper`, for ``HM``/``DEEP``/``ENSEMBLE`` where transcribed)
    are distinguishable given the spread over images.

    Returns
    -------
    DataFrame
        ``dataset, method, n, mean, ci_low, ci_high, paper, paper_in_ci``
        (``paper`` NaN and ``paper_in_ci`` ``None`` where the paper's number
        is not available).
    """
    from leukolib import paper

    rows = []
    for (dataset, method), g in per_image.groupby(["dataset", "method"], sort=False):
        v = g[metric].to_numpy(dtype=np.float64)
        lo, hi = bootstrap_ci(v, n_boot=n_boot, ci=ci, seed=seed)
        theirs = paper.reported(dataset=str(dataset), method=str(method))
        theirs = theirs[theirs["metric"] == metric]
        ref = float(theirs["value"].iloc[0]) if len(theirs) else float("nan")
        rows.append(
            {
                "dataset": dataset,
                "method": method,
                "n": int(v.size),
                "mean": float(v.mean()),
                "ci_low": lo,
                "ci_high": hi,
                "paper": ref,
                "paper_in_ci": bool(lo <= ref <= hi) if np.isfinite(ref) else None,
            }
        )
    return pd.DataFrame(rows)  # groupby(sort=False): datasets and methods in report order


def _best_fusion(per_image: pd.DataFrame, metric: str) -> str | None:
    fus = per_image[per_image["method"].isin(list(FUSION_METHODS))]
    if fus.empty:
        fus = per_image[~per_image["method"].isin(["HM", "DEEP"])]
    if fus.empty:
        return None
    means = fus.groupby("method")[metric].mean()
    return str(means.idxmax())


def paired_comparison(
    per_image: pd.DataFrame,
    comparisons: Sequence[tuple[str, str]] | None = None,
    metric: str = "iou",
    n_boot: int = 10_000,
    ci: float = 0.95,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-image paired differences between methods, per dataset.

    Parameters
    ----------
    per_image : DataFrame
        Tidy per-image table (one row per dataset, id and method).
    comparisons : sequence of (str, str), optional
        ``(a, b)`` pairs, the difference is ``a - b``. Default:
        ``ENSEMBLE - DEEP``, ``ENSEMBLE - HM`` and ``best fusion - DEEP``,
        the best fusion being the one of :data:`FUSION_METHODS` with the
        highest mean ``metric`` **on that dataset** (a choice made on the
        evaluation images, so its gain is optimistic).
    metric : str
    n_boot, ci, seed :
        Of :func:`bootstrap_ci` (the same seed gives the same intervals).
    alpha : float
        Significance level of the verdict.

    Returns
    -------
    DataFrame
        ``dataset, comparison, a, b, n, mean_a, mean_b, mean_diff, ci_low,
        ci_high, wilcoxon_p, wins, losses, ties, verdict``; the verdict says
        ``"<a> better"`` / ``"<b> better"`` only when the CI excludes 0 *and*
        ``p < alpha``, else ``"no significant difference"``.
    """
    rows = []
    for dataset, group in per_image.groupby("dataset", sort=False):
        wide = group.pivot(index="id", columns="method", values=metric)
        if comparisons is None:
            pairs = [("ENSEMBLE", "DEEP", "ENSEMBLE - DEEP"), ("ENSEMBLE", "HM", "ENSEMBLE - HM")]
            best = _best_fusion(group, metric)
            if best is not None:
                pairs.append((best, "DEEP", f"best fusion ({best}) - DEEP"))
        else:
            pairs = [(a, b, f"{a} - {b}") for a, b in comparisons]
        for a, b, label in pairs:
            if a not in wide or b not in wide:
                continue
            both = wide[[a, b]].dropna()
            d = (both[a] - both[b]).to_numpy()
            lo, hi = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed)
            p = wilcoxon_p(d)
            if lo > 0 and p < alpha:
                verdict = f"{a} better"
            elif hi < 0 and p < alpha:
                verdict = f"{b} better"
            else:
                verdict = "no significant difference"
            rows.append(
                {
                    "dataset": dataset,
                    "comparison": label,
                    "a": a,
                    "b": b,
                    "n": int(len(d)),
                    "mean_a": float(both[a].mean()),
                    "mean_b": float(both[b].mean()),
                    "mean_diff": float(d.mean()) if len(d) else float("nan"),
                    "ci_low": lo,
                    "ci_high": hi,
                    "wilcoxon_p": p,
                    "wins": int((d > 0).sum()),
                    "losses": int((d < 0).sum()),
                    "ties": int((d == 0).sum()),
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(rows)


def fusion_diagnostics(report: SegmentationReport) -> pd.DataFrame:
    """Why AND does or does not beat DEEP, per dataset.

    Pixel shares are relative to each image's ground-truth area, averaged
    over images, and taken *before* the area opening:

    ``and_removes_fp``
        DEEP's false positives that HM vetoes (what AND gains);
    ``and_removes_tp``
        DEEP's true positives that HM vetoes, i.e. HM's false negatives
        inside DEEP (what AND loses);
    ``or_adds_tp`` / ``or_adds_fp``
        HM's pixels outside DEEP that are nucleus / not (what OR gains / loses).

    Plus the mean precision and recall of HM and DEEP, and the share of
    images where ENSEMBLE's IoU is above, equal to or below DEEP's.
    """
    ag = report.agreement
    pi = report.per_image
    rows = []
    for dataset, group in ag.groupby("dataset", sort=False):
        gt = group[[c for c in AGREEMENT_COLUMNS if c.endswith("gt1")]].sum(axis=1)
        gt = gt.clip(lower=1).to_numpy(dtype=np.float64)

        def share(col: str, _g: pd.DataFrame = group, _gt: np.ndarray = gt) -> float:
            return float(np.mean(_g[col].to_numpy(dtype=np.float64) / _gt))

        p = pi[pi["dataset"] == dataset]
        wide = p.pivot(index="id", columns="method", values="iou")
        row: dict[str, Any] = {
            "dataset": dataset,
            "and_removes_fp": share("hm0_deep1_gt0"),
            "and_removes_tp": share("hm0_deep1_gt1"),
            "or_adds_tp": share("hm1_deep0_gt1"),
            "or_adds_fp": share("hm1_deep0_gt0"),
        }
        for method in ("HM", "DEEP", "ENSEMBLE"):
            m = p[p["method"] == method]
            row[f"{method.lower()}_pre"] = float(m["pre"].mean())
            row[f"{method.lower()}_rec"] = float(m["rec"].mean())
        if {"ENSEMBLE", "DEEP"} <= set(wide.columns):
            d = (wide["ENSEMBLE"] - wide["DEEP"]).to_numpy()
            row["share_and_above_deep"] = float(np.mean(d > 0))
            row["share_and_equal_deep"] = float(np.mean(d == 0))
            row["share_and_below_deep"] = float(np.mean(d < 0))
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- markdown


def markdown_table(frame: pd.DataFrame, index: bool = True, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured markdown table of ``frame`` (no ``tabulate`` needed)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "n/a" if not np.isfinite(v) else format(float(v), floatfmt)
        return str(v)

    head = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join([" --- "] * len(head)) + "|"]
    for key, row in frame.iterrows():
        cells = ([fmt(key)] if index else []) + [fmt(v) for v in row.tolist()]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    """JSON-ready: NumPy scalars to Python, NaN to None, keys to str."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- the report


@dataclass
class SegmentationReport:
    """Per-image scores of HM, DEEP and the fusions, on one or more datasets.

    Create one with :func:`evaluate_methods` (one dataset) and combine with
    :meth:`concat`.

    Attributes
    ----------
    per_image : DataFrame
        ``dataset, id, method, trained_on, mode, acc, pre, rec, spec, dsc, iou``.
    agreement : DataFrame
        ``dataset, id, trained_on`` and the pixel counts of
        :data:`AGREEMENT_COLUMNS`.
    info : dict
        Per dataset: ``n_images, trained_on, mode, reason, run_dir, threshold,
        fusions, seconds_handcrafted, seconds_deep``.
    """

    per_image: pd.DataFrame
    agreement: pd.DataFrame
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0  # of the bootstraps; the same for the tables shown and the files saved

    @classmethod
    def concat(cls, reports: Sequence[SegmentationReport]) -> SegmentationReport:
        """One report of several (datasets must differ)."""
        reports = list(reports)
        if not reports:
            raise ValueError("no reports to combine")
        info: dict[str, dict[str, Any]] = {}
        for r in reports:
            clash = set(info) & set(r.info)
            if clash:
                raise ValueError(f"dataset(s) {sorted(clash)} appear in more than one report")
            info.update(r.info)
        return cls(
            pd.concat([r.per_image for r in reports], ignore_index=True),
            pd.concat([r.agreement for r in reports], ignore_index=True),
            info,
            reports[0].seed,
        )

    @property
    def datasets(self) -> list[str]:
        """Dataset names, in order of appearance."""
        return list(dict.fromkeys(self.per_image["dataset"]))

    @property
    def methods(self) -> list[str]:
        """Method names, in table order."""
        return _method_order(self.per_image["method"].unique())

    def summary(self, metrics: Sequence[str] = SEGMENTATION_METRICS) -> pd.DataFrame:
        """Tidy ``dataset, method, metric, mean, std, n`` (:func:`summarize_per_image`)."""
        return summarize_per_image(self.per_image, metrics)

    def summary_wide(self, stat: str = "mean") -> pd.DataFrame:
        """``stat`` (``"mean"`` or ``"std"``) by (dataset, method), one column per metric."""
        s = self.summary()
        wide = s.pivot_table(index=["dataset", "method"], columns="metric", values=stat)
        wide = wide[[m for m in SEGMENTATION_METRICS if m in wide.columns]]
        order = [(d, m) for d in self.datasets for m in self.methods if (d, m) in wide.index]
        wide = wide.loc[order]
        wide.columns.name = None
        return wide

    def paper_table(self, dataset: str, **kwargs: Any) -> pd.DataFrame:
        """The paper's layout for one dataset (:func:`paper_table`)."""
        return paper_table(self.summary(), dataset, **kwargs)

    def overall_table(self, metric: str = "iou") -> pd.DataFrame:
        """Mean ``metric`` per method and dataset beside the paper's (:func:`overall_table`)."""
        return overall_table(self.summary(), metric)

    def paired(self, **kwargs: Any) -> pd.DataFrame:
        """Paired comparisons per dataset (:func:`paired_comparison`; seed :attr:`seed`)."""
        kwargs.setdefault("seed", self.seed)
        return paired_comparison(self.per_image, **kwargs)

    def mean_ci(self, metric: str = "iou", **kwargs: Any) -> pd.DataFrame:
        """Mean ``metric`` with a bootstrap CI beside the paper's (:func:`mean_ci`)."""
        kwargs.setdefault("seed", self.seed)
        return mean_ci(self.per_image, metric, **kwargs)

    def diagnostics(self) -> pd.DataFrame:
        """What each fusion gains and loses against DEEP (:func:`fusion_diagnostics`)."""
        return fusion_diagnostics(self)

    def best_fusion(self, dataset: str, metric: str = "iou") -> str | None:
        """The fusion with the highest mean ``metric`` on ``dataset``."""
        return _best_fusion(self.per_image[self.per_image["dataset"] == dataset], metric)

    def worst(self, method: str, n: int = 4, dataset: str | None = None, metric: str = "iou"):
        """The ``n`` lowest-``metric`` rows of ``method`` (on ``dataset``, or on all)."""
        p = self.per_image[self.per_image["method"] == method]
        if dataset is not None:
            p = p[p["dataset"] == dataset]
        return p.nsmallest(n, metric)

    # ------------------------------------------------------------------ writers

    def to_csv(self, folder: str | os.PathLike) -> list[Path]:
        """Write the tables as CSV files into ``folder``.

        ``per_image.csv``, ``summary.csv``, ``paired.csv``, ``agreement.csv``,
        ``diagnostics.csv`` and one ``paper_table_<dataset>.csv`` per dataset.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        frames = {
            "per_image": self.per_image,
            "summary": self.summary(),
            "paired": self.paired(),
            "agreement": self.agreement,
            "diagnostics": self.diagnostics(),
        }
        paths = []
        for name, frame in frames.items():
            frame.to_csv(out / f"{name}.csv", index=False)
            paths.append(out / f"{name}.csv")
        for d in self.datasets:
            p = out / f"paper_table_{d}.csv"
            self.paper_table(d, mark="").to_csv(p)
            paths.append(p)
        return paths

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: info, summary (nested), paper tables, paired, diagnostics."""
        s = self.summary()
        nested: dict[str, Any] = {}
        for r in s.itertuples():
            nested.setdefault(r.dataset, {}).setdefault(r.method, {})[r.metric] = {
                "mean": r.mean,
                "std": r.std,
                "n": r.n,
            }
        return _clean(
            {
                "info": self.info,
                "summary": nested,
                "overall_iou": self.overall_table().to_dict(orient="index"),
                "paper_tables": {
                    d: self.paper_table(d, mark="").to_dict(orient="index") for d in self.datasets
                },
                "iou_ci": self.mean_ci().to_dict(orient="records"),
                "paired": self.paired().to_dict(orient="records"),
                "diagnostics": self.diagnostics().to_dict(orient="records"),
            }
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return p

    def to_markdown(self) -> str:
        """Every table as markdown: per dataset the paper layout and the paired tests."""
        parts = ["## Mean IoU per dataset", "", markdown_table(self.overall_table()), ""]
        paired = self.paired()
        diag = self.diagnostics()
        cis = self.mean_ci()
        for d in self.datasets:
            i = self.info.get(d, {})
            parts += [
                f"## {d}",
                "",
                f"{i.get('n_images', '?')} images; U-Net trained on {i.get('trained_on', '?')}, "
                f"{i.get('mode', '?')} ({i.get('reason', '')}).",
                "",
                markdown_table(self.paper_table(d)),
                "",
            ]
            ci = cis[cis["dataset"] == d].drop(columns=["dataset"]).set_index("method")
            ci["paper_in_ci"] = ci["paper_in_ci"].map(lambda v: "n/a" if v is None else str(v))
            parts += [
                "Mean IoU with a 95 % bootstrap CI, beside the paper:",
                "",
                markdown_table(ci),
                "",
            ]
            pd_ = paired[paired["dataset"] == d].drop(columns=["dataset", "a", "b"])
            if len(pd_):
                pd_ = pd_.set_index("comparison")
                pd_["wilcoxon_p"] = pd_["wilcoxon_p"].map(lambda v: f"{v:.2g}")
                parts += ["Paired per-image IoU differences:", "", markdown_table(pd_), ""]
            dd = diag[diag["dataset"] == d].drop(columns=["dataset"])
            if len(dd):
                parts += [
                    "Fusion diagnostics (shares of the ground-truth area, before the area "
                    "opening):",
                    "",
                    markdown_table(dd.T.rename(columns={dd.index[0]: "value"})),
                    "",
                ]
        return "\n".join(parts)

    def save(self, folder: str | os.PathLike, name: str = "segmentation_report") -> list[Path]:
        """CSV files, ``<name>.json`` and ``<name>.md`` into ``folder``."""
        out = Path(folder)
        paths = self.to_csv(out)
        paths.append(self.to_json(out / f"{name}.json"))
        md = out / f"{name}.md"
        md.write_text(self.to_markdown() + "\n")
        paths.append(md)
        return paths


# --------------------------------------------------------------------------- generalization


@dataclass
class Generalization:
    """U-Nets applied across datasets.

    Attributes
    ----------
    per_image : DataFrame
        As :attr:`SegmentationReport.per_image`, for every (run, dataset) pair;
        ``trained_on`` names the run.
    runs : list of str
        Run labels (rows of the matrix), in order.
    datasets : list of str
        Evaluated datasets (columns), in order.
    """

    per_image: pd.DataFrame
    runs: list[str]
    datasets: list[str]

    def matrix(
        self, method: str = "DEEP", metric: str = "iou", handcrafted: bool = True
    ) -> pd.DataFrame:
        """Mean ``metric``: rows = trained on, columns = evaluated on.

        With ``handcrafted``, one more row :data:`HANDCRAFTED_ROW` (HM needs no
        training, so its row is the same whatever the run). Missing pairs are NaN.
        """
        p = self.per_image
        m = p[p["method"] == method].groupby(["trained_on", "dataset"])[metric].mean()
        out = m.unstack("dataset").reindex(index=self.runs, columns=self.datasets)
        if handcrafted:
            hm = p[p["method"] == "HM"].drop_duplicates(["dataset", "id"])
            out.loc[HANDCRAFTED_ROW] = hm.groupby("dataset")[metric].mean().reindex(self.datasets)
        out.index.name = "trained on"
        out.columns.name = "evaluated on"
        return out

    def modes(self) -> pd.DataFrame:
        """The U-Net's mode of each cell (``out-of-fold`` on the diagonal, ``fold-average`` off)."""
        p = self.per_image[self.per_image["method"] == "DEEP"]
        m = p.groupby(["trained_on", "dataset"])["mode"].first()
        out = m.unstack("dataset").reindex(index=self.runs, columns=self.datasets)
        out.index.name = "trained on"
        out.columns.name = "evaluated on"
        return out


def generalization(
    runs: Mapping[str, Any] | Sequence[Any],
    datasets: Mapping[str, Dataset] | Sequence[Dataset],
    *,
    reports: Sequence[SegmentationReport] = (),
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
    fusions: Mapping[str, EnsembleParams] | None = None,
    batch_size: int = 16,
    progress: bool = True,
) -> Generalization:
    """Evaluate every U-Net run on every dataset (the cross-dataset matrix).

    Parameters
    ----------
    runs : mapping or sequence
        :class:`~leukolib.segmentation.unet.UNetRun` objects or run
        directories; a mapping gives the row labels, else the runs' dataset names.
    datasets : mapping or sequence of Dataset
        The columns (labels: the mapping's keys or the datasets' names).
    reports : sequence of SegmentationReport
        Evaluations already done (e.g. the main report), reused for the
        (``trained_on``, dataset) pairs they hold instead of recomputing.
    handcrafted, fusions, batch_size, progress :
        As :func:`evaluate_methods`.

    Returns
    -------
    Generalization
    """
    from leukolib.segmentation.unet import UNetRun, load_unet_run

    items = list(runs.items()) if isinstance(runs, Mapping) else [(None, r) for r in runs]
    loaded: list[tuple[str, UNetRun]] = []
    for label, r in items:
        run = r if isinstance(r, UNetRun) else load_unet_run(r)
        loaded.append((label or run.dataset_name, run))
    ds_items = (
        list(datasets.items()) if isinstance(datasets, Mapping) else [(d.name, d) for d in datasets]
    )
    have: dict[tuple[str, str], pd.DataFrame] = {}
    for rep in reports:
        for (t, d), g in rep.per_image.groupby(["trained_on", "dataset"], sort=False):
            have[(str(t), str(d))] = g
    parts = []
    for label, run in loaded:
        for dname, ds in ds_items:
            predictor = run.predictor_for(ds)
            part = have.get((label, ds.name))
            # Reuse an evaluation only if it is of the same images in the same mode.
            if (
                part is None
                or set(part["mode"]) - {"no training"} != {predictor.mode}
                or list(dict.fromkeys(part["id"])) != list(ds.ids)
            ):
                part = evaluate_methods(
                    ds,
                    predictor,
                    handcrafted=handcrafted,
                    fusions=fusions,
                    trained_on=label,
                    batch_size=batch_size,
                    progress=progress,
                ).per_image
            parts.append(part.assign(dataset=dname))
    per_image = pd.concat(parts, ignore_index=True)
    return Generalization(per_image, [lab for lab, _ in loaded], [d for d, _ in ds_items])


def run_dataset(
    run: Any, max_images: int | None = None, seed: int = 0, root: str | os.PathLike | None = None
) -> Dataset | None:
    """The dataset a U-Net run was trained on, reloaded from the root in its record.

    Parameters
    ----------
    run : UNetRun
    max_images : int, optional
        Cap, as :func:`leukolib.notebook.limit_dataset` (a profile's ``max_images``).
    seed : int
        Seed of that cap.
    root : path, optional
        The dataset folder, when the recorded one is not valid here. A
        recorded relative root is tried as given, then from the repository
        root (where the benchmark commands run).

    Returns
    -------
    Dataset or None
        ``None`` when the record has no root (generated data) or the folder
        cannot be read here.
    """
    from leukolib.book import REPO_ROOT
    from leukolib.data import load_dataset
    from leukolib.errors import LeukolibError
    from leukolib.notebook import limit_dataset

    info = run.record.get("dataset", {})
    name, recorded = info.get("name"), root or info.get("root")
    if not name or not recorded or name == "synthetic":
        return None
    candidates = [Path(recorded)]
    if not candidates[0].is_absolute():
        candidates.append(REPO_ROOT / recorded)
    for folder in candidates:
        try:
            return limit_dataset(load_dataset(name, folder), max_images, seed)
        except (LeukolibError, OSError):
            continue
    return None


# --------------------------------------------------------------------------- gallery


def failure_gallery(
    report: SegmentationReport,
    dataset: Dataset,
    deep: Any,
    *,
    methods: Sequence[str] = PAPER_METHODS,
    n_worst: int = 2,
    metric: str = "iou",
    handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
    fusions: Mapping[str, EnsembleParams] | None = None,
    size: float = 2.4,
) -> Figure:
    """The worst images of each method, with every method's contour side by side.

    For each of ``methods`` the ``n_worst`` images with the lowest ``metric``
    on ``dataset`` are picked (an image worst for two methods appears once);
    their masks are recomputed (one HM and one U-Net call per image shown)
    and drawn with :func:`leukolib.plotting.show_method_masks`: ground truth
    in yellow, the method's mask in cyan, the metric in each title.

    Parameters
    ----------
    report : SegmentationReport
        Holds the per-image scores of ``dataset``.
    dataset : Dataset
    deep : object
        The same U-Net side as for :func:`evaluate_methods`.
    methods : sequence of str
        Columns of the figure (default HM, DEEP, ENSEMBLE).
    n_worst : int
        Images per method.
    metric : str
    handcrafted, fusions :
        As :func:`evaluate_methods`.
    size : float
        Panel size in inches.
    """
    from leukolib.plotting import show_method_masks

    predictor = _as_predictor(deep, dataset)
    segment = handcrafted or _handcrafted_default()
    threshold = float(getattr(predictor, "threshold", 0.5))
    p = report.per_image[report.per_image["dataset"] == dataset.name]
    picked: dict[str, list[str]] = {}
    for method in methods:
        for sid in p[p["method"] == method].nsmallest(n_worst, metric)["id"]:
            picked.setdefault(str(sid), []).append(method)
    by_id = {sid: i for i, sid in enumerate(dataset.ids)}
    samples = [dataset[by_id[sid]] for sid in picked]
    probs = _probas(predictor, samples, 16)
    masks: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    for s, prob in zip(samples, probs, strict=True):
        all_masks = method_masks(segment(s.image), prob, threshold, fusions)
        for m in methods:
            masks[m].append(all_masks[m])
    scores = p.pivot(index="id", columns="method", values=metric)
    score_lists = {m: [float(scores.loc[s.id, m]) for s in samples] for m in methods}
    titles = [
        f"{s.id} (worst {', '.join(why)})" for s, why in zip(samples, picked.values(), strict=True)
    ]
    return show_method_masks(samples, masks, score_lists, titles, metric=metric, size=size)
