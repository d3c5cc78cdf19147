"""Chapter 6 on the classifier runs of the shared datasets: nucleus share, faithfulness, ECE.

Usage::

    python benchmarks/explain_report.py --profile cpu --runs runs --out /tmp/explain_report \\
        [--datasets synthetic,all_idb2,jtsc] [--shared ../shared/data] [--train]

For each dataset, on the classifier runs under
``RUNS/classifiers_<dataset>_<profile>_seed<seed>`` (the layout of notebook 05
and of ``benchmarks/classification_report.py``):

1. explains every complete run on its test split
   (:func:`leukolib.explain.explain_runs`): the four maps, their energy share on
   the nucleus and the cell and the pointing game; ROAD and deletion/insertion
   and the layer-by-layer randomization for the best segmented and the best raw
   model by validation accuracy; the full randomization check for all;
2. calibrates every run (temperature fitted on its out-of-fold logits, ECE on
   its test split) and lays out Table A3;
3. checks the chapter's targets: segmented models put at least 0.8 of every
   method's energy on the nucleus (synthetic); ECE after temperature scaling
   at most half of ECE before, and whether the test split could show it
   (the chance that a perfectly calibrated model shows half the ECE before);
   the recommended method passes the check;
4. measures the nucleus share again with maps of an earlier stage
   (``--finer-layer``, default ``layer2``), whose grid is four times finer.

On ``synthetic`` it also explains the two runs of chapter 5's hard-attention
experiment (trained where the background gives the class away), under
``RUNS/shortcut_<profile>_seed<seed>``.

Each model's results are cached in ``OUT/<dataset>/<key>`` and reused, so an
interrupted report resumes. Runs are never trained unless ``--train`` is given
(then :func:`leukolib.classification.train_grid` and the experiment train or
resume them). ``--models``, ``--epochs`` and ``--folds`` train a reduced grid
for a quick check (use another ``--runs`` folder: a grid folder holds one
configuration); the results then carry ``--tag`` in their name and the
overrides in their record.
Tables are printed as markdown; the numbers of each dataset go to
``benchmarks/results/explain_<dataset>_<profile>.json`` with the command, date
and commit (:func:`leukolib.reference.write`), and for the real datasets the
part chapter 6 shows (:func:`leukolib.explain.committed.shipped`) to
``leukolib/reference/`` (``--reference``), unless the run was reduced. What
ran and what did not is printed at the end.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "data"
FOLDERS = {"all_idb2": "ALL_IDB2", "jtsc": "segmentation_WBC", "synthetic": None}
SHARE_TARGET = 0.8


def _show(title: str, frame, best=()) -> None:
    from leukolib.tables import to_markdown

    print(f"\n### {title}\n")
    print(to_markdown(frame, best=list(best)) if len(frame) else "(empty)")


def _overrides(args) -> dict[str, int]:
    return {k: v for k, v in (("epochs", args.epochs), ("folds", args.folds)) if v}


def _keys(args) -> list[str]:
    from leukolib.classification import grid_keys

    return [k.strip() for k in args.models.split(",") if k.strip()] or grid_keys()


def find_runs(name: str, args) -> tuple[object, dict, str]:
    """The dataset and its complete classifier runs (trained first with ``--train``)."""
    from leukolib.classification import classifier_runs, load_classifier_run
    from leukolib.data import profile_dataset
    from leukolib.runs import RunError

    root = None if FOLDERS[name] is None else args.shared / FOLDERS[name]
    ds = profile_dataset(name, root, args.profile, args.seed, stage="classification")
    folder = classifier_runs(args.runs, ds, args.profile, args.seed)
    if args.train:
        from leukolib.classification import train_grid

        train_grid(ds, folder, profile=args.profile, seed=args.seed, keys=_keys(args),
                   progress=not args.quiet, **_overrides(args))
    runs, missing = {}, []
    for key in _keys(args):
        try:
            runs[key] = load_classifier_run(folder / key, device=args.device)
        except RunError:
            missing.append(key)
    # the folder's own name only: a shipped result never shows the build machine's paths
    note = f"{len(runs)} of {len(_keys(args))} runs complete in RUNS_DIR/{folder.name}"
    return ds, runs, note + (f" (missing: {', '.join(missing)})" if missing else "")


def targets(rep, dataset: str) -> dict[str, object]:
    """The chapter's targets, measured."""
    from leukolib.explain.calibration import ALPHA

    out: dict[str, object] = {}
    s = rep.localization_summary()
    seg = s[(s["metric"] == "energy_nucleus") & s["model"].str.startswith("segmented-")]
    if len(seg):
        out["segmented_min_energy_nucleus"] = float(seg["mean"].min())
        out["segmented_share_target"] = SHARE_TARGET
        out["segmented_share_met"] = bool((seg["mean"] >= SHARE_TARGET).all())
    cal = rep.calibration_table()
    if len(cal):
        out["ece_halved"] = {k: bool(r["ece_after"] <= r["ece_before"] / 2)
                             for k, r in cal.iterrows()}
        out["ece_halved_all"] = all(out["ece_halved"].values())
        # whether the test split could show a halving at all: the chance that a perfectly
        # calibrated model with the scaled confidences shows half the ECE before here
        out["ece_halving_chance"] = {k: float(r["halving_chance"]) for k, r in cal.iterrows()}
        out["ece_miscalibrated_before"] = {k: bool(r["ece_before_p_holm"] < ALPHA)
                                           for k, r in cal.iterrows()}
    if len(rep.faithfulness):
        r = rep.recommendation()
        out["recommended"] = r["method"]
        out["recommendation"] = r["text"]
    return {"dataset": dataset, **out}


