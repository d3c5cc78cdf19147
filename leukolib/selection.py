"""How leukolib chooses a default: on some datasets, reported on another.

Every default that was chosen by measurement (a segmentation parameter, a
fusion rule, a threshold) is chosen by one stated rule, :func:`choose`, and
evaluated by leave-one-dataset-out (:func:`leave_one_out`): the rule is applied
to all datasets but one, and the held-out dataset, which chose nothing,
reports how the choice does on data it was not chosen on.

The rule
--------
Each candidate is scored by its mean (e.g. mean IoU over images) on every
choosing unit (a dataset, or a pair of training and evaluation datasets). The
**incumbent** (the paper's value, or the simplest rule) stays unless a
candidate beats it consistently: its gain over the incumbent must be positive
on every choosing unit **and** its mean gain must exceed the spread of its
gains across the units (largest minus smallest), so that a gain that holds on
one dataset and not on another does not displace the paper's value. Among
the candidates that pass, the largest mean gain wins (ties: the first
listed, the simplest).

With two choosing units this asks the smaller gain to be more than a third of
the larger. With a single unit the spread is zero and any gain counts; the
callers say when so few units chose.

A **safety switch** (a fallback that acts only where something is wrong, such
as the ensemble keeping the handcrafted mask alone where the U-Net is out of its
domain) changes nothing on most units by design, so it can never gain on every
one. It is chosen by the **no-harm** rule (``criterion="no-harm"``): a
candidate passes when it loses on no choosing unit (every gain at least
``-tolerance``, 0.001 IoU by default) and gains on average; the largest mean
gain wins, else the incumbent (never switching) stays.

Examples
--------
>>> import pandas as pd
>>> scores = pd.DataFrame({"jtsc": [0.90, 0.92, 0.95], "all_idb2": [0.92, 0.93, 0.90]},
...                       index=["paper", "a", "b"])
>>> choose(scores, "paper").chosen  # "b" gains on JTSC only; "a" gains on both
'a'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Choice", "choose", "leave_one_out"]


@dataclass
class Choice:
    """The outcome of :func:`choose`.

    Attributes
    ----------
    chosen : str
        The candidate chosen (the incumbent when nothing beats it).
    incumbent : str
    units : list of str
        The units that chose.
    table : DataFrame
        Per candidate: its score on every unit, ``mean_gain``, ``spread``,
        ``min_gain`` and ``passes``.
    """

    chosen: str
    incumbent: str
    units: list[str]
    table: pd.DataFrame = field(repr=False)
    criterion: str = "consistent"

    @property
    def reason(self) -> str:
        """The decision in words."""
        units = ", ".join(self.units)
        if self.criterion == "no-harm":
            if self.chosen == self.incumbent:
                return f"no candidate gained on {units} without a loss on one of them"
            r = self.table.loc[self.chosen]
            return (f"{self.chosen!r} lost on none of {units} (worst gain "
                    f"{r['min_gain']:+.4f}) and gained {r['mean_gain']:+.4f} on average")
        if self.chosen == self.incumbent:
            return f"no candidate beat {self.incumbent!r} consistently on {units}"
        r = self.table.loc[self.chosen]
        return (f"{self.chosen!r} beat {self.incumbent!r} on every one of {units} "
                f"(mean gain {r['mean_gain']:+.4f} > spread {r['spread']:.4f})")


def choose(scores: pd.DataFrame, incumbent: str, units: Sequence[str] | None = None,
           criterion: str = "consistent", tolerance: float = 1e-3) -> Choice:
    """Apply the rule of the module docstring.

    Parameters
    ----------
    scores : DataFrame
        Rows = candidates (the incumbent among them, in order of preference),
        columns = units, values = the score to maximise (a mean over images).
    incumbent : str
        The row that stays unless beaten consistently.
    units : sequence of str, optional
        The columns that choose (default: all).
    criterion : {"consistent", "no-harm"}
        The rule: a gain on every unit beyond the spread, or (a safety switch)
        no loss beyond ``tolerance`` on any unit and a mean gain.
    tolerance : float
        The loss the no-harm rule forgives on a unit (noise of a mean over images).

    Returns
    -------
    Choice

    Examples
    --------
    >>> import pandas as pd
    >>> scores = pd.DataFrame({"a": [0.90, 0.90, 0.95], "b": [0.60, 0.85, 0.80]},
    ...                       index=["never", "fallback 0.5", "fallback 0.7"])
    >>> choose(scores, "never").chosen, choose(scores, "never", criterion="no-harm").chosen
    ('never', 'fallback 0.5')
    """
    if criterion not in ("consistent", "no-harm"):
        raise ValueError(f"criterion must be 'consistent' or 'no-harm', got {criterion!r}")
    if incumbent not in scores.index:
        raise KeyError(f"the incumbent {incumbent!r} is not a candidate")
    cols = list(units) if units is not None else list(scores.columns)
    s = scores[cols].astype(float)
    gains = s.sub(s.loc[incumbent], axis=1)
    table = s.copy()
    table["mean_gain"] = gains.mean(axis=1)
    table["min_gain"] = gains.min(axis=1)
    table["spread"] = gains.max(axis=1) - gains.min(axis=1)
    if criterion == "consistent":
        table["passes"] = (table["min_gain"] > 0) & (table["mean_gain"] > table["spread"])
    else:
        table["passes"] = (table["min_gain"] >= -tolerance) & (table["mean_gain"] > 0)
    table.loc[incumbent, "passes"] = False
    passing = table[table["passes"]]
    chosen = incumbent if passing.empty else str(passing["mean_gain"].idxmax())
    return Choice(chosen, incumbent, cols, table, criterion)


def leave_one_out(
    scores: pd.DataFrame,
    incumbent: str,
    held_out_units: Callable[[str], tuple[list[str], list[str]]] | None = None,
    datasets: Sequence[str] | None = None,
    criterion: str = "consistent",
) -> pd.DataFrame:
    """Leave-one-dataset-out: choose without a dataset, report on it.

    Parameters
    ----------
    scores : DataFrame
        As :func:`choose` (columns = units).
    incumbent : str
    held_out_units : callable, optional
        ``held_out_units(dataset) -> (choosing units, reporting units)``; by
        default the units are the datasets themselves: the others choose and
        the dataset reports.
    datasets : sequence of str, optional
        The datasets to hold out in turn (default: the columns).
    criterion : str
        :func:`choose`'s rule.

    Returns
    -------
    DataFrame
        One row per held-out dataset and reporting unit: ``held_out, unit,
        chosen, chosen_score, incumbent_score, all_chosen, all_score``, where
        ``all_chosen`` is the choice made on every unit (the library
        default) and ``all_score`` its score on the unit.
    """
    everyone = choose(scores, incumbent, criterion=criterion)
    rows = []
    for d in datasets or list(scores.columns):
        choosing, reporting = held_out_units(d) if held_out_units else (
            [c for c in scores.columns if c != d], [d])
        c = choose(scores, incumbent, choosing, criterion=criterion)
        for unit in reporting:
            rows.append({"held_out": d, "unit": unit, "chosen": c.chosen,
                         "chosen_score": float(scores.loc[c.chosen, unit]),
                         "incumbent_score": float(scores.loc[incumbent, unit]),
                         "all_chosen": everyone.chosen,
                         "all_score": float(scores.loc[everyone.chosen, unit]),
                         "reason": c.reason})
    return pd.DataFrame(rows)
