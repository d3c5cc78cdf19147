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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

__all__ = [
    "beside_paper",
    "best_mask",
    "format_cell",
    "format_interval",
    "format_number",
    "save_table",
    "styled",
    "to_markdown",
]

MISSING = "n/a"


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
    """
    def number(x: Any) -> bool:
        return x is not None and isinstance(x, int | float | np.number) and bool(np.isfinite(x))

    if not number(mean):
        return MISSING
    if number(low) and number(high) and float(high) > float(low):
        # more digits until the bounds differ as printed: an interval of positive width is
        # never shown as one of zero width
        def vanishes(b: float) -> bool:  # a non-zero bound printed as zero
            return b != 0 and round(b, digits) == 0

        while digits < 8 and (round(float(low), digits) == round(float(high), digits)
                              or vanishes(float(low)) or vanishes(float(high))):
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
    sty = frame.style.format(lambda x: format_number(x, digits))
    sty = sty.apply(lambda _: np.where(mask, "font-weight: bold", ""), axis=None)
    note = frame.attrs.get("note")
    if caption and note:
        caption = f"{caption} ({note})"
    if caption or note:
        sty = sty.set_caption(caption or note)
    return sty


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
