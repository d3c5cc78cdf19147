"""The classifier chosen on validation, on several test splits of one dataset.

Usage::

    python benchmarks/classification_report.py --profile cpu --datasets all_idb2 \\
        --seed 1 --skip-color --runs RUNS --out benchmarks/results   # ..._cpu_seed1.json
    python benchmarks/classification_splits.py --dataset all_idb2 --reports \\
        leukolib/reference/classification_all_idb2_cpu.json \\
        benchmarks/results/classification_all_idb2_cpu_seed1.json ...seed2.json

Seed 0's report is the one chapter 5 shows (``leukolib/reference``); the
other seeds' go to ``benchmarks/results``.

A test split of a few dozen images moves a test accuracy by several points
from one seed to the next (one image of 26 is 3.8 points). Each report was
trained with its own seed, so with its own stratified test split and folds;
this prints, per split, the model with the best mean validation accuracy and
its test accuracy (:func:`leukolib.classification.report.across_splits`),
beside the two baselines, and their mean over the splits. The highest test
accuracy of the eight is printed for scale only: it is chosen on the test
split. The reports must share one training setting (folds, epochs), named in
the table. The table goes to ``leukolib/reference/classification_<dataset>_
<profile>_splits.json`` (package data: chapter 5 renders it) with the command,
date and commit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="all_idb2")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--reports", type=Path, nargs="+", required=True,
                    help="classification reports of the dataset, one per seed")
    ap.add_argument("--results", type=Path, default=ROOT / "leukolib" / "reference",
                    help="where the result goes (default: the package data chapter 5 renders)")
    args = ap.parse_args(argv)

    from leukolib import reference
    from leukolib.classification.report import across_splits
    from leukolib.tables import to_markdown

    reports = [json.loads(p.read_text()) for p in args.reports]
    for p, r in zip(args.reports, reports, strict=True):
        if r.get("dataset", {}).get("name") not in (None, args.dataset):
            print(f"{p}: a report of {r['dataset']['name']}, not {args.dataset}")
            return 1
    table = across_splits(reports)
    print(to_markdown(table, best=[]))
    # a mean of interval ends is no interval: the accuracies only
    numeric = table.select_dtypes("number").drop(columns=["n test", "CI low", "CI high"],
                                                 errors="ignore")
    means = numeric.mean()
    print("\nmean over the splits:")
    print(to_markdown(means.to_frame("mean").T, best=[]))
    results = {"dataset": args.dataset, "splits": json.loads(table.reset_index().to_json(
        orient="records")), "mean": json.loads(means.to_json()),
        "reports": [{"command": r.get("command"), "commit": r.get("commit"),
                     "date": r.get("date")} for r in reports]}
    command = shlex.join(["python", "benchmarks/classification_splits.py", *sys.argv[1:]])
    path = reference.write(f"classification_{args.dataset}_{args.profile}_splits", results,
                           command, args.profile, folder=args.results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
