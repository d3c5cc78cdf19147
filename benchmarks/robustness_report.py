"""Chapter 7 on the shared datasets: Table 8, Table 7, the sweeps and the segmentation sweeps.

Usage::

    python benchmarks/robustness_report.py --profile cpu --shared ../shared/data --runs runs \\
        --out /tmp/robustness_report [--datasets synthetic,all_idb2] \\
        [--seg-datasets jtsc,all_idb2,bloodseg] [--train]

For each classification dataset (``synthetic``, ``all_idb2``), on the eight
classifier runs under ``RUNS/classifiers_<dataset>_<profile>_seed<seed>`` (the
classification benchmark's, or notebook 05's folder layout):

1. ``clusters``: Table 8 from the runs' saved test logits, with intervals;
2. ``robustness``: Table 7 (the paper's corruption, every model) and the
   severity sweeps of the swept models (``--models``, default the profile's);

and for each segmentation dataset with a complete U-Net run
``RUNS/unet_<dataset>_<profile>_seed<seed>``:

3. ``segmentation``: HM, DEEP and the ensemble under the six corruptions.

Nothing is trained unless ``--train`` is given (then missing classifier runs are
trained or resumed; U-Nets never are: they are the segmentation benchmark's). Each
step writes its tables into ``OUT/<dataset>/`` and its numbers into
``OUT/<dataset>/<step>.json`` as soon as it ends, and a second call skips the
steps done (``--redo`` repeats them); what ran and what did not is printed at
the end and recorded. The results of every dataset go to
``benchmarks/results/robustness_<dataset>_<profile>.json`` with the command,
date and commit (:func:`leukolib.reference.write`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "data"
FOLDERS = {"jtsc": "segmentation_WBC", "all_idb2": "ALL_IDB2", "bloodseg": "BloodSeg",
           "synthetic": None}


def _load(name: str, shared: Path, profile, seed: int, stage: str = "data"):
    from leukolib.data import profile_dataset

    root = None if FOLDERS.get(name) is None else shared / FOLDERS[name]
    return profile_dataset(name, root, profile, seed, stage=stage)


def _step(folder: Path, step: str, redo: bool, compute) -> tuple[dict | None, str]:
    """Run ``compute() -> (numbers, report)`` unless its JSON exists; save tables and numbers."""
    from leukolib.runs import jsonable, write_json

    done = folder / f"{step}.json"
    if done.is_file() and not redo:
        return json.loads(done.read_text()), "reused"
    t0 = time.perf_counter()
    numbers, report = compute()
    if numbers is None:
        return None, report  # the reason it did not run
    report.save(folder)
    numbers = {**numbers, "seconds": round(time.perf_counter() - t0, 1)}
    write_json(done, jsonable(numbers))
    return numbers, f"ran in {numbers['seconds']:.0f} s"


def _print_tables(report, names) -> None:
    from leukolib.tables import to_markdown

    for name in names:
        frame = report.tables[name]
        if frame.index.name or frame.index.nlevels > 1:
            frame = frame.reset_index()
        print(f"\n{name}\n{to_markdown(frame, index=False)}", flush=True)


def classification_steps(name, args, prof, out: Path, log: dict) -> dict:
    """Clusters and robustness of one dataset's classifier grid."""
    from leukolib.classification import classifier_runs, grid_keys
    from leukolib.robustness.experiments import (
        classifier_grid,
        cluster_report,
        robustness_report,
    )

    data = _load(name, args.shared, prof, args.seed, stage="classification")
    folder = classifier_runs(args.runs, data, prof, args.seed)
    runs = classifier_grid(data, args.runs, prof, args.seed, train=args.train,
                           progress=not args.quiet)
    missing = [k for k in grid_keys() if k not in runs]
    log[f"{name}: classifier runs"] = (f"{len(runs)} complete in RUNS_DIR/{folder.name}"
                                       + (f"; missing {', '.join(missing)}" if missing else ""))
    # the folder's own name only: a shipped result never shows the build machine's paths
    results: dict = {"runs": f"RUNS_DIR/{folder.name}", "complete": list(runs),
                     "missing": missing}
    if not runs:
        return results

    def clusters():
        rep = cluster_report(runs, args.folds, "total", prof.robustness.n_boot, args.seed)
        _print_tables(rep, ["beside_paper", "intervals", "spreads"])
        return rep.numbers(), rep

    def robustness():
        rep = robustness_report(runs, data, prof, args.seed, args.folds, args.models or None,
                                progress=not args.quiet)
        _print_tables(rep, ["table7_beside_paper", "table7"])
        for key, table in rep.degradation.items():
            print(f"\n{key}\n{table[['mean_a', 'mean_b', 'ci_low', 'ci_high', 'verdict']]}")
        return rep.numbers(), rep

    for step, compute in (("clusters", clusters), ("robustness", robustness)):
        results[step], log[f"{name}: {step}"] = _step(out / name, step, args.redo, compute)
    return results


