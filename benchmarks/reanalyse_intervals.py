"""Recompute the shipped results' intervals from what they store, in place.

Usage::

    python benchmarks/reanalyse_intervals.py            # rewrite, print every change
    python benchmarks/reanalyse_intervals.py --check    # print, write nothing; status 1 if stale

The shipped results (``leukolib/reference/*.json``, ``benchmarks/results/*.json``)
were measured when leukolib gave every proportion a bootstrap interval and a
degenerate bootstrap (every value equal) the interval ``(v, v)``: a perfect
26 of 26 read ``1.000 [1.000, 1.000]``. Retraining is not needed to correct
them: a proportion's exact interval is a function of its counts alone. This
script rewrites, and rewrites nothing else:

* every **accuracy** (a classification report's eight models, its baselines
  and the grey retraining; the splits' and the settings' tables; the cpu
  profile's choices): the exact Clopper-Pearson interval
  (:func:`leukolib.stats.proportion_ci`) of ``k = accuracy x n`` right of
  ``n`` test images;
* every **pointing game** hit rate (the explanations' localization rows,
  :data:`leukolib.explain.summary.PROPORTIONS`): the same, of ``k = mean x n``;
* every **paired comparison** whose stored interval has zero width at its
  own mean difference (a degenerate bootstrap: every image's difference
  equal): no interval (``null``) and ``"degenerate": true``, as
  :func:`leukolib.stats.paired_comparison` now reports it.

A count that is not a whole number (an accuracy that is no share of the
stored ``n``) is left as it is and reported. Each file changed records
``reanalysis`` (the command, the date, what was recomputed and how many
intervals changed) in its provenance (``provenance`` where the file has one,
else beside its top-level ``command``). Every changed interval is printed
``old -> new``; at the end, every interval of zero width still shipped.
A second run changes nothing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leukolib.explain.summary import PROPORTIONS  # noqa: E402
from leukolib.stats import proportion_ci  # noqa: E402

COMMAND = "python benchmarks/reanalyse_intervals.py"
WHAT = ("exact Clopper-Pearson intervals of the accuracies and pointing-game hit rates from "
        "their stored counts; degenerate paired intervals (every difference equal) set to none")
#: Classification tables' numbers are stored with 10 decimals; so are their new bounds.
DECIMALS = 10


class Reanalysis:
    """The changes made to one file: ``(path, old, new)`` and the counts left alone."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, Any, Any]] = []
        self.skipped: list[str] = []

    def count(self, share: float, n: int, path: str) -> int | None:
        """``share x n`` as a whole number of images, or None (reported) when it is not one."""
        k = share * n
        if n <= 0 or abs(k - round(k)) > 1e-6:
            self.skipped.append(f"{path}: {share!r} of {n} is no whole count")
            return None
        return int(round(k))

    def set_pair(self, row: dict[str, Any], low: str, high: str, new: tuple[Any, Any],
                 path: str) -> None:
        old = (row[low], row[high])
        if old != new:
            row[low], row[high] = new
            self.changes.append((path, list(old), list(new)))

    def set_list(self, row: dict[str, Any], key: str, new: tuple[Any, Any], path: str) -> None:
        old = tuple(row[key])
        if old != new:
            row[key] = list(new)
            self.changes.append((path, list(old), list(new)))


def _exact(k: int, n: int, decimals: int | None = None) -> tuple[float, float]:
    lo, hi = proportion_ci(k, n)
    return (round(lo, decimals), round(hi, decimals)) if decimals else (lo, hi)


def accuracy_rows(rows: list[dict[str, Any]], acc: str, low: str, high: str, n: int | None,
                  path: str, r: Reanalysis) -> None:
    """Rows holding an accuracy ``acc`` and its bounds; ``n`` from the row (``n test``) or given."""
    for i, row in enumerate(rows):
        if not {acc, low, high} <= set(row) or row[acc] is None:
            continue
        size = int(row.get("n test") or n or 0)
        k = r.count(float(row[acc]), size, f"{path}[{i}].{acc}")
        if k is not None:
            r.set_pair(row, low, high, _exact(k, size, DECIMALS), f"{path}[{i}].{low}/{high}")


def classification_report(doc: dict[str, Any], r: Reanalysis) -> None:
    """``benchmarks/classification_report.py``'s result: models, baselines, grey retraining."""
    grid = doc.get("grid") or {}
    n = grid.get("n_test")
    if not n:
        return
    accuracy_rows(grid.get("table") or [], "test acc", "CI low", "CI high", n, "grid.table", r)
    for name, b in (doc.get("baselines") or {}).items():
        if "test_acc_ci" in b:
            k = r.count(float(b["test_acc"]), n, f"baselines.{name}.test_acc")
            if k is not None:
                r.set_list(b, "test_acc_ci", _exact(k, n), f"baselines.{name}.test_acc_ci")
    accuracy_rows(doc.get("color") or [], "gray", "gray CI low", "gray CI high", n, "color", r)