def shortcut(args) -> dict[str, object]:
    """Energy on the nucleus of the hard-attention experiment's runs (trained on the cue)."""
    from leukolib.classification.experiments import shortcut_experiment
    from leukolib.explain import explain_runs
    from leukolib.explain.shortcut import shortcut_folder, shortcut_grid
    from leukolib.explain.summary import interval_table

    if args.train:
        shortcut_experiment(shortcut_folder(args.runs, args.profile, args.seed), args.profile,
                            args.seed, device=args.device, progress=False, **_overrides(args))
    data, runs = shortcut_grid(args.runs, args.profile, args.seed, args.device, train=False)
    if not runs:
        return {"status": "not run", "why": "no shortcut runs in "
                f"{shortcut_folder(args.runs, args.profile, args.seed)}"}
    out: dict[str, object] = {"status": "complete", "models": list(runs)}
    for layer in dict.fromkeys(["layer4", args.finer_layer or "layer4"]):
        rep = explain_runs(runs, data, "all", args.profile, args.seed, faithfulness=False,
                           sanity=False, cache=args.out / f"shortcut_{layer}",
                           progress=not args.quiet, layer=layer)
        s = rep.localization_summary()
        _show(f"Trained with the background cue: energy share on the nucleus ({layer})",
              interval_table(s, "energy_nucleus"))
        _show(f"nucleus smoothed to the grid ({layer})", interval_table(s, "grid_nucleus"))
        _show(f"best map on the grid ({layer})", interval_table(s, "best_nucleus"))
        out[layer] = {"localization": s.to_dict(orient="records"),
                      "segmented_vs_raw": rep.input_comparison().to_dict(orient="records"),
                      "headline": rep.headline()}
    return out


def finer(name: str, ds, runs, args) -> dict[str, object]:
    """The energy share on the nucleus with maps of an earlier stage (a finer grid)."""
    from leukolib.explain import explain_runs
    from leukolib.explain.summary import interval_table

    rep = explain_runs(runs, ds, "all", args.profile, args.seed, faithfulness=False,
                       sanity=False, cache=args.out / f"{name}_{args.finer_layer}",
                       progress=not args.quiet, layer=args.finer_layer)
    s = rep.localization_summary()
    _show(f"Energy share on the nucleus ({args.finer_layer})", interval_table(s, "energy_nucleus"))
    _show(f"nucleus smoothed to the grid ({args.finer_layer})", interval_table(s, "grid_nucleus"))
    _show(f"best map on the grid ({args.finer_layer})", interval_table(s, "best_nucleus"))
    return {"layer": args.finer_layer, "localization": s.to_dict(orient="records"),
            "segmented_vs_raw": rep.input_comparison().to_dict(orient="records"),
            "headline": rep.headline()}


