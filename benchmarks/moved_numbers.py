"""Which numbers of a classifier report moved when it was regenerated, old beside new.

Usage::

    python benchmarks/moved_numbers.py OLD.json NEW.json [--all]

For every model of the grid and every baseline: the test accuracy (with its
exact interval), the mean validation accuracy and the model chosen on
validation. A number *moved* when old and new differ by more than the half
width of the old number's 95 % interval (for the validation accuracy, which
has none, by more than its fold standard deviation). Prints a markdown table
of the moved numbers (``--all``: of every number); the closing notes of
regenerations quote it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _rows(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per model and baseline: test acc with its interval, validation acc with its spread."""
    out = {}
    for r in report["grid"]["table"]:
        out[r["model"]] = {"test": r["test acc"], "lo": r["CI low"], "hi": r["CI high"],
                           "val": r["val acc (mean)"], "val_sd": r["val acc (std)"]}
    for name, b in (report.get("baselines") or {}).items():
        out[f"{name} baseline"] = {"test": b["test_acc"], "lo": b["test_acc_ci"][0],
                                   "hi": b["test_acc_ci"][1], "val": b["val_acc_mean"],
                                   "val_sd": b["val_acc_std"]}
    return out


def moved(old: dict[str, Any], new: dict[str, Any], everything: bool = False,
          ) -> list[dict[str, Any]]:
    """The numbers of ``old`` that ``new`` moved (module docstring), one dict per number."""
    from leukolib.classification.best import best_model

    a, b = _rows(old), _rows(new)
    rows = []
    for key in a.keys() & b.keys():
        x, y = a[key], b[key]
        half = (x["hi"] - x["lo"]) / 2
        for what, ov, nv, tol in (("test acc", x["test"], y["test"], half),
                                  ("val acc (mean)", x["val"], y["val"], x["val_sd"])):
            if everything or abs(nv - ov) > tol + 1e-9:
                rows.append({"row": key, "number": what, "old": ov, "new": nv,
                             "tolerance": tol, "moved": abs(nv - ov) > tol + 1e-9})
    pick = {name: best_model({r["model"]: r["val acc (mean)"] for r in rep["grid"]["table"]})
            for name, rep in (("old", old), ("new", new))}
    if everything or pick["old"] != pick["new"]:
        rows.append({"row": "chosen on validation", "number": "model", "old": pick["old"],
                     "new": pick["new"], "tolerance": None, "moved": pick["old"] != pick["new"]})
    return sorted(rows, key=lambda r: (r["row"], r["number"]))


def main(argv: list[str] | None = None) -> int:
    """Print the moved numbers as a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--all", action="store_true", help="every number, moved or not")
    args = ap.parse_args(argv)
    rows = moved(json.loads(args.old.read_text()), json.loads(args.new.read_text()), args.all)
    print("| row | number | old | new | half-width (or sd) | moved |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        fmt = (lambda v: f"{v:.3f}") if isinstance(r["old"], float) else str
        tol = "" if r["tolerance"] is None else f"{r['tolerance']:.3f}"
        print(f"| {r['row']} | {r['number']} | {fmt(r['old'])} | {fmt(r['new'])} | {tol} | "
              f"{'yes' if r['moved'] else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