def summaries(doc: dict[str, Any], r: Reanalysis) -> None:
    """The splits' and the settings' tables (``n test`` in every row)."""
    res = doc.get("results") or {}
    for key, acc in (("splits", "its test acc"), ("rows", "test acc")):
        if isinstance(res.get(key), list):
            accuracy_rows(res[key], acc, "CI low", "CI high", None, f"results.{key}", r)


def profile_choices(doc: dict[str, Any], r: Reanalysis) -> None:
    """``benchmarks/results/classification_cpu_choices.json``: runs of models with ``n_test``."""
    for i, run in enumerate(doc.get("runs") or []):
        for key, m in (run.get("models") or {}).items():
            if "test_acc_ci" in m and m.get("n_test"):
                path = f"runs[{i}].models.{key}.test_acc"
                k = r.count(float(m["test_acc"]), int(m["n_test"]), path)
                if k is not None:
                    r.set_list(m, "test_acc_ci", _exact(k, int(m["n_test"])), path + "_ci")


def _dicts(obj: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every dict inside ``obj`` with its path."""
    if isinstance(obj, dict):
        yield path, obj
        for k, v in obj.items():
            yield from _dicts(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _dicts(v, f"{path}[{i}]")


def pointing_rows(doc: dict[str, Any], r: Reanalysis) -> None:
    """Localization summaries: a pointing game's ``mean`` of ``n`` images is a hit rate."""
    for path, row in _dicts(doc):
        if row.get("metric") in PROPORTIONS and {"mean", "n", "ci_low", "ci_high"} <= set(row):
            if row["mean"] is None or not row["n"]:
                continue
            k = r.count(float(row["mean"]), int(row["n"]), f"{path}.mean")
            if k is not None:
                r.set_pair(row, "ci_low", "ci_high", _exact(k, int(row["n"])),
                           f"{path} ({row.get('model', '')} {row.get('method', '')} "
                           f"{row['metric']}).ci_low/ci_high")


def degenerate_rows(doc: dict[str, Any], r: Reanalysis) -> None:
    """Paired comparisons stored with the interval ``(d, d)`` at their own mean difference."""
    for path, row in _dicts(doc):
        if {"mean_diff", "ci_low", "ci_high"} <= set(row) and row["ci_low"] is not None \
                and row["ci_low"] == row["ci_high"] == row["mean_diff"]:
            r.set_pair(row, "ci_low", "ci_high", (None, None), f"{path}.ci_low/ci_high")
            row["degenerate"] = True


RULES = (classification_report, summaries, profile_choices, pointing_rows, degenerate_rows)


def zero_width(doc: Any) -> list[str]:
    """The intervals of zero width in a document: ``*low``/``*high`` pairs and ``*_ci`` pairs."""
    found = []
    for path, row in _dicts(doc):
        for key, value in row.items():
            m = re.search(r"(?<![a-z])low$", key, re.IGNORECASE)
            if m and isinstance(value, int | float):
                other = row.get(key[:m.start()] + key[m.start():].replace("low", "high"))
                if isinstance(other, int | float) and other == value:
                    found.append(f"{path}.{key} = {value}")
            if key.endswith("_ci") and isinstance(value, list) and len(value) == 2 \
                    and value[0] is not None and value[0] == value[1]:
                found.append(f"{path}.{key} = {value}")
    return found


def _indent(text: str) -> int | None:
    m = re.match(r"\{\n( +)\"", text)
    return len(m.group(1)) if m else None


def reanalyse(path: Path, write: bool) -> tuple[Reanalysis, dict[str, Any]]:
    """Apply every rule to one file; write it (same layout) when something changed."""
    text = path.read_text()
    doc = json.loads(text)
    r = Reanalysis()
    for rule in RULES:
        rule(doc, r)
    if r.changes and write:
        record = {"command": COMMAND, "date": datetime.now(UTC).date().isoformat(),
                  "what": WHAT, "intervals_changed": len(r.changes)}
        target = doc["provenance"] if isinstance(doc.get("provenance"), dict) else doc
        target["reanalysis"] = record
        path.write_text(json.dumps(doc, indent=_indent(text), allow_nan=False) + "\n")
    return r, doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path,
                    help="default: leukolib/reference/*.json and benchmarks/results/*.json")
    ap.add_argument("--check", action="store_true", help="print what would change, write nothing")
    args = ap.parse_args(argv)
    files = args.files or sorted([*(ROOT / "leukolib" / "reference").glob("*.json"),
                                  *(ROOT / "benchmarks" / "results").glob("*.json")])
    stale = 0
    for path in files:
        r, doc = reanalyse(path, write=not args.check)
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        for where, old, new in r.changes:
            print(f"{name}: {where}: {_short(old)} -> {_short(new)}")
        for why in r.skipped:
            print(f"{name}: left as stored: {why}")
        stale += len(r.changes)
        for where in zero_width(doc):
            print(f"{name}: still of zero width: {where}")
    verb = "would change" if args.check else "changed"
    print(f"{stale} intervals {verb} in {len(files)} files")
    return 1 if args.check and stale else 0


def _short(pair: list[Any]) -> str:
    return "[" + ", ".join("null" if v is None else f"{v:.3f}" for v in pair) + "]"


if __name__ == "__main__":
    raise SystemExit(main())