def segmentation_step(name, args, prof, out: Path, log: dict) -> dict | None:
    """The segmentation sweeps of one dataset: HM, DEEP and the ensemble, or HM alone.

    With a complete U-Net run ``RUNS/unet_<dataset>_<profile>_seed<seed>`` all
    methods are swept (step ``segmentation``); without one, the handcrafted
    method alone (step ``segmentation_hm``), unless ``--require-unet``.
    """
    from leukolib.robustness.experiments import segmentation_report
    from leukolib.runs import RunError
    from leukolib.segmentation.unet import load_unet_run

    run_dir = args.runs / f"unet_{name}_{prof.name}_seed{args.seed}"
    try:
        unet, why = load_unet_run(run_dir), ""
    except RunError as exc:
        unet, why = None, str(exc)
    if unet is None and args.require_unet:
        log[f"{name}: segmentation"] = f"not run: {why}"
        return None

    def compute():
        data = _load(name, args.shared, prof, args.seed)
        rep = segmentation_report(data, unet, prof, args.seed, progress=not args.quiet)
        wide = rep.curves.pivot_table(index=["corruption", "severity"], columns="method",
                                      values="iou")
        print(f"\n{name}: mean IoU over {rep.info['n_images']} images\n{wide.round(3)}",
              flush=True)
        for key, table in rep.comparisons.items():
            print(f"\n{key}\n{table[['mean_a', 'mean_b', 'ci_low', 'ci_high', 'verdict']]}")
        return {**rep.numbers(), "without_unet": why or None}, rep

    step = "segmentation" if unet is not None else "segmentation_hm"
    numbers, what = _step(out / name, step, args.redo, compute)
    log[f"{name}: {step}"] = what + ("" if unet is not None else f" (handcrafted only: {why})")
    return numbers


#: Options whose value is a folder of the machine that ran the report, and what is shown instead.
_FOLDERS = {"--shared": "../shared/data", "--runs": "RUNS_DIR", "--out": "OUT",
            "--results": "RESULTS"}


def _placeholders(argv: list[str]) -> list[str]:
    """The command line as recorded: the folders of this machine replaced by placeholders.

    Examples
    --------
    >>> _placeholders(["--runs", "/work/x/runs", "--out=/tmp/o", "--quiet"])
    ['--runs', 'RUNS_DIR', '--out=OUT', '--quiet']
    """
    out: list[str] = []
    for i, a in enumerate(argv):
        key = a.split("=", 1)[0]
        if "=" in a and key in _FOLDERS:
            out.append(f"{key}={_FOLDERS[key]}")
        elif i and argv[i - 1] in _FOLDERS:
            out.append(_FOLDERS[argv[i - 1]])
        else:
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--runs", type=Path, default=ROOT / "runs")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datasets", default="synthetic,all_idb2",
                    help="classification datasets (comma-separated)")
    ap.add_argument("--seg-datasets", default="jtsc,all_idb2,bloodseg",
                    help="segmentation sweep datasets (comma-separated; '' for none)")
    ap.add_argument("--models", default="", help="swept models: best, all or keys")
    ap.add_argument("--folds", default="best", help="best, mean or a fold number")
    ap.add_argument("--seg-images", type=int, default=None,
                    help="images of a segmentation sweep (default: the profile's; 0: all)")
    ap.add_argument("--require-unet", action="store_true",
                    help="skip a segmentation sweep without a U-Net run (default: HM only)")
    ap.add_argument("--train", action="store_true", help="train missing classifier runs")
    ap.add_argument("--redo", action="store_true", help="repeat the steps already done")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--reference", action="store_true",
                    help="also write leukolib/reference/robustness.json (what the book renders)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    args.folds = args.folds if args.folds in ("best", "mean") else int(args.folds)

    import matplotlib

    matplotlib.use("Agg")
    from dataclasses import replace

    import pandas as pd

    from leukolib import reference
    from leukolib.profiles import get_profile

    warnings.simplefilter("ignore")  # repaired-mask warnings: counted in the tables instead
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    prof = get_profile(args.profile)
    if args.seg_images is not None:
        prof = replace(prof, robustness=replace(prof.robustness,
                                                segmentation_images=args.seg_images or None))
    command = shlex.join(["python", "benchmarks/robustness_report.py",
                          *_placeholders(argv or sys.argv[1:])])
    log: dict[str, str] = {}
    per_dataset: dict[str, dict] = {}
    for name in filter(None, args.datasets.split(",")):
        per_dataset[name] = classification_steps(name, args, prof, args.out, log)
    for name in filter(None, args.seg_datasets.split(",")):
        per_dataset.setdefault(name, {})["segmentation"] = segmentation_step(
            name, args, prof, args.out, log)
    print("\nwhat ran:")
    for key, what in log.items():
        print(f"  {key}: {what}")
    for name, results in per_dataset.items():
        if not any(results.get(step) for step in ("clusters", "robustness", "segmentation")):
            continue  # nothing measured: no results file
        results["log"] = {k: v for k, v in log.items() if k.startswith(f"{name}:")}
        path = reference.write(f"robustness_{name}_{prof.name}", results, command, prof.name,
                               folder=args.results)
        print(f"  {name}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if args.reference:
        measured = {n: r for n, r in per_dataset.items() if "log" in r}
        path = reference.write("robustness", measured, command, prof.name)
        print(f"  reference: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
