"""The explanations of the shared real datasets, shipped with the package, as the book's tables.

``benchmarks/explain_report.py`` measures chapter 6 on the classifier runs of
ALL-IDB2 and JTSC; it writes every number to ``benchmarks/results/`` and the
part the book shows (:func:`shipped`) to
``leukolib/reference/explain_<dataset>_<profile>.json``, package data, so a
notebook opened in Colab renders them without the datasets.
:func:`committed_explanations` turns one such file into tables and a summary
sentence, each saying where it came from.

Examples
--------
>>> committed_explanations("explain_nothing_cpu") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from leukolib.explain.summary import holm_inputs, interval_table, sanity_cells, with_intervals

__all__ = ["SHIPPED_METRICS", "calibration_view", "committed_explanations", "shipped"]

#: The localization measures a shipped result keeps (per model and method): with the energy
#: share its yardsticks, the best share of the grid, the smoothed nucleus's and the area.
SHIPPED_METRICS = ("energy_nucleus", "best_nucleus", "grid_nucleus", "area_nucleus",
                   "pointing_nucleus")
#: What a shipped result keeps of the finer layer's localization.
_FINER_METRICS = ("energy_nucleus", "best_nucleus", "grid_nucleus")
_KEEP = ("dataset", "n_test_images", "detail_models", "headline", "distinct_methods",
         "segmented_vs_raw",
         "faithfulness", "sanity", "recommendation", "calibration", "targets")


def shipped(results: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an explanation report's results that the book shows.

    Keeps the headline, the localization measures of :data:`SHIPPED_METRICS`
    (and of the finer layer the nucleus share, the best share a map of its
    grid can reach and the share of the nucleus smoothed to it),
    segmented against raw, the faithfulness summary, the randomization check,
    the recommendation and the calibration; drops the per-model faithfulness
    and the other measures (they stay in ``benchmarks/results/``).

    Parameters
    ----------
    results : mapping
        A dataset's results as ``benchmarks/explain_report.py`` writes them.

    Returns
    -------
    dict
        JSON-ready.
    """
    out = {k: results[k] for k in _KEEP if k in results}
    out["localization"] = [r for r in results.get("localization", [])
                           if r["metric"] in SHIPPED_METRICS]
    finer = results.get("finer_layer")
    if finer:
        out["finer_layer"] = {"layer": finer["layer"], "localization": [
            r for r in finer["localization"] if r["metric"] in _FINER_METRICS]}
    return out


def calibration_view(table: pd.DataFrame) -> pd.DataFrame:
    """A calibration table (one row per model) for reading.

    Parameters
    ----------
    table : DataFrame
        One row per model, the columns of
        :meth:`~leukolib.explain.report.ExplanationReport.calibration_table`.

    Returns
    -------
    DataFrame
        Temperature, accuracy, ECE before and after with their intervals,
        floors and Holm-adjusted p-values, and the chance of halving.
    """
    if not len(table):
        return table
    t = with_intervals(table, {f"ECE {w} [95 % CI]": (f"ece_{w}", f"ece_{w}_low", f"ece_{w}_high")
                               for w in ("before", "after")})
    t = t.rename(columns={"ece_before_floor": "floor before", "ece_before_p_holm": "p before",
                          "ece_after_floor": "floor after", "ece_after_p_holm": "p after",
                          "halving_chance": "chance of halving"})
    return t[["temperature", "accuracy", "ECE before [95 % CI]", "floor before", "p before",
              "ECE after [95 % CI]", "floor after", "p after", "chance of halving"]]


