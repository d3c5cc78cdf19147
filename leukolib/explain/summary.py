"""Per-image explanation scores summarised: means with intervals, segmented against raw, a verdict.

Every measure of this stage is computed per test image (per model and
method); the tables the book shows are means with BCa bootstrap intervals
over images (:func:`leukolib.stats.bootstrap_ci`), the hit rates of the
pointing game with exact intervals (:func:`leukolib.stats.outcomes_ci`), and
comparisons are paired image by image (:func:`leukolib.stats.paired_comparison`),
since all models are evaluated on the same test split. Where several models
are pooled, an image gives several rows: the intervals then resample images,
not rows (:func:`leukolib.stats.cluster_bootstrap_ci`), and a table of
several tests decides its verdicts on Holm-adjusted p-values
(:func:`leukolib.stats.holm_paired`).

Examples
--------
>>> f = pd.DataFrame({"model": ["m"] * 4, "method": ["gradcam"] * 4,
...                   "energy_nucleus": [0.8, 0.9, 0.7, 0.6]})
>>> s = summarize(f, ["model", "method"], ["energy_nucleus"], n_boot=200)
>>> s[["model", "metric", "n"]].values.tolist(), round(float(s["mean"].iloc[0]), 3)
([['m', 'energy_nucleus', 4]], 0.75)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from leukolib.stats import (
    ALPHA,
    bootstrap_ci,
    cluster_bootstrap_ci,
    holm,
    holm_paired,
    outcomes_ci,
    paired_comparison,
    paired_verdict,
)
from leukolib.tables import format_interval

__all__ = [
    "INPUT_COLUMNS",
    "PROPORTIONS",
    "compare_inputs",
    "format_interval",
    "holm_inputs",
    "interval_table",
    "recommend_method",
    "sanity_cells",
    "summarize",
    "with_intervals",
]


#: The per-image measures that are hits or misses (0 or 1): their mean is a proportion.
PROPORTIONS = ("pointing_nucleus", "pointing_cell")


def _interval(values: np.ndarray, units: np.ndarray | None, proportion: bool, n_boot: int,
              seed: int) -> tuple[float, float]:
    """The interval of a group's mean: exact for a proportion, else by image (resampled)."""
    if units is not None and len(set(units.tolist())) < len(units):
        return cluster_bootstrap_ci(values, units, n_boot=n_boot, seed=seed)
    if proportion:
        return outcomes_ci(values)
    return bootstrap_ci(values, n_boot=n_boot, seed=seed)


def summarize(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str],
              n_boot: int = 2000, seed: int = 0, *, proportions: Sequence[str] = PROPORTIONS,
              unit: str | None = "id") -> pd.DataFrame:
    """Mean and 95 % interval of each metric per group, as tidy rows.

    Parameters
    ----------
    frame : DataFrame
        Per-image rows.
    by : sequence of str
        The groups (e.g. ``model, method``).
    metrics : sequence of str
    n_boot, seed :
        Of the bootstrap intervals.
    proportions : sequence of str
        Metrics that are 0/1 outcomes (:data:`PROPORTIONS`): exact
        Clopper-Pearson interval of their hit rate
        (:func:`leukolib.stats.outcomes_ci`), never of zero width.
    unit : str, optional
        The column of the resampling unit (the image id): where a group holds
        a unit more than once (models pooled), the interval resamples units
        (:func:`leukolib.stats.cluster_bootstrap_ci`), so that an image
        counts once.

    Returns
    -------
    DataFrame
        ``*by, metric, mean, ci_low, ci_high, n`` (``n``: finite values; NaN
        values, such as the share of an all-zero map, are left out). A
        degenerate bootstrap (every value equal) has NaN bounds: no interval.
    """
    rows = []
    for key, g in frame.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for m in metrics:
            if m not in g:
                continue
            v = g[m].to_numpy(np.float64)
            finite = np.isfinite(v)
            units = g[unit].to_numpy()[finite] if unit and unit in g else None
            v = v[finite]
            lo, hi = _interval(v, units, m in proportions, n_boot, seed)
            rows.append({**dict(zip(by, key, strict=True)), "metric": m,
                         "mean": float(v.mean()) if v.size else np.nan,
                         "ci_low": lo, "ci_high": hi, "n": int(v.size)})
    return pd.DataFrame(rows, columns=[*by, "metric", "mean", "ci_low", "ci_high", "n"])


def interval_table(summary: pd.DataFrame, metric: str | None, rows: str = "model",
                   columns: str = "method", digits: int = 2) -> pd.DataFrame:
    """A wide table of ``"mean [low, high]"`` strings, ``rows`` by ``columns``.

    ``metric`` selects the rows of :func:`summarize`'s output (``None``: all,
    e.g. with ``columns="metric"``).
    """
    s = (summary if metric is None else summary[summary["metric"] == metric]).copy()
    s["cell"] = [format_interval(m, lo, hi, digits)
                 for m, lo, hi in zip(s["mean"], s["ci_low"], s["ci_high"], strict=True)]
    out = s.pivot(index=rows, columns=columns, values="cell")
    out = out.reindex(index=list(dict.fromkeys(s[rows])), columns=list(dict.fromkeys(s[columns])))
    out.columns.name = None
    return out


