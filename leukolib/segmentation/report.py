"""The segmentation results, beside the paper: tables, paired tests, diagnostics, files.

Everything here reads an :class:`~leukolib.segmentation.evaluate.Evaluation`
(per-image scores of HM, DEEP, the ensemble and other fusions on one or more
datasets) and returns tidy pandas tables that notebooks display with
:func:`leukolib.tables.styled` and the benchmark writes to files:

* :func:`paper_table`: one dataset in the layout of the paper's Tables 2-4,
  our methods first, then the paper's own rows and the published competitors
  of its Table 4 (with the article's reference numbers and test-set sizes);
* :func:`overall_table`: mean IoU per method and dataset beside the paper's
  ensemble row (its Table 2);
* :func:`iou_intervals`: mean IoU with a bootstrap interval, and whether the
  paper's number lies inside it;
* :func:`paired_table`: per-image paired differences between methods
  (:func:`leukolib.stats.paired_comparison`), the verdicts decided on
  p-values Holm-adjusted over the table's rows;
* :func:`fusion_diagnostics`: what AND removes from DEEP and what OR adds,
  which explains why one fusion wins on a dataset;
* :func:`save_report`: all of them as CSV, JSON and markdown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukolib.metrics import SEGMENTATION_METRICS
from leukolib.segmentation.ensemble import ENSEMBLE, EnsembleParams, keeps_handcrafted
from leukolib.segmentation.evaluate import AGREEMENT_COLUMNS, Evaluation
from leukolib.stats import bootstrap_ci, holm_paired, paired_comparison
from leukolib.tables import beside_paper, save_table, to_markdown

__all__ = [
    "fusion_diagnostics",
    "in_domain",
    "iou_intervals",
    "overall_table",
    "paired_table",
    "paper_table",
    "save_report",
]


def in_domain(ev: Evaluation) -> pd.DataFrame:
    """Per-image rows where the U-Net (if any) was trained on the evaluated dataset."""
    p = ev.per_image
    return p[(p["trained_on"] == p["dataset"]) | (p["trained_on"] == "none")]


def _means(per_image: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    return per_image.groupby("method", sort=False)[list(metrics)].mean()


def paper_table(
    ev: Evaluation, dataset: str, metrics: Sequence[str] = SEGMENTATION_METRICS
) -> pd.DataFrame:
    """One dataset in the paper's layout: our methods, then the paper's rows (Tables 2-4).

    Parameters
    ----------
    ev : Evaluation
    dataset : str
        leukolib's name (``"jtsc"``, ``"bloodseg"`` ...).
    metrics : sequence of str

    Returns
    -------
    DataFrame
        Columns ``source, method, n_images`` and the metrics (means; a metric
        the paper does not give is NaN). Competitors carry the article's
        reference number in brackets.
    """
    from leukolib import paper

    p = in_domain(ev)
    p = p[p["dataset"] == dataset]
    if p.empty:
        raise KeyError(f"no in-domain rows for dataset {dataset!r}")
    theirs = paper.reported(dataset=dataset)
    theirs = theirs[theirs["table"].isin(["2", "3", "4"]) & theirs["metric"].isin(metrics)]
    theirs = theirs.drop_duplicates(["method", "metric"], keep="last")  # Table 4 repeats Table 2
    table = beside_paper(_means(p, metrics), theirs, metrics)
    n_ours = p["id"].nunique()
    sizes = dict(zip(theirs["method"], theirs["n_test_images"], strict=True))
    table.insert(2, "n_images", [n_ours if s == "leukolib" else sizes.get(m.split(" [")[0])
                                 for s, m in zip(table["source"], table["method"], strict=True)])
    return table


def overall_table(ev: Evaluation, metric: str = "iou") -> pd.DataFrame:
    """Mean ``metric`` per method (rows) and dataset (columns), with the paper's ensemble row.

    Our ``mean`` column averages our datasets; the paper's row holds its
    Table 2 value for each of these datasets and, under ``mean``, the average
    of its six datasets.
    """
    from leukolib import paper

    p = in_domain(ev)
    wide = p.groupby(["method", "dataset"], sort=False)[metric].mean().unstack("dataset")
    wide = wide.reindex(index=list(dict.fromkeys(p["method"])), columns=ev.datasets)
    wide["mean"] = wide[ev.datasets].mean(axis=1)
    t2 = paper.reported(table="2", metric=metric).set_index("dataset")["value"]
    row = {d: t2.get(d, np.nan) for d in ev.datasets}
    row["mean"] = t2.get("average", np.nan)
    wide.loc["paper ENSEMBLE (AND, Table 2)"] = row
    wide.index.name, wide.columns.name = "method", f"mean {metric}"
    return wide


def iou_intervals(ev: Evaluation, metric: str = "iou", n_boot: int = 10_000,
                  seed: int = 0) -> pd.DataFrame:
    """Mean ``metric`` with a bootstrap 95 % interval per dataset and method, beside the paper.

    ``paper`` is the paper's number for the same dataset and method (its
    ensemble, Table 2; HM and DEEP only on its own dataset) and
    ``paper_in_ci`` says whether it lies in our interval (``None`` without
    one, e.g. every image scoring the same).
    """
    from leukolib import paper

    theirs = paper.reported(metric=metric)
    theirs = theirs[theirs["table"].isin(["2", "3"])]
    rows = []
    for (dataset, method), g in in_domain(ev).groupby(["dataset", "method"], sort=False):
        v = g[metric].to_numpy(dtype=float)
        lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
        hit = theirs[(theirs["dataset"] == dataset) & (theirs["method"] == method)]
        ref = float(hit["value"].iloc[0]) if len(hit) else np.nan
        rows.append({"dataset": dataset, "method": method, "n": v.size, "mean": v.mean(),
                     "ci_low": lo, "ci_high": hi, "paper": ref,
                     "paper_in_ci": bool(lo <= ref <= hi) if np.isfinite(ref + lo + hi)
                     else None})
    return pd.DataFrame(rows)


def paired_table(
    ev: Evaluation,
    comparisons: Sequence[tuple[str, str]] = ((ENSEMBLE, "DEEP"), (ENSEMBLE, "HM")),
    metric: str = "iou",
    n_boot: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired per-image differences ``a - b`` of ``metric``, per dataset and U-Net.

    Returns
    -------
    DataFrame
        ``dataset, trained_on, comparison`` and the fields of
        :func:`leukolib.stats.paired_comparison`, with ``wilcoxon_p_holm``:
        the p-values Holm-adjusted over the table's rows (one family of
        tests, ``attrs["note"]``). A winner is named only when the interval
        excludes 0 and the adjusted p < 0.05.
    """
    rows, names = [], []
    for (dataset, trained_on), g in ev.per_image.groupby(["dataset", "trained_on"], sort=False):
        wide = g.pivot_table(index="id", columns="method", values=metric)
        for a, b in comparisons:
            if a in wide and b in wide:
                r = paired_comparison(wide[a], wide[b], names=(a, b), n_boot=n_boot, seed=seed)
                rows.append({"dataset": dataset, "trained_on": trained_on,
                             "comparison": f"{a} - {b}", **r})
                names.append((a, b))
    frame = pd.DataFrame(rows)
    return holm_paired(frame, names) if len(frame) else frame


