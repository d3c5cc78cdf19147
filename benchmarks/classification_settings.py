"""The same classifiers under several training settings, on the same test splits.

Usage::

    python benchmarks/bench_classify.py learn --dataset all_idb2 --root ROOT --size 112 \\
        --resize 116 --batch 16 --lr 1e-3 --folds 2 --epochs 30 --seed 0 \\
        --keys KEY,KEY,... --runs GRID            # one grid folder per setting and seed
    python benchmarks/classification_settings.py --dataset all_idb2 GRID [GRID ...]

Each ``GRID`` is a folder of classifier runs (what ``train_grid``,
``benchmarks/classification_report.py --runs`` or ``bench_classify.py learn
--runs`` write), any setting and seed; each run says how it was trained, so
the settings are named from the runs (:func:`leukolib.classification.report.
training_setting`), the profile's first. The same seed draws the same test
split under every setting (checked), so the models differ only by how they
were trained. What compares settings is the validation accuracy at the
**last epoch**, which chose nothing; the selected epoch's (the best of the
run, so higher for longer runs by construction) and the test accuracy are
printed beside it, and decide nothing. Per setting and seed where all eight
models were trained, the model chosen on validation (as
:func:`~leukolib.classification.report.across_splits` chooses).

The comparison goes to ``leukolib/reference/classification_<dataset>_<profile>_
settings.json`` (package data: chapter 5 renders it) with the command, date
and commit.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grids", type=Path, nargs="+", help="folders of classifier runs")
    ap.add_argument("--dataset", default="all_idb2")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--results", type=Path, default=ROOT / "leukolib" / "reference",
                    help="where the comparison goes (default: the package data of chapter 5)")
    args = ap.parse_args(argv)

    import json

    from leukolib import reference
    from leukolib.classification.report import across_settings, committed_settings, load_records
    from leukolib.tables import to_markdown

    grids = []
    for folder in args.grids:
        records = load_records(folder)
        if not records:
            print(f"{folder}: no complete classifier run")
            return 1
        wrong = {k: r["config"]["dataset"]["name"] for k, r in records.items()
                 if r["config"]["dataset"]["name"] != args.dataset
                 or r["config"]["profile"] != args.profile}
        if wrong:
            print(f"{folder}: runs of another dataset or profile than {args.dataset}, "
                  f"{args.profile}: {', '.join(wrong)}")
            return 1
        grids.append(records)
    try:
        long = across_settings(grids)
    except ValueError as err:
        print(f"{', '.join(map(str, args.grids))}: {err}")
        return 1
    print(to_markdown(long.set_index(["setting", "seed", "model"]), best=[]))
    results = {"dataset": args.dataset,
               "rows": json.loads(long.to_json(orient="records"))}
    # the folders are this machine's: the command names how many, the rows what they held
    options = [a for a in sys.argv[1:] if not Path(a).is_dir()]
    command = shlex.join(["python", "benchmarks/classification_settings.py", *options]) \
        + f" GRID... ({len(args.grids)} folders of runs)"
    name = f"classification_{args.dataset}_{args.profile}_settings"
    path = reference.write(name, results, command, args.profile, folder=args.results)
    print(f"wrote {path}")
    if args.results == ROOT / "leukolib" / "reference":
        print("\n" + committed_settings(name)["text"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
