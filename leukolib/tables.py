"""Results tables: ours beside the paper's, as HTML for the book and markdown or CSV for files.

Every stage produces tidy results (one row per dataset, method and metric, or
per image); this module turns them into the tables a reader sees:

* :func:`beside_paper` stacks our rows and the paper's rows (from
  :mod:`leukolib.paper`) in the paper's layout, one column per metric, a
  ``source`` column saying which is which;
* :func:`styled` renders a table as an HTML table (a pandas ``Styler``) with the
  best value of each column in bold and missing values as "n/a", and the
  table's own note (``attrs["note"]``: e.g. the multiple-testing correction of
  its verdicts) in its caption; this is what notebooks display, so that the
  book shows real tables;
* :func:`format_interval` writes an estimate with its interval, and says so
  when there is none (never an interval of zero width);
* :func:`reader_label` and :func:`readable` turn the code names of the results
  files (``mean_diff``, ``all_idb2``) into what a reader reads ("mean
  difference", "ALL-IDB2"); :func:`styled` shows every label that way;
* :func:`paired_view` reads a table of paired comparisons: the difference with
  its interval in one cell, both p-values, wins / losses / ties, the verdict;
* :func:`to_markdown` writes the same table as GitHub-flavoured markdown for
  the report files and the terminal, the best cells in ``**bold**``;
* :func:`save_table` writes CSV and JSON side by side.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"iou": [0.91, 0.93, None]}, index=["HM", "DEEP", "paper HM"])
>>> print(to_markdown(t))
|  | iou |
| --- | --- |
| HM | 0.910 |
| DEEP | **0.930** |
| paper HM | n/a |
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

__all__ = [
    "LABELS",
    "TIED",
    "beside_paper",
    "best_mask",
    "format_cell",
    "format_interval",
    "format_number",
    "paired_view",
    "readable",
    "reader_label",
    "save_table",
    "styled",
    "to_markdown",
]

MISSING = "n/a"

#: Characters beyond which a text cell may wrap anywhere (:func:`styled`).
LONG_TEXT = 40
#: Labels of the results files that a word-by-word reading (:data:`WORDS`) would not say well.
LABELS: dict[str, str] = {
    "mean_diff": "mean difference",
    "wilcoxon_p_holm": "Wilcoxon p (Holm)",
    "n_images": "images",
    "n_groups": "groups",
    "hparams_source": "hyper-parameters from",
    "mean_epoch_seconds": "seconds per epoch",
    "and_removes_fp": "AND removes FP",
    "and_removes_tp": "AND removes TP",
    "or_adds_fp": "OR adds FP",
    "or_adds_tp": "OR adds TP",
    "paper_in_ci": "paper's value in the CI",
    "val_acc_best_fold": "validation accuracy, best fold",
    "ratio_dist_sd": "Dist/SD ratio",
    "brightness_contrast": "brightness/contrast",
    "davies_bouldin": "Davies-Bouldin",
    "normalized_ratio": "normalised ratio",
    "dist_total": "total distance",
    "sd_total": "total SD",
    "color baseline": "colour baseline",
}
#: How a word reads: each word of a snake_case label, or a header of one word (a cell of one
#: word is kept: "pre" may be data); others are kept as they are.
WORDS: dict[str, str] = {
    "acc": "accuracy", "auc": "AUC", "ci": "CI", "deep": "DEEP", "dist": "distance",
    "dsc": "DSC", "gaussian": "Gaussian", "hm": "HM", "holm": "(Holm)", "iou": "IoU",
    "jpeg": "JPEG", "l1": "L1", "l2": "L2", "l3": "L3", "lerf": "LeRF", "mcnemar": "McNemar",
    "morf": "MoRF", "oof": "out-of-fold", "pc1": "PC1", "pre": "precision", "px": "(px)",
    "rec": "recall", "road": "ROAD", "sd": "SD", "spec": "specificity", "val": "validation",
    "wilcoxon": "Wilcoxon",
}  # fmt: skip
# snake_case words, each holding a letter (an image id such as "Im223_0" is not one)
_SNAKE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*)+")


def reader_label(label: Any, cell: bool = False) -> Any:
    """A table label as a reader reads it: dataset display names, words instead of code names.

    A label of :data:`LABELS` is replaced; otherwise a dataset's code name
    becomes its display name wherever it stands alone
    (:func:`~leukolib.data.datasets.display_names_in`) and a snake_case label
    is read word by word (:data:`WORDS`). Labels that are not strings (fold
    numbers), text with a path or an option in it (a command) and identifiers
    with a number for a word (image ids) are returned unchanged.

    Parameters
    ----------
    label : object
    cell : bool
        ``label`` is a table cell, not a header: a single word (``"pre"``)
        is then kept as it is.

    Examples
    --------
    >>> reader_label("mean_diff"), reader_label("ci_low"), reader_label("bloodseg -> jtsc")
    ('mean difference', 'CI low', 'SMC_IDB (BloodSeg) -> JTSC')
    >>> reader_label("sd_l1"), reader_label("raw-relu-linear"), reader_label(3)
    ('SD L1', 'raw-relu-linear', 3)
    >>> reader_label("classification_all_idb2_cpu.json")  # a file name stays one
    'classification_all_idb2_cpu.json'
    >>> reader_label("python benchmarks/bench_unet.py --dataset jtsc")  # a command too
    'python benchmarks/bench_unet.py --dataset jtsc'
    >>> reader_label("BloodImage_00384"), reader_label("pre"), reader_label("pre", cell=True)
    ('BloodImage_00384', 'precision', 'pre')
    """
    if not isinstance(label, str) or "/" in label or "--" in label:
        return label  # a command or a path is shown as it was typed
    if label in LABELS:
        return LABELS[label]
    from leukolib.data.datasets import display_names_in

    text = display_names_in(label)
    if _SNAKE.fullmatch(text):
        return " ".join(WORDS.get(w.lower(), w) for w in text.split("_"))
    return text if cell else WORDS.get(text, text)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with its labels, index names and text cells as :func:`reader_label` says.

    Examples
    --------
    >>> t = pd.DataFrame({"trained_on": ["jtsc"], "mean_diff": [0.01]}).set_index("trained_on")
    >>> r = readable(t)
    >>> r.index.name, list(r.index), list(r.columns)
    ('trained on', ['JTSC'], ['mean difference'])
    """
    out = frame.rename(index=reader_label, columns=reader_label)
    out.index = out.index.set_names([reader_label(n) for n in out.index.names])
    out.columns = out.columns.set_names([reader_label(n) for n in out.columns.names])
    for c in out.select_dtypes(include=["object", "string"]).columns:
        out[c] = out[c].map(lambda v: reader_label(v, cell=True) if isinstance(v, str) else v)
    for c in out.select_dtypes(include=["category"]).columns:
        cats = out[c].cat.categories
        out[c] = out[c].cat.rename_categories([reader_label(v, cell=True) for v in cats])
    out.attrs = dict(frame.attrs)
    return out


