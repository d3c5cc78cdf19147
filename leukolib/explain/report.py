"""Explanations and calibration of a grid of classifier runs, as the book's tables and figures.

:func:`explain_runs` explains every run of a grid on the same test split
(:func:`~leukolib.explain.run_explanation.explain_run`) and calibrates it
(:func:`calibrate_run`: temperature scaling fold by fold, each fold model's
temperature fitted on the out-of-fold validation logits of the images it held
out and applied to its own test logits before the fold models' probabilities
are averaged; ECE and reliability of that average on the test split). The returned
:class:`ExplanationReport` gives the tables (means with intervals, segmented
against raw, the randomization check, the recommended method, calibration,
Table A3's layout beside the paper's) and the figures (the paper's Figures 8
and 9 on these runs), and :meth:`ExplanationReport.numbers` the key numbers.

Nothing here trains or tunes on the test images: the models explained in
detail are chosen by validation accuracy (:func:`best_by_validation`), the
temperatures on out-of-fold logits.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from leukolib.explain.calibration import (
    ALPHA,
    calibration_summary,
    fold_probabilities,
    reliability_table,
)
from leukolib.explain.cams import softmax
from leukolib.explain.committed import calibration_view
from leukolib.explain.run_explanation import ModelExplanation, explain_run
from leukolib.explain.sanity import sanity_summary
from leukolib.explain.summary import (
    compare_inputs,
    recommend_method,
    sanity_cells,
    summarize,
    with_intervals,
)
from leukolib.profiles import Profile, get_profile

__all__ = [
    "FAITHFULNESS_METRICS",
    "LOCALIZATION_METRICS",
    "ExplanationReport",
    "best_by_validation",
    "calibrate_run",
    "explain_runs",
]

#: The per-image localization measures, in table order.
LOCALIZATION_METRICS = ("energy_nucleus", "pointing_nucleus", "energy_cell", "pointing_cell")
#: The per-image faithfulness measures, in table order.
FAITHFULNESS_METRICS = ("road_combined", "road_morf", "road_lerf", "deletion_auc",
                        "insertion_auc")


def best_by_validation(runs: Mapping[str, Any]) -> list[str]:
    """The best segmented and the best raw run (:mod:`leukolib.classification.best`; no test data).

    Returns the keys found, segmented first.
    """
    from leukolib.classification.best import best_per_input

    return list(best_per_input(runs).values())


def _oof_folds(run, saved: Mapping[str, np.ndarray]) -> np.ndarray:
    """The fold that held out each out-of-fold image: saved with the logits, else the record's."""
    if "oof_folds" in saved:
        return np.asarray(saved["oof_folds"], dtype=np.int64)
    held = {str(i): int(f["fold"]) for f in run.record["folds"] for i in f["val_ids"]}
    return np.asarray([held[str(i)] for i in saved["oof_ids"]], dtype=np.int64)


