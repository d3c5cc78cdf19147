"""The best model of a grid: one rule, used by every stage that picks one.

The **best model** is the one with the highest **mean validation accuracy of
its folds** (each fold's model scored on the images it held out, at the epoch
that fold selected). The test split is never looked at. Ties (scores equal to
within ``1e-9``, common on small validation folds) go to the model listed
first in the order of the paper's Table 1 (:data:`~leukolib.classification.grid.GRID`:
segmented before raw, ReLU before Mish, Linear before Medium), then to the
key's alphabetical order, so the choice never depends on the order in which
runs were loaded.

Chapter 5 (the colour experiment, the tables' "best by validation"), chapter 6
(the models explained in detail) and chapter 7 (the models swept under blur and
noise) all call :func:`best_model` or :func:`best_per_input`.

Examples
--------
>>> scores = {"raw-mish-linear": 0.95, "raw-relu-linear": 0.95, "segmented-relu-linear": 0.9}
>>> best_model(scores)  # a tie: Table 1's order decides
'raw-relu-linear'
>>> best_per_input(scores)
{'segmented': 'segmented-relu-linear', 'raw': 'raw-relu-linear'}
>>> import numpy as np
>>> best_model({"raw-mish-linear": 0.4, "raw-relu-linear": np.float32(0.5)})
'raw-relu-linear'

"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from leukolib.classification.grid import GRID

__all__ = ["TIE_TOLERANCE", "best_model", "best_per_input", "validation_accuracy"]

#: Scores closer than this are a tie.
TIE_TOLERANCE = 1e-9

_ORDER = {"-".join(k): i for i, k in enumerate(GRID)}


def validation_accuracy(item: Any) -> float:
    """The mean fold validation accuracy of a run, a run record or a record's summary.

    Accepts a :class:`~leukolib.classification.ClassifierRun` (its ``summary``),
    a run record (``record["summary"]``), a summary (``val_acc_mean``) or a
    number.
    """
    if isinstance(item, numbers.Real):
        return float(item)
    summary = getattr(item, "summary", None)
    if summary is None and isinstance(item, Mapping):
        summary = item.get("summary", item)
    value = (summary or {}).get("val_acc_mean")
    return float("-inf") if value is None else float(value)


def _rank(key: str) -> tuple[int, str]:
    base = "-".join(str(key).split("-")[:3])
    return (_ORDER.get(base, len(_ORDER)), str(key))


def best_model(candidates: Mapping[str, Any]) -> str:
    """The key of the best model (module docstring: the rule and its tie-break).

    Parameters
    ----------
    candidates : mapping
        Key -> anything :func:`validation_accuracy` reads.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        With no candidate, or none with a finite validation accuracy.
    """
    if not candidates:
        raise ValueError("no model to choose from")
    scores = {k: validation_accuracy(v) for k, v in candidates.items()}
    scores = {k: s for k, s in scores.items() if math.isfinite(s)}
    if not scores:
        raise ValueError(f"no model has a validation accuracy: {', '.join(candidates)}")
    top = max(scores.values())
    tied = [k for k, s in scores.items() if s >= top - TIE_TOLERANCE]
    return min(tied, key=_rank)


def best_per_input(candidates: Mapping[str, Any],
                   inputs: tuple[str, ...] = ("segmented", "raw")) -> dict[str, str]:
    """The best model of each input kind present (keys ``"<input>-..."``), in ``inputs`` order."""
    out = {}
    for kind in inputs:
        part = {k: v for k, v in candidates.items() if str(k).startswith(kind + "-")}
        if part:
            out[kind] = best_model(part)
    return out