def format_number(x: Any, digits: int = 3) -> str:
    """A table cell: floats to ``digits`` decimals, never a non-zero value shown as zero.

    A value that would round to zero (a learning rate, a p-value) keeps two
    significant digits instead; a missing one is ``"n/a"``; anything else is
    shown as it is.

    Examples
    --------
    >>> format_number(0.91234), format_number(1e-05), format_number(-0.0004), format_number(0.0)
    ('0.912', '1e-05', '-0.0004', '0.000')
    >>> format_number(float("nan")), format_number(None), format_number(7), format_number("AND")
    ('n/a', 'n/a', '7', 'AND')
    >>> format_number(-0.0), format_number(pd.NA)
    ('0.000', 'n/a')
    """
    if x is None or x is pd.NA or x is pd.NaT:
        return MISSING
    if isinstance(x, float | np.floating):
        if not np.isfinite(x):
            return MISSING
        if x != 0 and abs(x) < 0.5 * 10.0 ** -digits:
            return f"{x:.2g}"
        return f"{x + 0.0:.{digits}f}" if x != 0 else f"{0.0:.{digits}f}"
    return str(x)


def format_cell(mean: Any, std: Any = None, digits: int = 3) -> str:
    """``"0.912 ± 0.050"``, ``"0.912"``, or ``"n/a"`` for a missing mean.

    Examples
    --------
    >>> format_cell(0.91234, 0.05), format_cell(0.9), format_cell(float("nan"))
    ('0.912 ± 0.050', '0.900', 'n/a')
    """
    if mean is None or not isinstance(mean, int | float | np.number) or not np.isfinite(mean):
        return MISSING if mean is None or not isinstance(mean, str) else str(mean)
    if std is None or not np.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_interval(mean: Any, low: Any, high: Any, digits: int = 2,
                    signed: bool = False) -> str:
    """``"0.81 [0.75, 0.86]"``; ``"0.81 (no interval)"`` without bounds; ``"n/a"`` without a mean.

    Missing bounds are those of a degenerate bootstrap (every value equal:
    :func:`leukolib.stats.bootstrap_ci` gives none rather than one of zero
    width) or of too few values; the estimate is then shown alone, and says
    so.

    Parameters
    ----------
    mean, low, high : float
    digits : int
    signed : bool
        Write a sign on every number (differences).

    Examples
    --------
    >>> format_interval(0.8123, 0.75, 0.861), format_interval(float("nan"), 0, 1)
    ('0.81 [0.75, 0.86]', 'n/a')
    >>> format_interval(0.0, float("nan"), float("nan"), 3, signed=True)
    '+0.000 (no interval)'
    >>> format_interval(-0.0001, -0.0003, 0.0002, 3)  # not [-0.000, 0.000]
    '-0.0001 [-0.0003, 0.0002]'
    >>> format_interval(-0.006, -0.014, -0.0003, 3)  # not [-0.014, -0.000]
    '-0.0060 [-0.0140, -0.0003]'
    >>> format_interval(-0.032, -0.1079, 1e-17, 3, signed=True)  # float residue of a zero
    '-0.032 [-0.108, +0.000]'
    >>> format_interval(-0.00013, -0.004, 0.002, 3, signed=True)  # not -0.000
    '-0.0001 [-0.0040, +0.0020]'
    >>> format_interval(2e-6, -0.01, 0.012, 3)  # an estimate negligible against the width
    '0.000 [-0.010, 0.012]'
    """
    def number(x: Any) -> bool:
        return x is not None and isinstance(x, int | float | np.number) and bool(np.isfinite(x))

    if not number(mean):
        return MISSING
    if number(low) and number(high) and float(high) > float(low):
        low, high = float(low), float(high)
        # a bound within rounding error of zero (a bootstrap's 1e-17) is zero, not a tiny number
        scale = max(abs(float(mean)), abs(low), abs(high))
        low, high = (0.0 if abs(b) <= 1e-9 * scale else b for b in (low, high))

        def vanishes(b: float) -> bool:  # a non-zero number printed as zero
            return b != 0 and round(b, digits) == 0

        # more digits until the bounds differ as printed (an interval of positive width is never
        # shown as one of zero width) and no non-zero bound, nor an estimate that is not
        # negligible against the interval's width, is printed as zero
        visible = abs(float(mean)) >= 1e-3 * (high - low)
        while digits < 8 and (round(low, digits) == round(high, digits) or vanishes(low)
                              or vanishes(high) or (visible and vanishes(float(mean)))):
            digits += 1
    spec = f"{'+' if signed else ''}.{digits}f"
    text = f"{float(mean) + 0.0:{spec}}"
    if not (number(low) and number(high)):
        return f"{text} (no interval)"
    return f"{text} [{float(low) + 0.0:{spec}}, {float(high) + 0.0:{spec}}]"