def fusion_diagnostics(ev: Evaluation) -> pd.DataFrame:
    """Why AND does or does not beat DEEP, per dataset and U-Net.

    Pixel shares are relative to each image's ground-truth area, averaged over
    images, before the area opening: ``and_removes_fp`` (DEEP's false
    positives that HM vetoes: what AND gains), ``and_removes_tp`` (DEEP's true
    positives that HM vetoes, HM's misses: what AND loses), ``or_adds_tp`` /
    ``or_adds_fp`` (HM's pixels outside DEEP that are nucleus or not); plus
    the mean precision and recall of HM and DEEP.
    """
    rows = []
    for (dataset, trained_on), g in ev.agreement.groupby(["dataset", "trained_on"], sort=False):
        gt = g[[c for c in AGREEMENT_COLUMNS if c.endswith("gt1")]].sum(axis=1).clip(lower=1)
        row: dict[str, Any] = {"dataset": dataset, "trained_on": trained_on}
        for name, col in (("and_removes_fp", "hm0_deep1_gt0"), ("and_removes_tp", "hm0_deep1_gt1"),
                          ("or_adds_tp", "hm1_deep0_gt1"), ("or_adds_fp", "hm1_deep0_gt0")):
            row[name] = float((g[col] / gt).mean())
        p = ev.per_image
        p = p[(p["dataset"] == dataset) & (p["trained_on"] == trained_on)]
        for method in ("HM", "DEEP"):
            m = p[p["method"] == method]
            row[f"{method.lower()}_pre"], row[f"{method.lower()}_rec"] = m["pre"].mean(), \
                m["rec"].mean()
        rows.append(row)
    return pd.DataFrame(rows)


