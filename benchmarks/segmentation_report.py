"""The whole segmentation evaluation on the shared datasets: HM, DEEP, fusions, generalization.

Usage::

    python benchmarks/segmentation_report.py --profile cpu --shared ../shared/data \\
        --runs /tmp/seg_report/runs --out /tmp/seg_report/report

For every dataset found under ``--shared`` (JTSC, CellaVision, ALL-IDB2), it

1. trains the k-fold U-Net of the profile into ``RUNS/unet_<dataset>_<profile>_seed<seed>``
   (the naming of notebook 03; resumable, and a complete run of the same
   configuration is reused at once; ``--run NAME=DIR`` points at another run);
2. evaluates HM, DEEP, ENSEMBLE (the paper's AND) and the other fusions,
   with one handcrafted mask and one out-of-fold U-Net probability per image
   (:func:`leukolib.segmentation.report.evaluate_methods`);
3. applies every run to every other dataset (fold average) for the
   cross-dataset generalization matrix, the handcrafted method as one more row;
4. writes into ``--out``: ``segmentation_report.json`` / ``.md`` and the CSV
   tables of :meth:`~leukolib.segmentation.report.SegmentationReport.save`, plus
   ``fusions_vs_deep.csv``, ``generalization.csv`` (mean IoU),
   ``generalization_ensemble.csv``, ``generalization_modes.csv``,
   ``generalization_per_image.csv`` and ``failure_gallery_<dataset>.png``;

and prints the tables. ``--sensitivity 0.6,0.9`` also scores the soft fusion at other
weights, post hoc, in a table of its own. Nothing is tuned on the evaluation images: the
fusions are the documented ones of :mod:`leukolib.segmentation.ensemble`, with
their documented parameters.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DATASETS = (
    ("jtsc", "segmentation_WBC"),
    ("cellavision", "segmentation_WBC"),
    ("all_idb2", "ALL_IDB2"),
)
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run_dir_name(dataset: str, profile: str, seed: int) -> str:
    """Run folder name, as notebook 03 names it."""
    return f"unet_{dataset}_{profile}_seed{seed}"


def find_datasets(shared: Path, names: list[str] | None, max_images: int | None, seed: int):
    """``{name: (Dataset, root)}`` of the datasets present (others are reported and skipped)."""
    from leukolib.data import load_dataset
    from leukolib.errors import LeukolibError
    from leukolib.notebook import limit_dataset

    found = {}
    for name, folder in DATASETS:
        if names and name not in names:
            continue
        root = shared / folder
        try:
            ds = load_dataset(name, root)
        except (LeukolibError, OSError) as exc:
            print(f"  {name}: skipped ({exc})", flush=True)
            continue
        found[name] = (limit_dataset(ds, max_images, seed), root.resolve())  # absolute in run.json
    return found


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, train what is missing, evaluate, write and print the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the datasets' folder")
    ap.add_argument("--runs", type=Path, default=None, help="folder of the U-Net runs")
    ap.add_argument("--out", type=Path, required=True, help="report folder (created)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--datasets", default="", help="comma-separated subset (default: all found)")
    ap.add_argument(
        "--run", action="append", default=[], metavar="NAME=DIR", help="use this run for NAME"
    )
    ap.add_argument("--no-generalization", action="store_true", help="skip the cross matrix")
    ap.add_argument(
        "--sensitivity",
        default="",
        metavar="W,W,...",
        help="also score the soft fusion at these weights, post hoc (reported apart, never "
        "used to choose anything)",
    )
    ap.add_argument("--n-boot", type=int, default=10_000, help="bootstrap resamples")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from leukolib.profiles import get_profile
    from leukolib.segmentation.ensemble import EnsembleParams
    from leukolib.segmentation.report import (
        FUSION_METHODS,
        METHODS,
        SegmentationReport,
        evaluate_methods,
        failure_gallery,
        generalization,
        markdown_table,
    )
    from leukolib.segmentation.training import train_unet
    from leukolib.segmentation.unet import load_unet_run

    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    prof = get_profile(args.profile)
    progress = not args.quiet
    overrides = dict(item.split("=", 1) for item in args.run)
    names = [n for n in args.datasets.split(",") if n] or None
    print(f"datasets under {args.shared}:", flush=True)
    found = find_datasets(args.shared, names, prof.max_images, args.seed)
    if not found:
        print("no dataset found: nothing to do", file=sys.stderr)
        return 1

    weights = [float(w) for w in args.sensitivity.split(",") if w]
    fusions_scored = dict(FUSION_METHODS)
    for w in weights:
        fusions_scored[f"ENSEMBLE-SOFT w={w:g}"] = EnsembleParams("soft", soft_weight=w)
    missing = [n for n in found if n not in overrides]
    if missing and args.runs is None:
        ap.error(f"--runs is needed for {', '.join(missing)} (or --run NAME=DIR for each)")
    t_all = time.perf_counter()
    runs, reports, post_hoc, timings = {}, [], [], {}
    for name, (ds, root) in found.items():
        run_dir = Path(
            overrides[name]
            if name in overrides
            else args.runs / run_dir_name(name, prof.name, args.seed)
        )
        t0 = time.perf_counter()
        if name not in overrides:  # resumable: returns at once when the run is complete
            train_unet(
                ds,
                run_dir,
                profile=prof,
                seed=args.seed,
                device=args.device,
                progress=progress,
                data_root=root,
            )
        t1 = time.perf_counter()
        runs[name] = load_unet_run(run_dir, device=args.device)
        rep = evaluate_methods(ds, runs[name], fusions=fusions_scored, progress=progress)
        # Post-hoc variants go to their own table; the report keeps the documented methods.
        post_hoc.append(rep.per_image[~rep.per_image["method"].isin(METHODS)])
        rep.per_image = rep.per_image[rep.per_image["method"].isin(METHODS)].reset_index(drop=True)
        reports.append(rep)
        timings[name] = {"train_seconds": t1 - t0, "evaluate_seconds": time.perf_counter() - t1}
        print(f"{name}: {len(ds)} images, {rep.info[name]['mode']}, run {run_dir}", flush=True)
    report = SegmentationReport.concat(reports)
    sensitivity = None
    if weights:
        base = report.per_image[report.per_image["method"].isin(["DEEP", "ENSEMBLE-SOFT"])]
        every_w = pd.concat([base, *post_hoc], ignore_index=True)
        sensitivity = every_w.pivot_table(index="method", columns="dataset", values="iou")

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    report.save(out)
    every = [(f, "DEEP") for f in FUSION_METHODS] + [("ENSEMBLE-SOFT", "ENSEMBLE")]
    fusions = report.paired(comparisons=every, n_boot=args.n_boot, seed=args.seed)
    fusions.to_csv(out / "fusions_vs_deep.csv", index=False)

    for name, (ds, _) in found.items():
        fig = failure_gallery(report, ds, runs[name], n_worst=2)
        fig.savefig(out / f"failure_gallery_{name}.png", dpi=110)

    gen = None
    if not args.no_generalization and len(found) > 1:
        t0 = time.perf_counter()
        gen = generalization(
            runs, {n: d for n, (d, _) in found.items()}, reports=[report], progress=progress
        )
        timings["generalization_seconds"] = time.perf_counter() - t0
        gen.matrix().to_csv(out / "generalization.csv")
        gen.matrix("ENSEMBLE", handcrafted=False).to_csv(out / "generalization_ensemble.csv")
        gen.modes().to_csv(out / "generalization_modes.csv")
        gen.per_image.to_csv(out / "generalization_per_image.csv", index=False)

    if sensitivity is not None:
        sensitivity.to_csv(out / "soft_weight_sensitivity.csv")
    timings["total_seconds"] = time.perf_counter() - t_all
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    extra = {
        "command": command,
        "profile": prof.to_dict(),
        "seed": args.seed,
        "runs": {n: str(r.run_dir) for n, r in runs.items()},
        "timings": timings,
        "fusions_vs_deep": fusions.to_dict(orient="records"),
    }
    if sensitivity is not None:
        extra["soft_weight_sensitivity_iou"] = sensitivity.to_dict(orient="index")
    if gen is not None:
        extra["generalization_iou"] = gen.matrix().to_dict(orient="index")
        extra["generalization_ensemble_iou"] = gen.matrix("ENSEMBLE", handcrafted=False).to_dict(
            orient="index"
        )
        extra["generalization_modes"] = gen.modes().to_dict(orient="index")
    record = json.loads((out / "segmentation_report.json").read_text())
    record.update(json.loads(json.dumps(extra, default=str)))
    (out / "segmentation_report.json").write_text(json.dumps(record, indent=2) + "\n")
    md = out / "segmentation_report.md"
    text = [f"# Segmentation report ({prof.name} profile)", "", f"Command: `{command}`", ""]
    text += [md.read_text(), "## Every fusion against DEEP (and SOFT against AND)", ""]
    shown = fusions.drop(columns=["a", "b"]).set_index("dataset")
    text += [markdown_table(shown), ""]
    if gen is not None:
        text += [
            "## Cross-dataset generalization: mean IoU of DEEP",
            "",
            "Rows: trained on; "
            "columns: evaluated on (diagonal out-of-fold, elsewhere the fold average).",
            "",
        ]
        text += [markdown_table(gen.matrix()), "", "ENSEMBLE (AND) with the same runs:", ""]
        text += [markdown_table(gen.matrix("ENSEMBLE", handcrafted=False)), ""]
    if sensitivity is not None:
        text += [
            "## Post hoc: mean IoU of the soft fusion at other weights (not used to choose)",
            "",
        ]
        text += [markdown_table(sensitivity), ""]
    md.write_text("\n".join(text) + "\n")

    # ------------------------------------------------------------------ print
    print(f"\n{command}\n")
    print("Mean IoU per dataset (ours beside the paper's):")
    print(report.overall_table().to_string(), "\n")
    for name in report.datasets:
        print(f"{name}: the paper's layout (best of each column between ** **)")
        print(report.paper_table(name).to_string(), "\n")
        print(report.mean_ci().query("dataset == @name").round(4).to_string(index=False), "\n")
    print("Paired per-image IoU differences (bootstrap 95 % CI, Wilcoxon signed-rank):")
    print(report.paired(n_boot=args.n_boot, seed=args.seed).round(4).to_string(index=False), "\n")
    print(fusions.round(4).to_string(index=False), "\n")
    print("Why AND wins or loses against DEEP (shares of the truth area, before area opening):")
    print(report.diagnostics().round(4).T.to_string(), "\n")
    if gen is not None:
        print(
            "Cross-dataset generalization, mean IoU of DEEP (rows trained on, cols evaluated on):"
        )
        print(gen.matrix().round(4).to_string(), "\n")
        print("the same for ENSEMBLE (AND):")
        print(gen.matrix("ENSEMBLE", handcrafted=False).round(4).to_string(), "\n")
        print(gen.modes().to_string(), "\n")
    if sensitivity is not None:
        print("Post hoc, not used to choose anything: mean IoU of the soft fusion by weight")
        print(sensitivity.round(4).to_string(), "\n")
    print(f"written to {out} in {timings['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
