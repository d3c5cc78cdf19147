"""The robustness results as tables: Table 7 beside the paper, curves, paired tests, files.

Everything here reads the per-image tables of :mod:`leukolib.robustness.sweeps`
and returns tidy pandas tables (displayed with :func:`leukolib.tables.styled`,
written by :func:`save_report`):

* :func:`table7`: accuracy and weighted precision, recall and F1 per model
  on the corrupted test split (the paper's Table 7 reads as weighted: its F1
  equals its recall for every model), the clean accuracy beside them;
  :func:`table7_beside_paper` adds the paper's rows;
* :func:`accuracy_curves`: accuracy per model, way, corruption and severity
  with its exact (Clopper-Pearson) interval, severity 0 being the clean
  images;
* :func:`retained_accuracy` and :func:`compare_degradation`: per image, the
  accuracy kept under a corruption (mean over severities minus clean), and
  paired comparisons of two models (or two ways) on it;
* :func:`segmentation_curves` and :func:`compare_segmentation`: the same for
  the segmentation methods' IoU (bootstrap intervals of the mean);

A table of paired comparisons (one row per corruption) is one family of
tests: its Wilcoxon p-values are Holm-adjusted over its rows and the
verdicts decided on the adjusted ones (:func:`leukolib.stats.holm_paired`);
:func:`leukolib.tables.paired_view` shows both p-values and says so in its caption.
* :func:`pick_models`: the best segmented and the best raw model, chosen on
  their out-of-fold validation accuracy (never on the test split);
* :func:`reference_tables`: the benchmark's results on the shared datasets
  (:mod:`leukolib.reference`), as tables a notebook shows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukolib.stats import bootstrap_ci, holm_paired, outcomes_ci, paired_comparison

__all__ = [
    "accuracy_curves",
    "compare_degradation",
    "compare_segmentation",
    "pick_models",
    "reference_tables",
    "retained_accuracy",
    "save_report",
    "segmentation_curves",
    "table7",
    "table7_beside_paper",
]

#: Table 7's columns, the paper's metric keys (:func:`leukolib.paper.reported`).
TABLE7_METRICS: tuple[str, ...] = ("acc", "pre", "rec", "f1")


def table7(per_image: pd.DataFrame, class_names: Sequence[str],
           corruption: str = "paper") -> pd.DataFrame:
    """Table 7: every model (and way) on the corrupted split, weighted metrics, clean accuracy.

    Parameters
    ----------
    per_image : DataFrame
        :func:`~leukolib.robustness.sweeps.paper_setting` (or a sweep).
    class_names : sequence of str
    corruption : str
        Which corrupted rows to score (``"paper"``).

    Returns
    -------
    DataFrame
        Index ``(model, way)``; columns ``acc, pre, rec, f1`` (weighted
        averages over classes), ``clean_acc`` and ``n``.
    """
    from leukolib.metrics import classification_metrics

    clean = per_image[per_image["severity"] == 0].groupby("model", sort=False)["correct"].mean()
    bad = per_image[per_image["corruption"] == corruption]
    rows = []
    for (model, way), g in bad.groupby(["model", "way"], sort=False):
        m = classification_metrics(g["label"], g["pred"], list(class_names))
        rows.append({"model": model, "way": way, "acc": m["accuracy"],
                     "pre": m["precision_weighted"], "rec": m["recall_weighted"],
                     "f1": m["f1_weighted"], "clean_acc": float(clean.get(model, np.nan)),
                     "n": len(g)})
    return pd.DataFrame(rows).set_index(["model", "way"])


def table7_beside_paper(t7: pd.DataFrame, way: str = "after") -> pd.DataFrame:
    """Our Table 7 (one way for segmented models, ``raw`` for the others) and the paper's rows."""
    from leukolib import paper
    from leukolib.tables import beside_paper

    ours = t7[t7.index.get_level_values("way").isin([way, "raw"])].droplevel("way")
    out = beside_paper(ours, paper.reported(table="7"), [*TABLE7_METRICS, "clean_acc"],
                       label="model")
    return out