def fallback_rates(ev: Evaluation, candidates: Mapping[str, EnsembleParams]) -> pd.DataFrame:
    """How often each fallback rule would keep the handcrafted mask alone, per U-Net and dataset.

    Both measures are read off the evaluation's agreement table: the IoU of
    the handcrafted mask and DEEP (:func:`~leukolib.segmentation.ensemble.
    agreement`) from its pixel counts, and the U-Net's ``uncertainty``.

    Parameters
    ----------
    ev : Evaluation
    candidates : mapping of str to EnsembleParams
        Column name to the rule (its ``fallback_iou`` and ``fallback_entropy``).

    Returns
    -------
    DataFrame
        Rows ``trained_on -> dataset`` (the dataset alone in-domain), a column
        per candidate, the share of images; ``n`` the number of images.

    Raises
    ------
    ValueError
        When a rule cuts DEEP at another threshold than the evaluation's
        agreement counts did, or measures the entropy of an evaluation that
        did not record it (its ``uncertainty`` missing or incomplete): the
        rates would silently describe another rule.
    """
    a = ev.agreement
    if a.empty:
        return pd.DataFrame()
    counted = {i["agreement_threshold"] for i in ev.info.values() if "agreement_threshold" in i}
    for name, q in candidates.items():
        if counted and q.threshold not in counted:
            raise ValueError(f"fallback rule {name!r} cuts DEEP at {q.threshold:g}, the "
                             f"evaluation counted agreement at {sorted(counted)}")
        if q.fallback_entropy and ("uncertainty" not in a or a["uncertainty"].isna().any()):
            raise ValueError(f"fallback rule {name!r} measures the U-Net's entropy, which this "
                             "evaluation did not record for every image")
    both = a["hm1_deep1_gt0"] + a["hm1_deep1_gt1"]
    either = a[[c for c in AGREEMENT_COLUMNS if c.startswith("hm1") or "deep1" in c]].sum(axis=1)
    iou = np.where(either > 0, both / either.clip(lower=1), 1.0)
    unsure = (a["uncertainty"].to_numpy() if "uncertainty" in a
              else np.zeros(len(a)))  # read only by rules without an entropy threshold
    unit = np.where(a["trained_on"] == a["dataset"], a["dataset"],
                    a["trained_on"] + " -> " + a["dataset"])
    out = pd.DataFrame({name: pd.Series([keeps_handcrafted(q, x, u) for x, u in
                                         zip(iou, unsure, strict=True)], dtype=float)
                        .groupby(unit, sort=False).mean()
                        for name, q in candidates.items()})
    out["n"] = pd.Series(unit).groupby(unit, sort=False).size()
    return out


def save_report(ev: Evaluation, folder: str | os.PathLike, n_boot: int = 10_000,
                seed: int = 0) -> list[Path]:
    """Every table as CSV and JSON, and ``segmentation_report.md``, into ``folder``."""
    out = Path(folder)
    paths: list[Path] = []
    paired, intervals = paired_table(ev, n_boot=n_boot, seed=seed), \
        iou_intervals(ev, n_boot=n_boot, seed=seed)
    frames = {"per_image": ev.per_image, "summary": ev.summary().reset_index(),
              "overall_iou": overall_table(ev), "iou_intervals": intervals, "paired": paired,
              "diagnostics": fusion_diagnostics(ev)}
    for name, frame in frames.items():
        paths += save_table(frame, out, name)
    md = ["# Segmentation report", "", "## Mean IoU per dataset", "",
          to_markdown(overall_table(ev)), ""]
    for d in ev.datasets:
        if in_domain(ev)["dataset"].eq(d).any():
            t = paper_table(ev, d).set_index(["source", "method"])
            paths += save_table(t.reset_index(), out, f"paper_table_{d}")
            md += [f"## {d}", "", to_markdown(t.reset_index(), index=False,
                                              best=list(SEGMENTATION_METRICS)), ""]
    md += ["## Paired comparisons", "", to_markdown(paired, index=False, best=[]), ""]
    (out / "segmentation_report.md").write_text("\n".join(md) + "\n")
    return [*paths, out / "segmentation_report.md"]