def best_mask(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    higher: bool | dict[str, bool] = True,
    digits: int = 3,
) -> pd.DataFrame:
    """Which cells hold the best value of their column, at the shown precision.

    Ties (equal after rounding to ``digits``) are all best; non-numeric and
    missing cells never are.

    Parameters
    ----------
    frame : DataFrame
    columns : sequence of str, optional
        The columns to mark (default: every numeric column).
    higher : bool or dict
        Whether higher is better, for all columns or per column.
    digits : int
        Precision of the comparison.

    Returns
    -------
    DataFrame of bool, like ``frame``.
    """
    out = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    cols = columns if columns is not None else frame.select_dtypes("number").columns
    for c in cols:
        values = pd.to_numeric(frame[c], errors="coerce").round(digits)
        if values.notna().any():
            up = higher.get(c, True) if isinstance(higher, dict) else higher
            best = values.max() if up else values.min()
            out[c] = (values == best).to_numpy()
    return out


def styled(
    frame: pd.DataFrame,
    digits: int = 3,
    best: Sequence[str] | None = None,
    higher: bool | dict[str, bool] = True,
    caption: str | None = None,
) -> Styler:
    """An HTML table of ``frame``: numbers rounded, the best of each column in bold.

    Parameters
    ----------
    frame : DataFrame
    digits : int
        Decimals of float cells.
    best : sequence of str, optional
        Columns whose best value is bold (default: every numeric column;
        ``[]`` for none).
    higher : bool or dict
        Whether higher is better (all columns, or per column).
    caption : str, optional
        Followed by the table's note (``frame.attrs["note"]``), when it has
        one: what a reader must know to read it (the correction of its
        p-values).

    Returns
    -------
    pandas.io.formats.style.Styler
        Displayed by Jupyter (and rendered by the book) as an HTML table.

    Examples
    --------
    >>> t = pd.DataFrame({"p": [0.01]}); t.attrs["note"] = "p-values Holm-adjusted"
    >>> "<caption>tests (p-values Holm-adjusted)</caption>" in styled(t, caption="tests").to_html()
    True
    """
    mask = best_mask(frame, best, higher, digits)
    # labels as a reader reads them (the frame keeps its code names: ``best`` names columns)
    shown = frame.rename_axis(index=[reader_label(n) for n in frame.index.names],
                              columns=[reader_label(n) for n in frame.columns.names])
    sty = shown.style.format(lambda x: reader_label(x, cell=True) if isinstance(x, str)
                             else format_number(x, digits))
    sty = sty.format_index(reader_label, axis=0).format_index(reader_label, axis=1)
    # long text (a command, a reason) wraps anywhere rather than push the table off the page
    long_text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])
                 and frame[c].map(lambda v: isinstance(v, str) and len(v) > LONG_TEXT).any()]
    if long_text:
        sty = sty.set_properties(subset=long_text, **{"overflow-wrap": "anywhere",
                                                      "min-width": "8em"})
    sty = sty.apply(lambda _: np.where(mask, "font-weight: bold", ""), axis=None)
    note = frame.attrs.get("note")
    if caption and note:
        caption = f"{caption} ({note})"
    if caption or note:
        sty = sty.set_caption(caption or note)
    return sty


