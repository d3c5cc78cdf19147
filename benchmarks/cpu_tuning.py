"""The ``cpu`` profile's classifier settings re-decided under the tuning protocol.

Usage::

    python benchmarks/cpu_tuning.py --runs RUNS [--seeds 0,1] [--n 500] [--results DIR]

The settings of the ``cpu`` profile for the synthetic smears (ResNet-18, a
48 px window around the nucleus, Adam at 1e-3 from random initialisation,
batches of 16, 2 folds x 8 epochs) were first chosen on synthetic *test*
accuracies, with smears that the book's own data shares. Here they are
decided again by the protocol of :mod:`leukolib.profiles`:

- the smears come from the reserved tuning range (generator seeds from
  :data:`leukolib.profiles.TUNING_SEED_BASE`), which no book page, notebook or
  report draws (``bench_classify.py learn`` draws them);
- what decides is the validation accuracy of the **last epoch** of each fold
  (it chose nothing: no epoch was selected on it), averaged over the folds;
  no test accuracy is computed into the choice (it is printed, and decides
  nothing);
- each (model, seed) is a unit of :func:`leukolib.selection.choose`: a
  candidate replaces the incumbent only if it gains on every unit beyond the
  spread.

The candidates are the incumbent and one change at a time: a lower learning
rate (3e-4) and the whole field at 64 px instead of the window. ResNet-50 is
not a candidate, by a rule of cost rather than a score: eight of its models
do not train within the ``cpu`` book's time on two cores
(``benchmarks/bench_classify.py speed``). The decision goes to
``leukolib/reference/classification_cpu_tuning.json`` (package data: chapter 5
renders it) with the command, date and commit.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

#: The candidates: the ``cpu`` profile's synthetic setting first (the incumbent), then one
#: change each. Arguments of ``bench_classify.py learn``.
SETTINGS: dict[str, dict[str, object]] = {
    "incumbent: 48 px window, lr 1e-3": {"size": 48, "resize": 50, "crop": 0.25,
                                         "crop_min": 0.375, "lr": 1e-3},
    "lr 3e-4": {"size": 48, "resize": 50, "crop": 0.25, "crop_min": 0.375, "lr": 3e-4},
    "whole field at 64 px": {"size": 64, "resize": 64, "crop": None, "crop_min": 0.0,
                             "lr": 1e-3},
}
KEYS = "segmented-relu-linear,raw-relu-linear"


def last_epoch_val(record: dict) -> float:
    """Mean over folds of the last epoch's validation accuracy (no epoch selected on it)."""
    curves = record["val_curves"]
    return sum(c[-1] for c in curves) / len(curves)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--n", type=int, default=500, help="tuning smears (the cpu book's number)")
    ap.add_argument("--results", type=Path, default=ROOT / "leukolib" / "reference",
                    help="where classification_cpu_tuning.json goes (default: the package data "
                         "of chapter 5)")
    args = ap.parse_args(argv)

    import pandas as pd
    from bench_classify import learn

    from leukolib.profiles import TUNING_SEED_BASE
    from leukolib.reference import write
    from leukolib.selection import choose

    seeds = [int(s) for s in args.seeds.split(",")]
    rows, t0 = [], time.time()
    for name, s in SETTINGS.items():
        for seed in seeds:
            folder = args.runs / f"{name.split(':')[0].replace(' ', '_')}_seed{seed}"
            ns = argparse.Namespace(dataset="synthetic", root=None, n=args.n, syn_size=128,
                                    size=s["size"], resize=s["resize"], crop=s["crop"],
                                    crop_min=s["crop_min"], folds=2, epochs=8, batch=16,
                                    lr=s["lr"], arch="resnet18", keys=KEYS, seed=seed,
                                    runs=folder)
            print(f"{name}, tuning seed {TUNING_SEED_BASE + seed}:", flush=True)
            out = learn(ns)
            for key, m in out["models"].items():
                rows.append({"setting": name, "seed": seed, "model": key,
                             "val acc (last epoch)": last_epoch_val(m),
                             "val acc (selected epoch)": m["val_acc_mean"],
                             "test acc (decides nothing)": m["test_acc"],
                             "seconds": m["seconds"]})
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index="setting", columns=["model", "seed"],
                             values="val acc (last epoch)", sort=False)
    wide.columns = [f"{m} (seed {s})" for m, s in wide.columns]
    incumbent = next(iter(SETTINGS))
    choice = choose(wide, incumbent)
    print(table.to_string(index=False))
    print(f"chosen: {choice.chosen} ({choice.reason})")
    command = "python benchmarks/cpu_tuning.py " + shlex.join(
        ["--runs", "RUNS", "--seeds", args.seeds, "--n", str(args.n)])
    results = {
        "rule": "the validation accuracy of the last epoch (mean over 2 folds) on smears of "
                f"the tuning range (generator seed {TUNING_SEED_BASE} + seed); a candidate "
                "replaces the incumbent only if it gains on every (model, seed) beyond the "
                "spread (leukolib.selection.choose)",
        "incumbent": incumbent, "chosen": choice.chosen, "reason": choice.reason,
        "table": choice.table.reset_index(names="setting").to_dict(orient="records"),
        "rows": rows, "seconds": time.time() - t0,
    }
    path = write("classification_cpu_tuning", results, command, "cpu", folder=args.results)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