def report_dataset(name: str, args) -> dict[str, object]:
    from leukolib import reference
    from leukolib.explain import best_by_validation, explain_runs
    from leukolib.explain.summary import interval_table

    t0 = time.time()
    ds, runs, note = find_runs(name, args)
    print(f"\n## {name}: {note}", flush=True)
    if not runs:
        return {"dataset": name, "status": "not run", "why": note}
    detail = best_by_validation(runs)
    rep = explain_runs(runs, ds, "all", args.profile, args.seed, faithfulness=detail,
                       cascade=detail, cache=args.out / name, progress=not args.quiet)
    s = rep.localization_summary()
    _show("Energy share on the nucleus (mean [95 % CI])", interval_table(s, "energy_nucleus"))
    for metric in ("grid_nucleus", "area_nucleus", "energy_cell", "pointing_nucleus"):
        if (s["metric"] == metric).any():
            _show(metric, interval_table(s, metric))
    _show("Segmented minus raw (energy on the nucleus, paired)", rep.input_comparison())
    if len(rep.faithfulness):
        _show(f"Faithfulness ({', '.join(detail)})", rep.faithfulness_summary())
    _show("Randomization check", rep.sanity_summary())
    _show("Calibration (test split)", rep.calibration_view())
    _show("Table A3 layout (this test split)", rep.probability_table())
    _show("Table A3 averages beside the paper", rep.paper_a3_averages())
    measured = targets(rep, name)
    print("\ntargets:", measured)
    results = {"status": "complete", "runs": note, "detail_models": detail,
               "overrides": {**_overrides(args), "models": _keys(args)},
               "n_test_images": len(rep.test_ids), "targets": measured, **rep.numbers()}
    if args.finer_layer:
        results["finer_layer"] = finer(name, ds, runs, args)
    if name == "synthetic":
        results["shortcut"] = shortcut(args)
    results["seconds"] = time.time() - t0
    command = shlex.join(["python", "benchmarks/explain_report.py", *sys.argv[1:]])
    tag = f"_{args.tag}" if args.tag else ""
    path = reference.write(f"explain_{name}_{args.profile}{tag}", results, command,
                           args.profile, folder=args.results)
    print(f"wrote {path}", flush=True)
    if name != "synthetic" and not (args.tag or args.models or _overrides(args)):
        # the part chapter 6 shows, as package data (a reduced run never replaces it)
        from leukolib.explain.committed import shipped

        path = reference.write(f"explain_{name}_{args.profile}", shipped(results), command,
                               args.profile, folder=args.reference)
        print(f"wrote {path}", flush=True)
    return {"dataset": name, "status": "complete", "targets": measured}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--runs", type=Path, default=ROOT / "runs", help="folder of the grids")
    ap.add_argument("--out", type=Path, required=True, help="cache of each model's results")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the datasets' folder")
    ap.add_argument("--datasets", default="synthetic,all_idb2,jtsc")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    ap.add_argument("--train", action="store_true", help="train or resume missing runs")
    ap.add_argument("--models", default="", help="comma-separated keys (default: all eight)")
    ap.add_argument("--epochs", type=int, help="override the profile's epochs (with --train)")
    ap.add_argument("--folds", type=int, help="override the profile's folds (with --train)")
    ap.add_argument("--tag", default="", help="suffix of the results' name (reduced runs)")
    ap.add_argument("--finer-layer", default="layer2",
                    help="also the nucleus share of this stage's maps ('' to skip)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results",
                    help="folder of the results JSON")
    ap.add_argument("--reference", type=Path, default=ROOT / "leukolib" / "reference",
                    help="folder of the results the book shows (real datasets, full runs)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    done = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        if name not in FOLDERS:
            done.append({"dataset": name, "status": "not run", "why": "unknown dataset"})
            continue
        try:
            done.append(report_dataset(name, args))
        except Exception as exc:  # noqa: BLE001 - report it and go on with the next dataset
            done.append({"dataset": name, "status": "failed", "why": f"{type(exc).__name__}: "
                                                                      f"{exc}"})
    print("\n## What ran")
    for d in done:
        print(f"- {d['dataset']}: {d['status']}" + (f" ({d['why']})" if "why" in d else ""))
    return 0 if all(d["status"] == "complete" for d in done) else 1


if __name__ == "__main__":
    sys.exit(main())