#: The verdict of a paired comparison whose pairs all tie (:func:`paired_view`).
TIED = "identical: every pair tied"


def paired_view(table: pd.DataFrame, names: tuple[str, str] = ("a", "b"),
                digits: int = 3) -> pd.DataFrame:
    """A table of paired comparisons (:func:`leukolib.stats.paired_comparison` rows), to read.

    Columns: the two means when the table has them (``mean_a``, ``mean_b``,
    named by ``names``), ``difference [95 % CI]`` (``(no interval)`` where
    every difference is equal), the Wilcoxon p-value raw and Holm-adjusted
    over the table's rows (:func:`leukolib.stats.holm_paired`, applied here
    when the table has no adjusted column), ``wins / losses / ties`` and the
    verdict (decided on the adjusted p; :data:`TIED` where every pair ties);
    the table's note (``attrs["note"]``) names the correction.

    Examples
    --------
    >>> t = pd.DataFrame({"mean_diff": [0.017], "ci_low": [0.013], "ci_high": [0.022],
    ...                   "wilcoxon_p": [3e-28], "wins": [40], "losses": [2], "ties": [1]})
    >>> paired_view(t, ("ENSEMBLE", "HM")).iloc[0, :4].tolist()
    ['+0.017 [+0.013, +0.022]', '3e-28', '3e-28', '40 / 2 / 1']
    """
    from leukolib.stats import holm_paired

    table = table if "wilcoxon_p_holm" in table else holm_paired(table, names)
    out = pd.DataFrame(index=table.index)
    if "mean_a" in table and "mean_b" in table:
        out[names[0]] = table["mean_a"].astype(float).round(digits)
        out[names[1]] = table["mean_b"].astype(float).round(digits)
    out["difference [95 % CI]"] = [
        format_interval(d, lo, hi, digits, signed=True)
        for d, lo, hi in zip(table["mean_diff"], table["ci_low"], table["ci_high"], strict=True)]
    out["Wilcoxon p"] = table["wilcoxon_p"].astype(float).map(lambda p: f"{p:.2g}")
    out["Holm p"] = table["wilcoxon_p_holm"].astype(float).map(lambda p: f"{p:.2g}")
    out["wins / losses / ties"] = [f"{w} / {lo} / {t}" for w, lo, t in
                                   zip(table["wins"], table["losses"], table["ties"], strict=True)]
    # every pair tied (e.g. a set the ensemble's gate gives its handcrafted masks): no test
    # can find a difference, and there is none to find
    tied = (table["wins"] == 0) & (table["losses"] == 0)
    out["verdict"] = table["verdict"].where(~tied, TIED)
    out.attrs.update(table.attrs)
    return out


