"""Per-image explanation scores summarised: means with intervals, segmented against raw, a verdict.

Every measure of this stage is computed per test image (per model and
method); the tables the book shows are means with BCa bootstrap intervals
over images (:func:`leukolib.stats.bootstrap_ci`), and comparisons are paired
image by image (:func:`leukolib.stats.paired_comparison`), since all models
are evaluated on the same test split.

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

from leukolib.stats import bootstrap_ci, paired_comparison

__all__ = [
    "compare_inputs",
    "format_interval",
    "interval_table",
    "recommend_method",
    "sanity_cells",
    "summarize",
    "with_intervals",
]


def summarize(frame: pd.DataFrame, by: Sequence[str], metrics: Sequence[str],
              n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Mean and bootstrap interval of each metric per group, as tidy rows.

    Returns
    -------
    DataFrame
        ``*by, metric, mean, ci_low, ci_high, n`` (``n``: finite values; NaN
        values, such as the share of an all-zero map, are left out).
    """
    rows = []
    for key, g in frame.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        for m in metrics:
            if m not in g:
                continue
            v = g[m].to_numpy(np.float64)
            v = v[np.isfinite(v)]
            lo, hi = bootstrap_ci(v, n_boot=n_boot, seed=seed)
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


def format_interval(mean: float, low: float, high: float, digits: int = 2) -> str:
    """``"0.81 [0.75, 0.86]"``; ``"n/a"`` for a missing mean.

    Examples
    --------
    >>> format_interval(0.8123, 0.75, 0.861), format_interval(float("nan"), 0, 1)
    ('0.81 [0.75, 0.86]', 'n/a')
    """
    if mean is None or not np.isfinite(mean):
        return "n/a"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


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
    says how many of a model's maps were empty (such a pass is vacuous).
    """
    s = summary.copy()
    empty = s["n_empty"] if "n_empty" in s else [0] * len(s)
    s["cell"] = [format_interval(m, lo, hi) + (" pass" if ok else " fail")
                 + (f" ({int(e)} empty)" if e else "")
                 for m, lo, hi, ok, e in zip(s["spearman"], s["ci_low"], s["ci_high"],
                                             s["passes"], empty, strict=True)]
    out = s.pivot(index="model", columns="method", values="cell")
    out = out.reindex(index=list(dict.fromkeys(s["model"])),
                      columns=list(dict.fromkeys(s["method"])))
    out.columns.name = None
    return out


def compare_inputs(per_image: pd.DataFrame, metric: str, n_boot: int = 2000,
                   seed: int = 0) -> pd.DataFrame:
    """Segmented against raw models of the same architecture, per method, image by image.

    ``per_image`` holds ``model`` keys such as ``"segmented-mish-medium"``;
    each segmented model is paired with the raw model of the same activation
    and head, on the images both explained.

    Returns
    -------
    DataFrame
        ``architecture, method, segmented, raw, difference, ci_low, ci_high,
        wilcoxon_p, n, verdict``.
    """
    rows = []
    models = set(per_image["model"])
    for seg in sorted(m for m in models if m.startswith("segmented-")):
        arch = seg.removeprefix("segmented-")
        raw = f"raw-{arch}"
        if raw not in models:
            continue
        for method in dict.fromkeys(per_image["method"]):
            a = per_image[(per_image["model"] == seg) & (per_image["method"] == method)]
            b = per_image[(per_image["model"] == raw) & (per_image["method"] == method)]
            both = a[["id", metric]].merge(b[["id", metric]], on="id", suffixes=("_s", "_r"))
            r = paired_comparison(both[f"{metric}_s"], both[f"{metric}_r"],
                                  names=("segmented", "raw"), n_boot=n_boot, seed=seed)
            rows.append({"architecture": arch, "method": method, "segmented": r["mean_a"],
                         "raw": r["mean_b"], "difference": r["mean_diff"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "wilcoxon_p": r["wilcoxon_p"], "n": r["n"], "verdict": r["verdict"]})
    return pd.DataFrame(rows)


def recommend_method(faithfulness: pd.DataFrame, sanity: pd.DataFrame | None = None,
                     score: str = "road_combined", n_boot: int = 2000,
                     seed: int = 0) -> dict[str, object]:
    """The method to recommend: the best mean ``score`` among those that earn it.

    A method qualifies when it beats the random map on ``score`` (a paired
    comparison on the same images of the same models: bootstrap interval of
    the difference above 0 and Wilcoxon ``p < 0.05``) and, when ``sanity``
    is given, passes the randomization check for every model.

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
        methods that ``beat_random`` and those that ``pass`` the check.
    """
    from leukolib.explain.faithfulness import RANDOM_MAP

    f = faithfulness[faithfulness["method"] != RANDOM_MAP]
    means = f.groupby(["method", "model"], sort=False)[score].mean().groupby(level=0,
                                                                             sort=False).mean()
    rand = faithfulness[faithfulness["method"] == RANDOM_MAP]
    beat = list(means.index)
    if len(rand):
        beat = []
        for m in means.index:
            both = f[f["method"] == m].merge(rand, on=["model", "id"], suffixes=("", "_r"))
            r = paired_comparison(both[score], both[f"{score}_r"], names=(m, RANDOM_MAP),
                                  n_boot=n_boot, seed=seed)
            if r["verdict"] == f"{m} better":
                beat.append(m)
    passing = list(means.index)
    if sanity is not None and len(sanity):
        ok = sanity.groupby("method")["passes"].all()
        passing = [m for m in passing if bool(ok.get(m, False))]
    qualified = [m for m in means.index if m in beat and m in passing]
    best = max(qualified, key=lambda m: means[m]) if qualified else None
    return {"method": best, "score": float(means[best]) if best else float("nan"),
            "means": {m: float(v) for m, v in means.items()}, "beat_random": beat,
            "pass": passing}