def calibrate_run(run, n_bins: int = 15, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Temperature scaling of a run, fold by fold: fitted out of fold, measured on its test split.

    Fold ``k``'s temperature ``T_k`` is fitted on the out-of-fold logits of
    the images fold ``k`` held out and divides fold ``k``'s test logits; the
    evaluated probabilities are ``mean_k softmax(z_k / T_k)``, and "before"
    the same average with ``T_k = 1``
    (:func:`~leukolib.explain.calibration.calibration_summary`). ECE, the
    reliability tables and the temperatures all describe that average.

    Returns
    -------
    dict
        :func:`~leukolib.explain.calibration.calibration_summary`'s numbers
        (``temperatures`` per fold, ``temperature`` their geometric mean)
        plus ``model`` and the reliability tables ``reliability_before`` and
        ``reliability_after`` (DataFrames).
    """
    z = run.saved_logits()
    test = np.asarray(z["test_logits"], dtype=np.float64)
    test = test[None] if test.ndim == 2 else test
    folds = _oof_folds(run, z)
    record = getattr(run, "record", None) or {}
    # the rows of test_logits follow the record's folds, sorted (results.finish_run)
    order = sorted(int(f["fold"]) for f in record.get("folds", [])) or sorted(set(folds.tolist()))
    s = calibration_summary(z["oof_logits"], z["oof_labels"], test, z["test_labels"], n_bins,
                            n_boot, seed, fit_folds=folds, fold_order=order)
    y = np.asarray(z["test_labels"])
    return {"model": run.key, **s,
            "reliability_before": reliability_table(fold_probabilities(test), y, n_bins),
            "reliability_after": reliability_table(
                fold_probabilities(test, s["temperatures"]), y, n_bins)}


@dataclass
class ExplanationReport:
    """Explanations and calibration of several runs on one dataset (:func:`explain_runs`)."""

    dataset: str
    models: dict[str, ModelExplanation]
    calibration: dict[str, dict[str, Any]]
    test_probabilities: dict[str, np.ndarray]
    test_ids: list[str]
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    n_boot: int = 2000
    seed: int = 0

    @property
    def methods(self) -> list[str]:
        """The methods whose maps were computed."""
        return list(next(iter(self.models.values())).cams)

    def _frame(self, name: str) -> pd.DataFrame:
        parts = [getattr(m, name) for m in self.models.values() if getattr(m, name) is not None]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    @property
    def localization(self) -> pd.DataFrame:
        """Per image, model and method: energy shares, pointing game, mask areas."""
        return self._frame("localization")

    @property
    def faithfulness(self) -> pd.DataFrame:
        """Per image, model and method (and the random map): ROAD, deletion, insertion."""
        return self._frame("faithfulness")

    @property
    def curves(self) -> pd.DataFrame:
        """Mean deletion and insertion curves per model and method."""
        return self._frame("curves")

    @property
    def sanity(self) -> pd.DataFrame:
        """Per image, model, method and randomized stage: rank correlation."""
        return self._frame("sanity")

    def localization_summary(self) -> pd.DataFrame:
        """Means and intervals of the localization measures and yardsticks, per model and method.

        The yardsticks: the mask areas (a flat map's share), ``best_nucleus``
        (the highest share a map of the grid can reach) and ``grid_nucleus``
        (the share of the nucleus mask smoothed to the grid; not a bound),
        see :mod:`leukolib.explain.localization`.
        """
        f = self.localization
        metrics = [m for m in (*LOCALIZATION_METRICS, "area_nucleus", "best_nucleus",
                               "grid_nucleus", "area_cell") if m in f]
        return summarize(f, ["model", "method"], metrics, self.n_boot, self.seed)

    def distinct_methods(self) -> list[str]:
        """The methods whose maps differ: a method whose maps equal an earlier one's is left out.

        On a ResNet: Grad-CAM and Grad-CAM++ (HiResCAM and XGrad-CAM are Grad-CAM's map).
        """
        from leukolib.explain.faithfulness import SAME_MAP_ATOL

        agree = self.method_agreement()
        kept: list[str] = []
        for m in self.methods:
            if all(agree.loc[m, k] > SAME_MAP_ATOL for k in kept):
                kept.append(m)
        return kept

    def input_comparison(self, metric: str = "energy_nucleus",
                         compact: bool = False) -> pd.DataFrame:
        """Segmented minus raw, per architecture and distinct method, paired by image.

        Only the methods whose maps differ (:meth:`distinct_methods`) are
        compared: a map that several methods share is one test, and the
        table's p-values are Holm-adjusted over its tests
        (:func:`~leukolib.explain.summary.compare_inputs`). ``compact``: the
        interval in one column.
        """
        out = compare_inputs(self.localization, metric, self.n_boot, self.seed,
                             methods=self.distinct_methods())
        if compact and len(out):
            out = with_intervals(out, {"difference [95 % CI]": ("difference", "ci_low",
                                                                "ci_high")}, 3)
            out = out.drop(columns="n").reset_index(drop=True)
        return out

    def faithfulness_summary(self, by: Sequence[str] = ("method",)) -> pd.DataFrame:
        """Means and intervals of the faithfulness measures, pooled over models by default.

        Pooled, an image gives one row per model: the intervals resample
        images, not rows (:func:`~leukolib.explain.summary.summarize`).
        """
        return summarize(self.faithfulness, list(by), FAITHFULNESS_METRICS, self.n_boot,
                         self.seed)

    def sanity_summary(self) -> pd.DataFrame:
        """Per model and method: rank correlation after full randomization, the verdict."""
        f = self.sanity
        f = f[f["randomized"] == "all"]
        parts = [sanity_summary(g.drop(columns="model"), self.n_boot, self.seed)
                 .reset_index().assign(model=k) for k, g in f.groupby("model", sort=False)]
        return pd.concat(parts, ignore_index=True)[["model", "method", "spearman", "ci_low",
                                                    "ci_high", "n", "n_empty", "passes"]]

    def sanity_table(self) -> pd.DataFrame:
        """Models by distinct methods: ``"rho [low, high]"`` and whether the method passes."""
        s = self.sanity_summary()
        return sanity_cells(s[s["method"].isin(self.distinct_methods())])

    def recommendation(self) -> dict[str, Any]:
        """The method with the best ROAD score among those that pass the sanity check.

        Adds ``text``: the sentence the book prints.
        """
        from leukolib.explain.figures import method_label

        sanity = self.sanity_summary() if len(self.sanity) else None
        r = recommend_method(self.faithfulness, sanity, n_boot=self.n_boot, seed=self.seed)
        if r["method"] is not None:
            r["text"] = (f"{method_label(r['method'])}: the best mean ROAD score "
                         f"({r['score']:.3f}) among the methods that beat a random map and "
                         "pass the randomization check for every model explained")
        elif not r["beat_random"]:
            r["text"] = ("none: no method's maps beat a random map on ROAD for the models "
                         "explained, so none can be said to track these models")
        elif not r["pass"]:
            r["text"] = ("none: no method passes the randomization check for every model "
                         "explained")
        else:
            r["text"] = ("none: the methods that beat a random map on ROAD ("
                         + ", ".join(map(method_label, r["beat_random"]))
                         + ") fail the randomization check, and those that pass it ("
                         + ", ".join(map(method_label, r["pass"])) + ") do not beat a random map")
        return r

    def calibration_table(self) -> pd.DataFrame:
        """Per model: temperature, ECE before and after (intervals, floor, p-values), NLL, Brier.

        ``temperature`` is the geometric mean of the fold models' own
        temperatures (``temperatures``, applied fold by fold before the
        average: :func:`calibrate_run`); ``accuracy`` and ``accuracy_after``
        are of the averaged fold probabilities before and after.
        ``ece_*_floor`` is the mean ECE of a perfectly calibrated model with
        the same confidences on as many images, ``ece_*_p`` the p-value of
        "calibrated" and ``ece_*_p_holm`` the same adjusted for the models of
        this report (Holm), ``halving_chance`` the chance that a perfectly
        calibrated model would show half the ECE before
        (:func:`~leukolib.explain.calibration.ece_floor`).
        """
        from leukolib.stats import holm

        rows = []
        for key, c in self.calibration.items():
            rows.append({"model": key, "temperature": c["temperature"],
                         "temperatures": list(c.get("temperatures", [c["temperature"]])),
                         "accuracy": c["accuracy"],
                         "accuracy_after": c.get("accuracy_after", c["accuracy"]),
                         "ece_before": c["ece_before"],
                         "ece_before_low": c["ece_before_ci"][0],
                         "ece_before_high": c["ece_before_ci"][1], "ece_after": c["ece_after"],
                         "ece_after_low": c["ece_after_ci"][0],
                         "ece_after_high": c["ece_after_ci"][1], "ratio": c["ratio"],
                         "ece_before_floor": c["ece_before_floor"],
                         "ece_before_p": c["ece_before_p"],
                         "ece_after_floor": c["ece_after_floor"],
                         "ece_after_p": c["ece_after_p"],
                         "halving_chance": c["halving_chance"],
                         "nll_before": c["nll_before"], "nll_after": c["nll_after"],
                         "brier_before": c["brier_before"], "brier_after": c["brier_after"],
                         "n_test": c["n_test"], "n_fit": c["n_fit"]})
        if not rows:
            return pd.DataFrame()
        t = pd.DataFrame(rows).set_index("model")
        for when in ("before", "after"):
            t[f"ece_{when}_p_holm"] = holm(t[f"ece_{when}_p"])
        return t

    def calibration_view(self) -> pd.DataFrame:
        """The calibration table for reading: ECE with its interval, its floor and p-value."""
        return calibration_view(self.calibration_table())

    def probability_table(self, per_class: int = 3) -> pd.DataFrame:
        """Table A3's layout on this dataset's test split (fold-average models)."""
        from leukolib.explain.probabilities import pick_images, probability_table

        chosen = pick_images(self.test_labels, self.test_probabilities, per_class, self.seed)
        return probability_table(self.test_ids, self.test_labels, self.class_names,
                                 self.test_probabilities, chosen)

    def paper_a3_averages(self) -> pd.DataFrame:
        """Table A3's ``Average`` row: ours (this test split) beside the paper's, per model."""
        from leukolib.explain.probabilities import paper_table_a3

        ours = self.probability_table().iloc[-1]
        theirs = paper_table_a3().iloc[-1]
        keys = list(dict.fromkeys([*self.test_probabilities, *theirs.index[2:]]))
        return pd.DataFrame({"leukolib": [ours.get(k, np.nan) for k in keys],
                             "paper (Table A3)": [theirs.get(k, np.nan) for k in keys]},
                            index=pd.Index(keys, name="model"))

    def shown_ids(self, n: int = 4) -> list[str]:
        """``n`` explained images for figures: one per class in turn, seeded, the same for all."""
        first = next(iter(self.models.values()))
        rng = np.random.default_rng(self.seed)
        pools = [list(rng.permutation([i for i, y in zip(first.ids, first.labels, strict=True)
                                       if y == c])) for c in np.unique(first.labels)]
        out: list[str] = []
        while len(out) < min(n, len(first.ids)):
            for pool in pools:
                if pool and len(out) < n:
                    out.append(str(pool.pop(0)))
        return out

    def _panel(self, key: str, ids: Sequence[str]):
        m = self.models[key]
        rows = [m.ids.index(i) for i in ids]
        return m, rows

    def figure_methods(self, key: str, n: int = 4):
        """The paper's Figure 8 on these runs: every method's map of ``n`` images, one model."""
        from leukolib.explain.figures import cam_grid, method_label

        ids = self.shown_ids(n)
        m, rows = self._panel(key, ids)
        labels = [f"{i}\n{self.class_names[m.labels[r]]} -> {self.class_names[m.targets[r]]}"
                  for i, r in zip(ids, rows, strict=True)]
        fig = cam_grid(m.images[rows], {method_label(k): v[rows] for k, v in m.cams.items()},
                       None if m.nucleus is None else m.nucleus[rows], labels)
        fig.suptitle(key, fontsize=10)
        fig.tight_layout()
        return fig

    def figure_models(self, method: str, n: int = 4, keys: Sequence[str] | None = None):
        """The paper's Figure 9 on these runs: one method's map of ``n`` images across models."""
        from leukolib.explain.figures import cam_grid, method_label

        ids = self.shown_ids(n)
        keys = list(self.models) if keys is None else list(keys)
        images, cams = {}, {}
        for k in keys:
            m, rows = self._panel(k, ids)
            title = k.replace("-", "\n", 1)
            images[title], cams[title] = m.images[rows], m.cams[method][rows]
        first, rows = self._panel(keys[0], ids)
        labels = [f"{i}\n{self.class_names[first.labels[r]]}" for i, r in zip(ids, rows,
                                                                              strict=True)]
        fig = cam_grid(images, cams, None if first.nucleus is None else first.nucleus[rows],
                       labels, show_input=False)
        fig.suptitle(method_label(method), fontsize=10)
        fig.tight_layout()
        return fig

    def method_agreement(self) -> pd.DataFrame:
        """Largest difference between two methods' maps, over every image of every model.

        On a ResNet Grad-CAM, HiResCAM and XGrad-CAM coincide (see
        :mod:`leukolib.explain.cams`): their differences are rounding errors.
        """
        methods = list(next(iter(self.models.values())).cams)
        out = pd.DataFrame(0.0, index=methods, columns=methods)
        for m in self.models.values():
            for a in methods:
                for b in methods:
                    out.loc[a, b] = max(out.loc[a, b], float(np.abs(m.cams[a] - m.cams[b]).max()))
        return out

    def headline(self) -> dict[str, Any]:
        """The numbers the chapter's prose quotes (for ``glue``), JSON-ready."""
        first = next(iter(self.models.values()))
        out: dict[str, Any] = {"n_models": len(self.models), "n_test": len(self.test_ids),
                               "n_explained": len(first.ids),
                               "grid": "x".join(map(str, first.meta.get("grid", [])))}
        if len(self.localization):
            s = self.localization_summary()
            e = s[s["metric"] == "energy_nucleus"]
            for prefix in ("segmented", "raw"):
                v = e[e["model"].str.startswith(prefix + "-")]["mean"]
                out[f"{prefix}_share_min"] = float(v.min()) if len(v) else np.nan
                out[f"{prefix}_share_max"] = float(v.max()) if len(v) else np.nan
            for metric in ("area_nucleus", "best_nucleus", "grid_nucleus"):
                v = self.localization[metric] if metric in self.localization else None
                out[metric] = float(v.mean()) if v is not None else np.nan
        agree = self.method_agreement()
        three = [m for m in ("gradcam", "hirescam", "xgradcam") if m in agree.index]
        if len(three) > 1:
            out["max_diff_three"] = float(agree.loc[three, three].to_numpy().max())
        cal = self.calibration_table()
        if len(cal):
            out.update(n_calibrated=len(cal),
                       n_ece_halved=int((cal["ece_after"] <= cal["ece_before"] / 2).sum()),
                       ece_before_median=float(cal["ece_before"].median()),
                       ece_after_median=float(cal["ece_after"].median()),
                       temperature_median=float(cal["temperature"].median()),
                       # the fold models' own temperatures, over every model
                       temperature_fold_min=float(min(min(t) for t in cal["temperatures"])),
                       temperature_fold_max=float(max(max(t) for t in cal["temperatures"])),
                       # what the test split can tell: miscalibration detected (Holm-adjusted
                       # over the models), and how often even a perfectly calibrated model
                       # would show half the ECE before on these images
                       alpha=ALPHA,
                       n_miscalibrated_before=int((cal["ece_before_p_holm"] < ALPHA).sum()),
                       n_miscalibrated_after=int((cal["ece_after_p_holm"] < ALPHA).sum()),
                       ece_floor_median=float(cal["ece_after_floor"].median()),
                       halving_chance_median=float(cal["halving_chance"].median()),
                       halving_chance_max=float(cal["halving_chance"].max()))
        return out

    def numbers(self) -> dict[str, Any]:
        """The key numbers, JSON-ready (what notebooks save and benchmarks commit)."""
        out: dict[str, Any] = {"dataset": self.dataset, "models": list(self.models),
                               "headline": self.headline(),
                               "distinct_methods": self.distinct_methods()}
        if len(self.localization):
            out["localization"] = self.localization_summary().to_dict(orient="records")
            out["segmented_vs_raw"] = self.input_comparison().to_dict(orient="records")
        if len(self.faithfulness):
            out["faithfulness"] = self.faithfulness_summary().to_dict(orient="records")
            out["faithfulness_by_model"] = self.faithfulness_summary(("model", "method")) \
                .to_dict(orient="records")
        if len(self.sanity):
            out["sanity"] = self.sanity_summary().to_dict(orient="records")
        if len(self.faithfulness):
            out["recommendation"] = self.recommendation()
        if self.calibration:
            out["calibration"] = self.calibration_table().reset_index().to_dict(orient="records")
        return out


def explain_runs(
    runs: Mapping[str, Any],
    dataset,
    methods: str | Sequence[str] = "all",
    profile: str | Profile = "cpu",
    seed: int = 0,
    faithfulness: Sequence[str] | bool = True,
    sanity: bool = True,
    cascade: Sequence[str] | bool = False,
    cache: str | os.PathLike | None = None,
    progress: bool = True,
    layer: str = "layer4",
) -> ExplanationReport:
    """Explain and calibrate several runs of one dataset (a grid of :mod:`leukolib.classification`).

    Parameters
    ----------
    runs : mapping of key to ClassifierRun
    dataset : Dataset
    methods, profile, seed, sanity :
        As :func:`explain_run`.
    faithfulness : bool or sequence of str
        ``True``: for every model; a sequence: only for those keys (ROAD and
        the curves cost the most).
    cascade : bool or sequence of str
        The layer-by-layer randomization, for every model or those keys.
    cache : path, optional
        Each model's results go to ``cache/<key>`` and are reused there.
    progress : bool
    layer : str
        The ResNet stage the maps look at (the paper's ``"layer4"``).
    """
    from tqdm.auto import tqdm

    prof = get_profile(profile)
    models, calib, probs = {}, {}, {}
    first = next(iter(runs.values()))
    saved = first.saved_logits()
    for key, run in tqdm(runs.items(), desc="explain", disable=not progress):
        faith = faithfulness if isinstance(faithfulness, bool) else key in set(faithfulness)
        casc = cascade if isinstance(cascade, bool) else key in set(cascade)
        models[key] = explain_run(run, dataset, methods, prof, seed, faithfulness=faith,
                                  sanity=sanity, cascade=casc, cache=None if cache is None else
                                  Path(cache) / key, layer=layer)
        calib[key] = calibrate_run(run, n_boot=prof.explanation.n_boot, seed=seed)
        z = run.saved_logits()
        if [str(i) for i in z["test_ids"]] != [str(i) for i in saved["test_ids"]]:
            raise ValueError(f"{key}: its test split differs from {first.key}'s; the models "
                             "of one report must share it")
        t = np.asarray(z["test_logits"], dtype=np.float64)
        probs[key] = softmax(t.mean(axis=0) if t.ndim == 3 else t)
    return ExplanationReport(dataset.name, models, calib, probs,
                             [str(i) for i in saved["test_ids"]],
                             np.asarray(saved["test_labels"], dtype=np.int64),
                             tuple(first.class_names), prof.explanation.n_boot, seed)