def to_markdown(
    frame: pd.DataFrame,
    digits: int = 3,
    best: Sequence[str] | None = None,
    higher: bool | dict[str, bool] = True,
    index: bool = True,
) -> str:
    """A GitHub-flavoured markdown table, best cells in ``**bold**`` (for files and terminals)."""
    mask = best_mask(frame, best, higher, digits)

    def cell(value: Any, bold: bool) -> str:
        if isinstance(value, float | np.floating):
            text = format_cell(float(value), None, digits)
        else:
            text = MISSING if value is None or (isinstance(value, float) and value != value) \
                else str(value)
        text = text.replace("|", "\\|")
        return f"**{text}**" if bold else text

    head = ([str(frame.index.name or "")] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for (key, row), (_, marks) in zip(frame.iterrows(), mask.iterrows(), strict=True):
        cells = [cell(v, bool(m)) for v, m in zip(row.tolist(), marks.tolist(), strict=True)]
        lines.append("| " + " | ".join(([str(key)] if index else []) + cells) + " |")
    return "\n".join(lines)


def beside_paper(
    ours: pd.DataFrame,
    theirs: pd.DataFrame,
    metrics: Sequence[str],
    label: str = "method",
) -> pd.DataFrame:
    """Our rows and the paper's rows in one table, the paper's layout.

    Parameters
    ----------
    ours : DataFrame
        One row per method with a column per metric (values in [0, 1]).
    theirs : DataFrame
        Tidy rows of :func:`leukolib.paper.reported` (``method, metric,
        value``, optionally ``table`` and ``ref``).
    metrics : sequence of str
        The columns, in order.
    label : str
        Name of the row label column.

    Returns
    -------
    DataFrame
        Columns ``source`` (``"leukolib"`` or ``"paper (Table N)"``),
        ``label`` and the metrics; a metric the paper does not give is NaN.

    Examples
    --------
    >>> from leukolib import paper
    >>> ours = pd.DataFrame({"iou": [0.93]}, index=["AND"])
    >>> t = beside_paper(ours, paper.reported(table="2", dataset="jtsc"), ["iou"])
    >>> t.values.tolist()
    [['leukolib', 'AND', 0.93], ['paper (Table 2)', 'ENSEMBLE', 0.926]]
    """
    rows = [{"source": "leukolib", label: str(k), **{m: r.get(m, np.nan) for m in metrics}}
            for k, r in ours.iterrows()]
    if len(theirs):
        keys = ["table", "method"] if "table" in theirs else ["method"]
        for key, g in theirs.groupby(keys, sort=False):
            tab, method = key if len(keys) == 2 else (None, key[0])
            values = dict(zip(g["metric"], g["value"], strict=True))
            ref = g["ref"].dropna().iloc[0] if "ref" in g and g["ref"].notna().any() else None
            name = f"{method} [{int(ref)}]" if ref is not None else str(method)
            rows.append({"source": f"paper (Table {tab})" if tab else "paper", label: name,
                         **{m: values.get(m, np.nan) for m in metrics}})
    return pd.DataFrame(rows, columns=["source", label, *metrics])


def save_table(frame: pd.DataFrame, folder: str | os.PathLike, name: str) -> list[Path]:
    """Write ``frame`` as ``name.csv`` and ``name.json`` (records) into ``folder``."""
    from leukolib.runs import write_json

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"{name}.csv"
    frame.to_csv(csv, index=frame.index.name is not None)
    data = frame.reset_index() if frame.index.name is not None else frame
    return [csv, write_json(out / f"{name}.json", data.to_dict(orient="records"))]
