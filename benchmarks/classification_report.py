"""The classification report on the shared datasets: the eight models, baselines, colour, shortcut.

Usage::

    python benchmarks/classification_report.py --profile cpu --runs /tmp/cls_report/runs \\
        --datasets all_idb2,jtsc,synthetic

For every dataset (real ones found under ``--shared``; ``synthetic`` at the
profile's classification size) it

1. trains the eight classifiers of Table 1 under the profile into
   ``RUNS/classifiers_<dataset>_<profile>_seed<seed>`` (notebook 05's naming:
   resumable, a complete run is reused at once; from random initialisation
   unless ImageNet weights are in the torch hub cache or on the network);
2. fits the handcrafted-feature and the colour-only baselines on the same split;
3. trains the best segmented and the best raw model (by validation accuracy)
   again on grey images (the colour experiment);
4. on ``synthetic`` only: the hard-attention experiment (trained where the
   background cue is perfect, tested where it holds, vanishes, reverses);

and writes ``OUT/classification_<dataset>_<profile>.json`` (``..._seed<seed>.json``
for a seed other than 0; default OUT: ``leukolib/reference/``, the package data
notebook 05 renders; the command, date,
commit and versions that produced it, and every table as records) after each
step, so an interrupted report resumes where it stopped and what finished is
already on disk. Tables are printed as markdown. Nothing is chosen on the test
images: the colour experiment's models are the best by validation accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from leukolib.reference import source_commit

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"all_idb2": "ALL_IDB2", "jtsc": "segmentation_WBC"}


def _records(frame):
    """A table as JSON records, its index as a column."""
    return json.loads(frame.reset_index().to_json(orient="records"))


def _show(title: str, frame) -> None:
    from leukolib.tables import to_markdown

    print(f"\n### {title}\n")
    print(to_markdown(frame, best=[]))


def report_dataset(name: str, args, log: dict) -> dict:
    """Every step for one dataset; ``log`` (the JSON being written) is updated as they finish."""
    from leukolib.classification import classifier_runs, train_grid
    from leukolib.classification.baselines import run_baselines
    from leukolib.classification.experiments import color_experiment, shortcut_experiment
    from leukolib.classification.report import (
        against,
        grid_table,
        segmented_vs_raw,
        table5_beside_paper,
        table6_beside_paper,
    )
    from leukolib.data import profile_dataset

    root = None if name == "synthetic" else args.shared / FOLDERS.get(name, name)
    ds = profile_dataset(name, root, args.profile, args.seed, stage="classification")
    folder = classifier_runs(args.runs, ds, args.profile, args.seed)
    log["dataset"] = {"name": ds.name, "n_images": len(ds), "classes": list(ds.class_names),
                      "root": None if root is None else os.path.relpath(root, ROOT.parent)}
    t0 = time.perf_counter()
    records = train_grid(ds, folder, args.profile, args.seed, device=args.device,
                         progress=not args.quiet)
    first = next(iter(records.values()))
    log["grid"] = {"seconds_this_call": time.perf_counter() - t0,
                   "train_seconds": {k: r["timings"]["total_seconds"] for k, r in records.items()},
                   "config": {k: first["config"][k] for k in (
                       "arch", "image_size", "resize", "crop", "crop_min", "folds", "epochs",
                       "batch_size", "lr", "lr_kind", "weights", "segmenter", "test_fraction")},
                   "n_test": len(first["split"]["test_ids"]),
                   # the split itself, so that a test checks it against the near-duplicate detector
                   "split": {"grouping": first["split"].get("grouping"),
                             "test_ids": first["split"]["test_ids"],
                             "fold_val_ids": [f["val_ids"] for f in first["folds"]]},
                   "n_trainval": len(first["split"]["trainval_ids"]),
                   "table": _records(grid_table(records)),
                   "table5": _records(table5_beside_paper(records)),
                   "segmented_vs_raw": _records(segmented_vs_raw(records)),
                   "confusion": {k: r["test"]["confusion"] for k, r in records.items()}}
    _show(f"{name}: the eight models", grid_table(records))
    _show(f"{name}: segmented against raw (McNemar)", segmented_vs_raw(records))
    save_log(args, name, log)
    base = run_baselines(ds, first, seed=args.seed, progress=not args.quiet)
    log["baselines"] = {k: {"description": b["description"], "test_acc": b["test"]["accuracy"],
                            "test_acc_ci": b["test"]["accuracy_ci"],
                            "val_acc_mean": b["val_acc_mean"], "val_acc_std": b["val_acc_std"],
                            "seconds": b["seconds"]} for k, b in base.items()}
    log["table6"] = _records(table6_beside_paper(records, base))
    log["against_color"] = _records(against(records, base["color"], "colour"))
    log["against_handcrafted"] = _records(against(records, base["handcrafted"], "handcrafted"))
    _show(f"{name}: every model against the colour-only baseline", against(
        records, base["color"], "colour"))
    save_log(args, name, log)
    if not args.skip_color:
        color = color_experiment(ds, folder, records, args.profile, args.seed,
                                 device=args.device, progress=not args.quiet)
        log["color"] = _records(color)
        _show(f"{name}: trained again on grey images", color)
        save_log(args, name, log)
    if name == "synthetic" and not args.skip_shortcut:
        from leukolib.classification.experiments import shortcut_verdict

        sc = shortcut_experiment(Path(args.runs) / f"shortcut_{args.profile}_seed{args.seed}",
                                 args.profile, args.seed, device=args.device,
                                 progress=not args.quiet)
        log["shortcut"] = {"table": json.loads(sc.to_json(orient="records")),
                           "drop": sc.attrs["drop"], "gap": sc.attrs["gap"],
                           "verdict": shortcut_verdict(sc)}
        _show("synthetic: the hard-attention experiment", sc.set_index("model"))
        print(shortcut_verdict(sc))
        save_log(args, name, log)
    return log


def save_log(args, name: str, log: dict) -> Path:
    """Write what is done so far (seed 0's is the shipped one; other seeds' name their seed)."""
    from leukolib.runs import write_json

    seed = f"_seed{args.seed}" if args.seed else ""
    path = args.out / f"classification_{name}_{args.profile}{seed}.json"
    log["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(path, log)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the report for the datasets asked for."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--datasets", default="all_idb2,jtsc,synthetic")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--runs", type=Path, required=True, help="folder of the runs (resumable)")
    ap.add_argument("--out", type=Path, default=ROOT / "leukolib" / "reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--skip-color", action="store_true", help="no grey retraining")
    ap.add_argument("--skip-shortcut", action="store_true", help="no hard-attention experiment")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    from leukolib.profiles import get_profile
    from leukolib.runs import library_versions

    for name in [n for n in args.datasets.split(",") if n]:
        if name != "synthetic" and not (args.shared / FOLDERS.get(name, name)).is_dir():
            print(f"{name}: not found under {args.shared}, skipped")
            continue
        flags = [f for f, on in (("--skip-color", args.skip_color),
                                 ("--skip-shortcut", args.skip_shortcut)) if on]
        log = {"command": " ".join(["python benchmarks/classification_report.py", "--profile",
                                    args.profile, "--datasets", name, "--seed", str(args.seed),
                                    "--runs RUNS_DIR", *flags]),
               "date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": source_commit(),
               "versions": library_versions(),
               "machine": {"cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0]},
               "profile": get_profile(args.profile).classification.__dict__}
        print(f"== {name} ({args.profile})", flush=True)
        report_dataset(name, args, log)
        print(f"wrote {save_log(args, name, log)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
