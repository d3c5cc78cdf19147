"""Chapter 7's experiments on the trained classifiers: clusters, Table 7, sweeps, the claim.

What notebook 07 and ``benchmarks/robustness_report.py`` run, on the eight
runs of :func:`leukolib.classification.train_grid` (read, never retrained):

* :func:`classifier_grid`: the runs of a dataset, profile and seed (trained,
  or resumed, only when missing, so that the chapter runs alone);
* :func:`cluster_report`: Table 8 from the runs' saved test logits, with
  bootstrap intervals, the paired ratio difference of the best segmented and
  the best raw model, and the ratios under every reading of the cluster SD;
* :func:`robustness_report`: Table 7 (the paper's corruption, with the
  training augmentation) for every model, and the severity sweeps of the
  swept models, with curves and paired tests;
* :func:`segmentation_report`: the segmentation methods' IoU under the same
  corruptions;
* :func:`claims`: the paper's claims, each beside what these numbers say.

Every report has ``tables`` (saved as CSV and JSON by :meth:`save`) and
``numbers()`` (the key numbers for the notebook's JSON record).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukolib.data.base import Dataset
from leukolib.explain.clusters import (
    SPREADS,
    ClusterAnalysis,
    analyze_runs,
    cluster_intervals,
    compare_ratios,
    paper_table8,
    run_test_logits,
    table8,
)
from leukolib.robustness.corruptions import PAPER_SETTING, severity_levels
from leukolib.robustness.report import (
    accuracy_curves,
    compare_degradation,
    compare_segmentation,
    pick_models,
    save_report,
    segmentation_curves,
    table7,
    table7_beside_paper,
)
from leukolib.robustness.sweeps import (
    classifier_sweep,
    paper_setting,
    run_pipeline,
    segmentation_sweep,
    test_samples,
)
from leukolib.tables import format_interval

__all__ = [
    "ClusterReport",
    "RobustnessReport",
    "SegmentationReport",
    "claims",
    "classifier_grid",
    "cluster_report",
    "robustness_report",
    "segmentation_report",
]


def classifier_grid(dataset: Dataset, output_dir: str | os.PathLike, profile: Any, seed: int,
                    device: str | None = None, train: bool = True,
                    progress: bool = False) -> dict[str, Any]:
    """The eight classifier runs of ``dataset`` under ``output_dir`` (notebook 05's folder).

    With ``train`` (the default), :func:`~leukolib.classification.train_grid`
    is called first: it returns at once for complete runs and trains (or
    resumes) the missing ones, so the chapter runs without notebook 05.
    Without it, only the complete runs found are returned.
    """
    from leukolib.classification import classifier_runs, grid_keys, load_classifier_run
    from leukolib.runs import RunError

    folder = classifier_runs(output_dir, dataset, profile, seed)
    if train:
        from leukolib.classification import train_grid

        train_grid(dataset, folder, profile=profile, seed=seed, device=device, progress=progress)
    runs = {}
    for key in grid_keys():
        try:
            runs[key] = load_classifier_run(folder / key, device=device)
        except RunError:
            continue
    return runs


@dataclass
class ClusterReport:
    """Table 8 and around it (see :func:`cluster_report`)."""

    analyses: dict[str, ClusterAnalysis]
    tables: dict[str, pd.DataFrame]
    comparison: dict[str, Any]

    def numbers(self) -> dict[str, Any]:
        """Ratio, silhouette and Davies-Bouldin index per model, and the paired comparison."""
        t = self.tables["table8"][["ratio_dist_sd", "normalized_ratio", "silhouette",
                                   "davies_bouldin"]]
        return {"per_model": t.to_dict(orient="index"), "comparison": self.comparison}

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """Every table as CSV and JSON."""
        return save_report(folder, self.tables)

    def interval_view(self, digits: int = 2) -> pd.DataFrame:
        """Each score with its 95 % interval as ``"estimate [low, high]"`` (for reading)."""
        t8, ci = self.tables["table8"], self.tables["intervals"]
        names = {"ratio_dist_sd": "Dist/SD ratio", "silhouette": "silhouette",
                 "davies_bouldin": "Davies-Bouldin"}

        out = pd.DataFrame({label: [format_interval(float(t8.loc[m, k]), ci.loc[m, f"{k}_low"],
                                                    ci.loc[m, f"{k}_high"], digits)
                                    for m in t8.index]
                            for k, label in names.items()}, index=t8.index)
        out.index.name = "model"
        return out


def cluster_report(runs: Mapping[str, Any], folds: str | int = "best", spread: str = "total",
                   n_boot: int = 2000, seed: int = 0) -> ClusterReport:
    """Table 8 of the runs' saved test logits, with intervals and a paired comparison.

    Tables: ``table8`` (ours, every column), ``beside_paper`` (the shared
    columns with the paper's rows), ``intervals`` (95 % stratified bootstrap
    intervals of the ratio, silhouette and Davies-Bouldin index) and
    ``spreads`` (the ratio under each reading of a cluster's SD,
    :data:`~leukolib.explain.clusters.SPREADS`, with each model's rank).
    """
    analyses = analyze_runs(runs, folds, spread)
    t8 = table8(analyses)
    rows = {}
    for key, run in runs.items():
        logits, labels = run_test_logits(run, folds)
        ci = cluster_intervals(logits, labels, run.class_names, spread, n_boot, seed=seed)
        rows[key] = {f"{m}_{end}": v for m, (lo, hi) in ci.items()
                     for end, v in (("low", lo), ("high", hi))}
    intervals = pd.DataFrame(rows).T
    intervals.index.name = "model"
    ratios = pd.DataFrame({s: table8(analyze_runs(runs, folds, s))["ratio_dist_sd"]
                           for s in SPREADS}).astype(float)
    ranks = ratios.rank(ascending=False).add_suffix("_rank")
    spreads = pd.concat([ratios, ranks], axis=1)
    comparison: dict[str, Any] = {}
    best = pick_models(runs)
    if {"segmented", "raw"} <= set(best):
        (a, la), (b, _) = (run_test_logits(runs[best[k]], folds) for k in ("segmented", "raw"))
        comparison = {"a": best["segmented"], "b": best["raw"],
                      **compare_ratios(a, b, la, spread, n_boot, seed=seed)}
    return ClusterReport(analyses, {"table8": t8, "beside_paper": paper_table8(t8),
                                    "intervals": intervals, "spreads": spreads}, comparison)


@dataclass
class RobustnessReport:
    """Table 7 and the sweeps (see :func:`robustness_report`)."""

    models: dict[str, str]
    tables: dict[str, pd.DataFrame]
    degradation: dict[str, pd.DataFrame] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def numbers(self) -> dict[str, Any]:
        """Table 7, the clean and corrupted accuracy per curve point, the paired verdicts."""
        t7 = self.tables["table7"].reset_index()
        return {"table7": t7.to_dict(orient="records"), "models": self.models, **self.info,
                "degradation": {k: v.reset_index().to_dict(orient="records")
                                for k, v in self.degradation.items()}}

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """Every table (and each paired comparison) as CSV and JSON."""
        tables = {**self.tables, **{f"degradation_{k}": v for k, v in self.degradation.items()}}
        return save_report(folder, tables)


def _swept(runs: Mapping[str, Any], models: str | Sequence[str]) -> list[str]:
    if isinstance(models, str) and models in ("best", "all"):
        return list(runs) if models == "all" else list(pick_models(runs).values())
    keys = [models] if isinstance(models, str) else list(models)
    unknown = [k for k in keys if k not in runs]
    if unknown:
        raise ValueError(f"no runs {unknown}; have {', '.join(runs)}")
    return keys


def robustness_report(
    runs: Mapping[str, Any],
    dataset: Dataset,
    profile: Any,
    seed: int = 0,
    folds: str | int = "best",
    models: str | Sequence[str] | None = None,
    corruptions: Sequence[str] | None = None,
    augmentation: bool = True,
    progress: bool = False,
) -> RobustnessReport:
    """Table 7 for every run and the severity sweeps of the swept runs.

    Parameters
    ----------
    runs : mapping
        Key -> ClassifierRun, trained on ``dataset`` (the test split is read
        from it, checked by pixels).
    dataset : Dataset
        The classifiers' dataset.
    profile : str or Profile
        Its ``robustness`` sizes: severities, test images, models, resamples.
    folds : ``"best"``, ``"mean"`` or int
        Which model of each run (:func:`~leukolib.robustness.sweeps.run_pipeline`).
    models : ``"best"``, ``"all"`` or keys, optional
        The swept runs (default: the profile's).
    corruptions : sequence of str, optional
        Default: all six.
    augmentation : bool
        Add the classifiers' training augmentation to Table 7's corruption, as
        the paper did.
    """
    from leukolib.classification.augment import training_transforms
    from leukolib.profiles import get_profile

    rp = get_profile(profile).robustness
    first = next(iter(runs.values()))
    splits = {k: [str(i) for i in r.saved_logits()["test_ids"]] for k, r in runs.items()}
    odd = [k for k, ids in splits.items() if ids != splits[first.key]]
    if odd:
        raise ValueError(f"runs {odd} have another test split than {first.key}: the models must "
                         "be compared on the same images (train them with one train_grid call)")
    samples = test_samples(first, dataset)[: rp.max_images]
    args = ([s.image for s in samples], [s.label for s in samples], [s.id for s in samples])
    pipes = {k: run_pipeline(r, folds) for k, r in runs.items()}
    pp = paper_setting(list(pipes.values()), *args, seed=seed,
                       augmentation=training_transforms if augmentation else None)
    t7 = table7(pp, first.class_names)
    swept = _swept(runs, models or rp.models)
    sev = severity_levels(rp.severities)
    sweep = classifier_sweep([pipes[k] for k in swept], *args, corruptions, sev, seed,
                             progress=progress)
    curves = accuracy_curves(sweep, rp.n_boot, seed)
    degradation = {}
    best = pick_models({k: runs[k] for k in swept})
    if {"segmented", "raw"} <= set(best):
        s, r = best["segmented"], best["raw"]
        degradation = {
            "segmented_vs_raw": compare_degradation(sweep, (s, "before"),
                                                    (r, pipes[r].realistic_way), rp.n_boot, seed),
            "after_vs_before": compare_degradation(sweep, (s, "after"), (s, "before"),
                                                   rp.n_boot, seed)}
    info = {"n_test_images": len(samples), "severities": list(sev), "swept": swept,
            "folds": folds, "paper_setting": {**PAPER_SETTING, "augmentation": augmentation}}
    tables = {"table7": t7, "table7_beside_paper": table7_beside_paper(t7), "curves": curves,
              "paper_per_image": pp, "sweep_per_image": sweep}
    return RobustnessReport(best, tables, degradation, info)


@dataclass
class SegmentationReport:
    """The segmentation sweeps (see :func:`segmentation_report`)."""

    per_image: pd.DataFrame
    curves: pd.DataFrame
    comparisons: dict[str, pd.DataFrame]
    info: dict[str, Any]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Per-image scores, curves and the paired comparisons, by name."""
        return {"segmentation_per_image": self.per_image, "segmentation_curves": self.curves,
                **{f"segmentation_{k}": v for k, v in self.comparisons.items()}}

    def numbers(self) -> dict[str, Any]:
        """Mean IoU per method, corruption and severity, the paired verdicts and their tests.

        ``comparison_tests``: each comparison's rows (intervals, raw and
        Holm-adjusted p-values), so that a shipped verdict can be checked.
        """
        c = self.curves
        return {**self.info, "iou": c.to_dict(orient="records"),
                "comparisons": {k: v["verdict"].to_dict() for k, v in self.comparisons.items()},
                "comparison_tests": {k: v.reset_index().to_dict(orient="records")
                                     for k, v in self.comparisons.items()}}

    def save(self, folder: str | os.PathLike) -> list[Path]:
        """Every table as CSV and JSON."""
        return save_report(folder, self.tables)


def segmentation_report(dataset: Dataset, unet: Any, profile: Any, seed: int = 0,
                        corruptions: Sequence[str] | None = None,
                        progress: bool = False) -> SegmentationReport:
    """HM, DEEP and the ensembles (leukolib's and the paper's AND) under the corruptions.

    ``dataset`` is cut to the profile's ``segmentation_images`` (a seeded,
    stratified subset); ``unet`` is a U-Net run trained on it (out of fold),
    or ``None`` for the handcrafted method alone.
    """
    from leukolib.data import limit_dataset
    from leukolib.profiles import get_profile
    from leukolib.segmentation.ensemble import ENSEMBLE, EnsembleParams

    rp = get_profile(profile).robustness
    data = limit_dataset(dataset, rp.segmentation_images, seed)
    default = EnsembleParams()
    extra = {} if default.fusion == "and" else {"AND": EnsembleParams("and")}
    per_image = segmentation_sweep(data, unet, corruptions, severity_levels(rp.severities), seed,
                                   ensembles=extra, progress=progress)
    curves = segmentation_curves(per_image, "iou", rp.n_boot, seed)
    comparisons = {}
    if unet is not None:
        for other in ("DEEP", "HM"):
            comparisons[f"{ENSEMBLE}_vs_{other}"] = compare_segmentation(
                per_image, ENSEMBLE, other, "iou", rp.n_boot, seed)
    info = {"n_images": len(data), "ensemble": default.label(),
            # the run's folder name: a record must not carry the machine's paths
            "unet": None if unet is None else Path(str(getattr(unet, "run_dir", ""))).name}
    return SegmentationReport(per_image, curves, comparisons, info)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "supported" if ok else "not supported"


def claims(clusters: ClusterReport, robustness: RobustnessReport,
           segmentation: SegmentationReport | None = None) -> pd.DataFrame:
    """The paper's claims, each beside what this run measured and whether it supports it.

    A claim is "supported" only when the paired interval excludes no effect
    in the claimed direction (the verdicts of :func:`leukolib.stats.paired_comparison`,
    decided on the p-values Holm-adjusted within their table, and the
    bootstrap interval of the ratio difference).
    """
    from leukolib.stats import mcnemar

    rows = []
    pp = robustness.tables["paper_per_image"]
    best = robustness.models
    if {"segmented", "raw"} <= set(best):
        bad = pp[(pp["corruption"] == "paper") & pp["way"].isin(["before", "raw"])]
        a = bad[bad["model"] == best["segmented"]].set_index("id")
        b = bad[bad["model"] == best["raw"]].set_index("id").loc[a.index]
        m = mcnemar(a["label"], a["pred"], b["pred"])
        acc_a, acc_b = a["correct"].mean(), b["correct"].mean()
        rows.append({"claim": "segmentation makes the classifier more accurate on the "
                              "corrupted test split (Table 7)",
                     "measured": f"{best['segmented']} {acc_a:.3f} vs {best['raw']} {acc_b:.3f} "
                                 f"(McNemar p = {m['p']:.2g}, {m['n']} images)",
                     "verdict": _verdict(bool(acc_a > acc_b and m["p"] < 0.05))})
    c = clusters.comparison
    ok = None if not c or not np.isfinite(c["ci_low"]) else bool(c["ci_low"] > 0)
    rows.append({"claim": "the best segmented model's logits cluster better (Table 8's ratio)",
                 "measured": "n/a" if not c else
                 f"{c['a']} - {c['b']}: "
                 + format_interval(c["diff"], c["ci_low"], c["ci_high"], 2, signed=True),
                 "verdict": _verdict(ok)})
    d = robustness.degradation.get("segmented_vs_raw")
    if d is not None:
        r = d.loc["all"]
        rows.append({"claim": "the best segmented model loses less accuracy under graded "
                              "corruptions (sweeps, corruption before segmentation)",
                     "measured": f"accuracy change {r['mean_a']:+.3f} vs {r['mean_b']:+.3f}, "
                                 "difference " + format_interval(r["mean_diff"], r["ci_low"],
                                                                 r["ci_high"], 3, signed=True)
                                 + f" (Holm p = {r['wilcoxon_p_holm']:.2g})",
                     # the table's verdict: interval and Holm-adjusted p, segmented first
                     "verdict": _verdict(r["verdict"] != "no significant difference"
                                         and r["mean_diff"] > 0)})
    if segmentation is not None:
        for key, table in segmentation.comparisons.items():
            bad = table.drop(index="none", errors="ignore")
            wins = int(bad["verdict"].str.startswith("ENSEMBLE").sum())
            rows.append({"claim": f"the ensemble segments corrupted images better than "
                                  f"{key.split('_vs_')[1]} ('robust' segmentation)",
                         "measured": f"better under {wins} of {len(bad)} corruptions "
                                     "(paired, per image)",
                         "verdict": _verdict(wins == len(bad) if len(bad) else None)})
    return pd.DataFrame(rows)