def with_intervals(frame: pd.DataFrame, columns: dict[str, tuple[str, str, str]],
                   digits: int = 2) -> pd.DataFrame:
    """Replace ``(mean, low, high)`` column triples by one ``"mean [low, high]"`` column each.

    Parameters
    ----------
    frame : DataFrame
    columns : dict
        New column name to the ``(mean, low, high)`` columns it replaces
        (placed where the mean was).
    digits : int
    """
    out = frame.copy()
    for name, (m, lo, hi) in columns.items():
        cells = [format_interval(a, b, c, digits)
                 for a, b, c in zip(out[m], out[lo], out[hi], strict=True)]
        pos = list(out.columns).index(m)
        out = out.drop(columns=[m, lo, hi])
        out.insert(min(pos, len(out.columns)), name, cells)
    return out


def sanity_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """The randomization check as a wide table: models by methods, ``"rho [low, high] pass"``.

    ``summary`` has the columns of
    :meth:`~leukolib.explain.report.ExplanationReport.sanity_summary`; a cell
    says how many of a model's maps were empty (all zero: no positive
    evidence, so no ranking to keep), and calls a pass on empty maps only
    what it is, vacuous.
    """
    s = summary.copy()
    empty = s["n_empty"] if "n_empty" in s else [0] * len(s)
    # pairs of maps compared (a report before ``n_maps``: its finite correlations, where every
    # flat map was counted as 0 and none left out)
    total = s["n_maps"] if "n_maps" in s else s["n"]

    def verdict(ok: bool, e: int, n: int) -> str:
        if e and e >= n:  # no map had any positive evidence: nothing was checked
            return f" vacuous pass: all {e} maps empty" if ok else f" fail: all {e} maps empty"
        return (" pass" if ok else " fail") + (f" ({e} of {n} maps empty)" if e else "")

    s["cell"] = [format_interval(m, lo, hi) + verdict(bool(ok), int(e), int(n))
                 for m, lo, hi, ok, e, n in zip(s["spearman"], s["ci_low"], s["ci_high"],
                                                s["passes"], empty, total, strict=True)]
    out = s.pivot(index="model", columns="method", values="cell")
    out = out.reindex(index=list(dict.fromkeys(s["model"])),
                      columns=list(dict.fromkeys(s["method"])))
    out.columns.name = None
    return out


#: The columns of :func:`compare_inputs`, in order.
INPUT_COLUMNS = ("architecture", "method", "segmented", "raw", "difference", "ci_low", "ci_high",
                 "wilcoxon_p", "wilcoxon_p_holm", "n", "verdict")