def accuracy_curves(per_image: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Accuracy per model, way, corruption and severity, with its exact 95 % interval.

    The interval is Clopper-Pearson's (:func:`leukolib.stats.outcomes_ci`):
    an accuracy is a proportion of images, and a perfect score still has an
    interval. The clean accuracy (severity 0) is repeated in every
    corruption's curve, and a segmented model's clean rows in both of its
    ways. ``n_boot`` and ``seed`` are unused (kept for callers).

    Returns
    -------
    DataFrame
        ``model, way, corruption, severity, n, accuracy, accuracy_low,
        accuracy_high``.
    """
    bad = per_image[per_image["severity"] > 0]
    rows = []
    for (model, way, corr, sev), g in bad.groupby(["model", "way", "corruption", "severity"],
                                                  sort=False):
        lo, hi = outcomes_ci(g["correct"].to_numpy(dtype=float))
        rows.append({"model": model, "way": way, "corruption": corr, "severity": int(sev),
                     "n": len(g), "accuracy": float(g["correct"].mean()), "accuracy_low": lo,
                     "accuracy_high": hi})
    clean = per_image[per_image["severity"] == 0]
    for model, g in clean.groupby("model", sort=False):
        lo, hi = outcomes_ci(g["correct"].to_numpy(dtype=float))
        done = bad[bad["model"] == model][["way", "corruption"]].drop_duplicates()
        for way, corr in done.itertuples(index=False):
            rows.append({"model": model, "way": way, "corruption": corr, "severity": 0,
                         "n": len(g), "accuracy": float(g["correct"].mean()),
                         "accuracy_low": lo, "accuracy_high": hi})
    out = pd.DataFrame(rows)
    return out.sort_values(["model", "way", "corruption", "severity"], kind="stable",
                           ignore_index=True)


def retained_accuracy(per_image: pd.DataFrame) -> pd.DataFrame:
    """Per image: its correctness under a corruption (mean over severities) minus when clean.

    Returns
    -------
    DataFrame
        ``model, way, corruption, id, retained`` (0: nothing lost; -1: right
        on the clean image, wrong at every severity).
    """
    clean = per_image[per_image["severity"] == 0].set_index(["model", "id"])["correct"]
    bad = per_image[per_image["severity"] > 0]
    mean = bad.groupby(["model", "way", "corruption", "id"], sort=False)["correct"].mean()
    out = mean.reset_index()
    base = clean.reindex(pd.MultiIndex.from_frame(out[["model", "id"]])).to_numpy(dtype=float)
    out["retained"] = out.pop("correct").to_numpy(dtype=float) - base
    return out


def compare_degradation(
    per_image: pd.DataFrame,
    a: tuple[str, str],
    b: tuple[str, str],
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Which of two (model, way) pairs loses less accuracy, corruption by corruption, paired.

    Parameters
    ----------
    per_image : DataFrame
        :func:`~leukolib.robustness.sweeps.classifier_sweep`.
    a, b : (str, str)
        ``(model, way)``, e.g. ``("segmented-mish-medium", "before")`` and
        ``("raw-relu-linear", "raw")``.

    Returns
    -------
    DataFrame
        Index ``corruption`` (and ``all``: every corruption's retained
        accuracy averaged per image); the columns of
        :func:`leukolib.stats.paired_comparison` on the retained accuracies,
        ``mean_a``/``mean_b`` being the mean accuracy change of each, and
        ``wilcoxon_p_holm``: the p-values Holm-adjusted over the table's
        rows, on which the verdicts are decided (``attrs["note"]``).
    """
    r = retained_accuracy(per_image)
    rows = {}
    names = (f"{a[0]} ({a[1]})", f"{b[0]} ({b[1]})")
    pick = {k: r[(r["model"] == m) & (r["way"] == w)] for k, (m, w) in (("a", a), ("b", b))}
    for corr in list(dict.fromkeys(pick["a"]["corruption"])) + ["all"]:
        sel = {k: (v if corr == "all" else v[v["corruption"] == corr])
               .groupby("id")["retained"].mean() for k, v in pick.items()}
        x, y = sel["a"].align(sel["b"], join="inner")
        rows[corr] = paired_comparison(x.to_numpy(), y.to_numpy(), names=names, n_boot=n_boot,
                                       seed=seed)
    return _family(rows, names)


def _family(rows: Mapping[str, Mapping[str, Any]], names: tuple[str, str]) -> pd.DataFrame:
    """One row per corruption, the p-values Holm-adjusted over the rows, the verdicts on them."""
    out = pd.DataFrame(rows).T
    for c in ("mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "wilcoxon_p"):
        if c in out:
            out[c] = out[c].astype(float)
    out.index.name = "corruption"
    return holm_paired(out, names)


def segmentation_curves(per_image: pd.DataFrame, metric: str = "iou", n_boot: int = 2000,
                        seed: int = 0) -> pd.DataFrame:
    """Mean ``metric`` per method, corruption and severity with a bootstrap interval.

    Returns
    -------
    DataFrame
        ``method, corruption, severity, n, <metric>, <metric>_low,
        <metric>_high``; the clean score (severity 0) in every corruption.
    """
    rows = []
    corrs = [c for c in dict.fromkeys(per_image["corruption"]) if c != "none"]
    for (method, corr, sev), g in per_image.groupby(["method", "corruption", "severity"],
                                                    sort=False):
        lo, hi = bootstrap_ci(g[metric].to_numpy(), n_boot=n_boot, seed=seed)
        for c in (corrs if corr == "none" else [corr]):
            rows.append({"method": method, "corruption": c, "severity": int(sev), "n": len(g),
                         metric: float(g[metric].mean()), f"{metric}_low": lo,
                         f"{metric}_high": hi})
    return pd.DataFrame(rows).sort_values(["method", "corruption", "severity"], kind="stable",
                                          ignore_index=True)


def compare_segmentation(
    per_image: pd.DataFrame,
    a: str,
    b: str,
    metric: str = "iou",
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Method ``a`` against ``b`` under each corruption: the paired per-image ``metric``.

    Each image's score is averaged over the severities of a corruption, so
    the comparison asks which method is better on corrupted images, not only
    which loses less; the clean images are the ``none`` row.

    Returns
    -------
    DataFrame
        Index ``corruption`` (``none`` first); the columns of
        :func:`leukolib.stats.paired_comparison` and ``wilcoxon_p_holm``, the
        p-values Holm-adjusted over the table's rows, on which the verdicts
        are decided (``attrs["note"]``).
    """
    rows = {}
    for corr, g in per_image.groupby("corruption", sort=False):
        wide = g.groupby(["id", "method"])[metric].mean().unstack("method")
        rows[corr] = paired_comparison(wide[a].to_numpy(), wide[b].to_numpy(), names=(a, b),
                                       n_boot=n_boot, seed=seed)
    return _family(rows, (a, b))


def pick_models(runs: Mapping[str, Any]) -> dict[str, str]:
    """The best segmented and the best raw model (:mod:`leukolib.classification.best`).

    Parameters
    ----------
    runs : mapping
        Key -> :class:`~leukolib.classification.ClassifierRun` (the mean
        validation accuracy of its folds is read; the test split is not
        looked at).

    Returns
    -------
    dict
        ``{"segmented": key, "raw": key}`` (only the inputs present).
    """
    from leukolib.classification.best import best_per_input

    return best_per_input(runs)


def save_report(folder: str | os.PathLike, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """Write each table as ``<name>.csv`` and ``<name>.json`` into ``folder``."""
    from leukolib.tables import save_table

    files: list[Path] = []
    for name, frame in tables.items():
        if isinstance(frame.index, pd.MultiIndex):  # save_table keeps a named index only
            frame = frame.reset_index()
        files += save_table(frame, folder, name)
    return files


def reference_tables(results: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The robustness benchmark's results (``{dataset: results}``) as tables.

    Returns
    -------
    dict
        ``table7`` (every model and way, per dataset), ``clusters`` (ratio,
        silhouette, Davies-Bouldin per dataset and model) and ``segmentation``
        (mean IoU per dataset, corruption and method, clean and at the
        strongest severity); a table is left out when no dataset has it.
    """
    t7, clusters, seg = [], [], []
    for dataset, r in results.items():
        for row in (r.get("robustness") or {}).get("table7", []):
            t7.append({"dataset": dataset, **row})
        for model, row in ((r.get("clusters") or {}).get("per_model") or {}).items():
            clusters.append({"dataset": dataset, "model": model, **row})
        s = r.get("segmentation") or {}
        for row in s.get("iou", []):
            seg.append({"dataset": dataset, **row})
    out = {}
    if t7:
        out["Table 7: accuracy under the paper's blur and noise (corruption before or after "
            "segmentation, or raw)"] = (pd.DataFrame(t7).set_index(["dataset", "model", "way"])
                                         .rename(columns=READABLE))
    if clusters:
        out["Table 8 and bounded scores: how the logits cluster by class"] = (
            pd.DataFrame(clusters).set_index(["dataset", "model"]).rename(columns=READABLE))
    if seg:
        frame = pd.DataFrame(seg)
        top = frame.groupby("dataset")["severity"].transform("max")
        frame = frame[(frame["severity"] == 0) | (frame["severity"] == top)]
        frame = frame.assign(level=np.where(frame["severity"] == 0, "clean", "strongest"),
                             corruption=frame["corruption"].str.replace("_", " "))
        out["mean IoU of the segmentation, clean and at the strongest corruption"] = (
            frame.pivot_table(index=["dataset", "corruption"], columns=["method", "level"],
                              values="iou"))
    from leukolib.data.datasets import DISPLAY_NAMES, display_name

    return {k: t.rename(index=lambda x: display_name(x) if x in DISPLAY_NAMES else x)
            for k, t in out.items()}


#: Column names of the shipped tables as a reader reads them.
READABLE = {"acc": "accuracy", "pre": "precision", "rec": "recall", "f1": "F1",
            "clean_acc": "clean accuracy", "ratio_dist_sd": "Dist/SD ratio",
            "normalized_ratio": "normalised ratio", "davies_bouldin": "Davies-Bouldin",
            "dist_l1_l2": "distance 1-2", "dist_l1_l3": "distance 1-3",
            "dist_l2_l3": "distance 2-3", "dist_total": "total distance",
            "sd_total": "total SD"}