def _distinct(frame: pd.DataFrame, r: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of the methods whose maps differ (the report's own list; all when absent)."""
    methods = r.get("distinct_methods")
    if not methods or "method" not in frame:
        return frame
    return frame[frame["method"].isin(methods)]


def _inputs(r: Mapping[str, Any]) -> pd.DataFrame:
    """Segmented against raw, the methods whose maps differ, verdicts on Holm-adjusted p-values.

    Computed here from the shipped raw p-values and intervals, over the rows
    shown (a map shared by several methods is one test), whatever the
    verdicts stored with them.
    """
    cmp = _distinct(pd.DataFrame(r.get("segmented_vs_raw", [])), r)
    return holm_inputs(cmp) if len(cmp) else cmp


def _summary(r: Mapping[str, Any]) -> str:
    """One paragraph of what the shipped numbers say, computed from them."""
    h = r.get("headline", {})
    if not {"grid", "segmented_share_min", "raw_share_min", "area_nucleus"} <= set(h):
        return f"{r.get('n_test_images', '?')} test images (no localization measured)."
    parts = [f"{r.get('n_test_images')} test images, maps on a "
             f"{h.get('grid')} grid: the segmented models put "
             f"{h.get('segmented_share_min', float('nan')):.2f} to "
             f"{h.get('segmented_share_max', float('nan')):.2f} of the maps' energy on the "
             f"nucleus, the raw ones {h.get('raw_share_min', float('nan')):.2f} to "
             f"{h.get('raw_share_max', float('nan')):.2f}; the nucleus covers "
             f"{h.get('area_nucleus', float('nan')):.2f} of the image"
             + (f", a map of this grid can put at most {h['best_nucleus']:.2f} on it"
                if "best_nucleus" in h else "")
             + ", and the nucleus mask itself, smoothed to the grid and used as a map, would "
             f"put {h.get('grid_nucleus', float('nan')):.2f} on it."]
    methods = r.get("distinct_methods") or []
    every = list(dict.fromkeys(row["method"] for row in r.get("localization", [])))
    if 0 < len(methods) < len(every):
        parts.append(f"Only {len(methods)} of the {len(every)} methods give distinct maps here "
                     f"({', '.join(methods)}; the others coincide with an earlier one, largest "
                     f"difference {h.get('max_diff_three', float('nan')):.1g}): the tables of "
                     "layer4 show those.")
    cmp = _inputs(r)
    if len(cmp):
        better = int((cmp["verdict"] == "segmented better").sum())
        parts.append(f"Segmented minus raw, image by image: the segmented model puts "
                     f"significantly more on the nucleus in {better} of {len(cmp)} "
                     "architecture-method pairs (Wilcoxon p-values Holm-adjusted over the "
                     f"{len(cmp)} pairs).")
    rec = r.get("recommendation") or {}
    if rec.get("text"):
        parts.append(f"Recommended by ROAD and the randomization check: {rec['text']}.")
    if "halving_chance_median" in h:
        parts.append(
            f"Calibration: {h['n_miscalibrated_before']} of the {h['n_calibrated']} models "
            f"{'is' if h['n_miscalibrated_before'] == 1 else 'are'} detectably miscalibrated "
            f"before temperature scaling (Holm-adjusted p < {h['alpha']:g}), "
            f"{h['n_miscalibrated_after']} after it; scaling halved the ECE of "
            f"{h['n_ece_halved']} of them. Even a perfectly calibrated model would show half the "
            f"ECE before on these images with a chance of {h['halving_chance_median']:.0%} "
            f"(median over the models; at most {h['halving_chance_max']:.0%}).")
    return " ".join(parts)


def committed_explanations(name: str) -> dict[str, Any] | None:
    """A shipped explanation result as tables (``None`` when it is not shipped).

    Parameters
    ----------
    name : str
        ``"explain_<dataset>_<profile>"``.

    Returns
    -------
    dict or None
        ``source`` (the command, date and commit), ``summary`` (a paragraph
        computed from the numbers), ``tables`` (title -> DataFrame) and
        ``results`` (the shipped numbers).
    """
    from leukolib import reference

    stem = name.removesuffix(".json")
    if not reference.available(stem):
        return None
    r = reference.load(stem)["results"]
    loc = _distinct(pd.DataFrame(r.get("localization", [])), r)
    tables: dict[str, pd.DataFrame] = {}
    if len(loc):
        tables["energy share on the nucleus (layer4)"] = interval_table(loc, "energy_nucleus")
        tables["pointing game on the nucleus (layer4)"] = interval_table(loc, "pointing_nucleus")
    finer = r.get("finer_layer")
    if finer and finer.get("localization"):
        tables[f"energy share on the nucleus ({finer['layer']}, a finer grid)"] = interval_table(
            pd.DataFrame(finer["localization"]), "energy_nucleus")  # finer maps differ
    if r.get("segmented_vs_raw"):
        tables["segmented minus raw (energy on the nucleus, paired)"] = _inputs(r).set_index(
            ["architecture", "method"])[["segmented", "raw", "difference", "ci_low", "ci_high",
                                         "wilcoxon_p", "wilcoxon_p_holm", "verdict"]]
    if r.get("sanity"):
        tables["randomization check (rank correlation with the randomized model's map)"] = \
            sanity_cells(_distinct(pd.DataFrame(r["sanity"]), r))
    if r.get("calibration"):
        tables["calibration on the test split"] = calibration_view(
            pd.DataFrame(r["calibration"]).set_index("model"))
    from leukolib.classification.report import reanalysis_note

    note = reanalysis_note(reference.load(stem))
    source = reference.provenance(stem) + (f"; {note}" if note else "")
    return {"source": source, "summary": _summary(r), "tables": tables, "results": r}


def committed_cells(name: str = "explain_jtsc_cells") -> dict[str, Any] | None:
    """A shipped figure of real test cells with their maps (``None`` when it is not shipped).

    ``benchmarks/explain_figures.py`` writes it (JTSC only: its images are
    GPL-3.0; ALL-IDB2 may not be redistributed, so no figure of its cells is
    shipped).

    Returns
    -------
    dict or None
        ``png`` (bytes), ``table`` (each cell's class, the nucleus's share of
        the image and each model's share of the map's energy on the nucleus),
        ``caption``, ``licence`` and ``source``.
    """
    import json
    from importlib.resources import files

    from leukolib.data.datasets import display_name
    from leukolib.explain.figures import method_label

    folder = files("leukolib.reference").joinpath("figures")
    meta = folder.joinpath(f"{name}.json")
    if not meta.is_file():
        return None
    r = json.loads(meta.read_text())
    png = folder.joinpath(r["figure"]).read_bytes()
    table = pd.DataFrame({"class": r["labels"], "nucleus area share": r["area_nucleus"],
                          **{f"{k}: energy on the nucleus": v
                             for k, v in r["energy_nucleus"].items()}})
    table.index.name = "cell"
    p = r["provenance"]
    caption = (f"{method_label(r['method'])} maps of {len(r['ids'])} test cells of "
               f"{display_name(r['dataset'])} (one "
               f"per class in turn), for the best segmented and the best raw model by validation "
               f"accuracy; the nucleus (ground truth) is outlined in cyan. Images: "
               f"{r['licence']}.")
    source = f"from `{p['command']}`, {p['date']}, commit {p['commit']} ({p['runs']})"
    return {"png": png, "table": table, "caption": caption, "licence": r["licence"],
            "source": source, "dataset": r["dataset"]}