def holm_inputs(table: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """:func:`compare_inputs`'s rows with Holm-adjusted p-values over these rows, verdicts anew.

    For a table whose rows are the family (e.g. a shipped result cut to the
    methods whose maps differ): ``wilcoxon_p_holm`` and ``verdict`` are
    (re)computed from ``wilcoxon_p`` and the intervals; ``attrs["note"]``
    says so.

    Examples
    --------
    >>> t = pd.DataFrame({"architecture": ["a", "b"], "method": "gradcam",
    ...                   "difference": [0.1, 0.1], "ci_low": [0.02, 0.01],
    ...                   "ci_high": [0.2, 0.2], "wilcoxon_p": [0.03, 0.04]})
    >>> h = holm_inputs(t)  # each p below 0.05, but not once adjusted for the two tests
    >>> h["wilcoxon_p_holm"].round(2).tolist(), h["verdict"].tolist()
    ([0.06, 0.06], ['no significant difference', 'no significant difference'])
    """
    out = table.drop(columns=["wilcoxon_p_holm"], errors="ignore")
    out = holm_paired(out.rename(columns={"difference": "mean_diff"}), ("segmented", "raw"),
                      alpha=alpha)
    return out.rename(columns={"mean_diff": "difference"})


def compare_inputs(per_image: pd.DataFrame, metric: str, n_boot: int = 2000,
                   seed: int = 0, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Segmented against raw models of the same architecture, per method, image by image.

    ``per_image`` holds ``model`` keys such as ``"segmented-mish-medium"``;
    each segmented model is paired with the raw model of the same activation
    and head, on the images both explained. The rows are one family of
    tests: their p-values are Holm-adjusted together and the verdicts decided
    on the adjusted ones (:func:`holm_inputs`).

    Parameters
    ----------
    per_image : DataFrame
    metric : str
    n_boot, seed :
        Of the bootstrap intervals.
    methods : sequence of str, optional
        The methods compared (default: all); pass those whose maps differ,
        so that a map shared by several methods is one test, not several.

    Returns
    -------
    DataFrame
        ``architecture, method, segmented, raw, difference, ci_low, ci_high,
        wilcoxon_p, wilcoxon_p_holm, n, verdict`` (:data:`INPUT_COLUMNS`);
        ``attrs["note"]`` names the correction.
    """
    rows = []
    models = set(per_image["model"])
    chosen = list(dict.fromkeys(per_image["method"])) if methods is None else list(methods)
    for seg in sorted(m for m in models if m.startswith("segmented-")):
        arch = seg.removeprefix("segmented-")
        raw = f"raw-{arch}"
        if raw not in models:
            continue
        for method in chosen:
            a = per_image[(per_image["model"] == seg) & (per_image["method"] == method)]
            b = per_image[(per_image["model"] == raw) & (per_image["method"] == method)]
            both = a[["id", metric]].merge(b[["id", metric]], on="id", suffixes=("_s", "_r"))
            r = paired_comparison(both[f"{metric}_s"], both[f"{metric}_r"],
                                  names=("segmented", "raw"), n_boot=n_boot, seed=seed)
            rows.append({"architecture": arch, "method": method, "segmented": r["mean_a"],
                         "raw": r["mean_b"], "difference": r["mean_diff"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "wilcoxon_p": r["wilcoxon_p"], "n": r["n"],
                         "degenerate": r["degenerate"], "verdict": r["verdict"]})
    frame = pd.DataFrame(rows, columns=[c for c in INPUT_COLUMNS if c != "wilcoxon_p_holm"]
                         + ["degenerate"])
    return holm_inputs(frame).drop(columns="degenerate")


def recommend_method(faithfulness: pd.DataFrame, sanity: pd.DataFrame | None = None,
                     score: str = "road_combined", n_boot: int = 2000,
                     seed: int = 0) -> dict[str, object]:
    """The method to recommend: the best mean ``score`` among those that earn it.

    A method qualifies when it beats the random map on ``score`` (a paired
    comparison on the same images of the same models, the models pooled and
    each image counted once: interval of the difference resampled by image
    above 0 and Wilcoxon test of the images' mean differences, its p
    Holm-adjusted over the methods compared, below 0.05) and, when
    ``sanity`` is given, passes the randomization check for every model.

    Parameters
    ----------
    faithfulness : DataFrame
        Per image, with ``model, id, method`` and ``score`` columns (and the
        random map's rows, :data:`~leukolib.explain.faithfulness.RANDOM_MAP`).
    sanity : DataFrame, optional
        :func:`~leukolib.explain.sanity.sanity_summary` rows with ``model,
        method, passes``.
    score, n_boot, seed :
        The measure, and the bootstrap of the comparisons.

    Returns
    -------
    dict
        ``method`` (None when none qualifies), ``score`` (its mean), the
        per-method means ``means`` (each model weighing the same), the
        methods that ``beat_random`` and those that ``pass`` the check, and
        ``against_random``: per method, the comparison with the random map
        (``mean_diff, ci_low, ci_high, wilcoxon_p, wilcoxon_p_holm, n``
        images, ``verdict``).
    """
    from leukolib.explain.faithfulness import RANDOM_MAP

    f = faithfulness[faithfulness["method"] != RANDOM_MAP]
    means = f.groupby(["method", "model"], sort=False)[score].mean().groupby(level=0,
                                                                             sort=False).mean()
    rand = faithfulness[faithfulness["method"] == RANDOM_MAP]
    beat, tests = list(means.index), {}
    if len(rand):
        for m in means.index:
            both = f[f["method"] == m].merge(rand, on=["model", "id"], suffixes=("", "_r"))
            r = paired_comparison(both[score], both[f"{score}_r"], names=(m, RANDOM_MAP),
                                  n_boot=n_boot, seed=seed, clusters=both["id"].to_numpy())
            tests[m] = {k: r[k] for k in ("mean_diff", "ci_low", "ci_high", "wilcoxon_p", "n",
                                          "degenerate")}
        adjusted = holm([t["wilcoxon_p"] for t in tests.values()])
        beat = []
        for (m, t), q in zip(tests.items(), adjusted, strict=True):
            t["wilcoxon_p_holm"] = float(q)
            t["verdict"] = paired_verdict(t["mean_diff"], t["ci_low"], t["ci_high"], q,
                                          (m, RANDOM_MAP), degenerate=t["degenerate"])
            if t["verdict"] == f"{m} better":
                beat.append(m)
    passing = list(means.index)
    if sanity is not None and len(sanity):
        ok = sanity.groupby("method")["passes"].all()
        passing = [m for m in passing if bool(ok.get(m, False))]
    qualified = [m for m in means.index if m in beat and m in passing]
    best = max(qualified, key=lambda m: means[m]) if qualified else None
    return {"method": best, "score": float(means[best]) if best else float("nan"),
            "means": {m: float(v) for m, v in means.items()}, "beat_random": beat,
            "pass": passing, "against_random": tests}
