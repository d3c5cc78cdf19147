"""U-Nets given more capacity or more epochs, against an incumbent, on the same folds.

Usage::

    # the runs, one per dataset and variant, trained one after the other on one machine
    python benchmarks/bench_unet.py --epochs 8 --dataset jtsc \\
        --root ../shared/data/segmentation_WBC --profile cpu --out runs/epochs8/jtsc --quiet
    python benchmarks/bench_unet.py --res-units 2 --epochs 8 --dataset jtsc \\
        --root ../shared/data/segmentation_WBC --profile cpu --out runs/deeper/jtsc --quiet
    python benchmarks/bench_unet.py --dataset jtsc --root ../shared/data/segmentation_WBC \\
        --profile cpu --out runs/budget/jtsc --quiet
    python benchmarks/unet_variants.py --shared ../shared/data \\
        --runs epochs8=runs/epochs8 budget=runs/budget deeper=runs/deeper

Each variant is a folder of k-fold runs, one per dataset (``DIR/<dataset>``),
trained with the profile's folds and seed; the first is the incumbent, which
every other is compared with (above: the ``cpu`` profile's 8 epochs before its
budget rule set each dataset's epochs, :class:`leukolib.profiles.SegmentationProfile`).
A run's folds must be those of the shipped report's run of its dataset
(checked: they depend on the seed and the images only), so every image is
scored out of fold by every variant, the comparisons are paired image by
image, and the split audit of ``segmentation.json`` covers these runs too:

* DEEP: the run's own out-of-fold record (threshold 0.5);
* ENSEMBLE: the library's ensemble with its shipped defaults, fold rules
  included (what ``leukolib evaluate --method ensemble --model RUN`` does).
  The defaults were chosen by the segmentation report on the shipped runs,
  which favours the variant like them a little.

Printed and written (``leukolib/reference/unet_variants_<profile>.json``, read
by chapter 4): mean IoU per dataset and variant, each variant's paired
difference from the incumbent (bootstrap interval, Wilcoxon p, Holm-adjusted
over the table), whether a longer run began with the incumbent's very epochs
(then its kept model was chosen among the incumbent's epochs and the ones
after), the choice the rule of :mod:`leukolib.selection` makes on the
ensemble's means among the variants run on every dataset (and
leave-one-dataset-out), and the training time. The ``cpu`` profile's limit on
training time is the shipped report's record of the runs before the nucleus
scale (``segmentation.json``, ``before_scale``). A variant's time is carried
to the shipped record of runs like the incumbent (same epochs: the report's
runs, or ``before_budget``) by its ratio to the incumbent's run of the same
dataset on this machine: within the limit when
``ratio <= limit / recorded time``. Both records are seconds on the machines
that made them, so the limit is only as exact as those machines are alike.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"jtsc": "segmentation_WBC", "all_idb2": "ALL_IDB2", "bloodseg": "BloodSeg"}


def _variant(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=FOLDER")
    return name, Path(folder)


def _no_root(arg: str) -> str:
    """An argument without this machine's folders (``NAME=/a/b`` -> ``NAME=b``)."""
    head, sep, tail = arg.rpartition("=")
    return head + sep + (Path(tail).name if tail.startswith("/") else tail)


def _shipped_like(shipped: dict, name: str, epochs: int) -> tuple[str, float] | None:
    """The shipped record of the runs like the incumbent's (same epochs), and its seconds.

    The report's current runs (``unet_runs``), else those before the budget rule set the
    epochs (``before_budget``); the current ones when they do not record their epochs (a
    report before epochs were recorded); ``None`` when no record has the incumbent's length.
    """
    for where in ("unet_runs", "before_budget"):
        rec = (shipped if where == "unet_runs" else shipped.get(where) or {}).get(
            "unet_runs", {}).get(name)
        if rec and rec.get("epochs") == epochs:
            return where, float(rec["total_seconds"])
    rec = shipped["unet_runs"][name]
    return ("unet_runs", float(rec["total_seconds"])) if "epochs" not in rec else None


def _continues(base: list[list[float]], longer: list[list[float]]) -> bool:
    """Whether every fold of ``longer`` began with the very epochs of ``base`` (validation IoU).

    On the CPU, a run of the same network, seed and folds trained for more epochs
    repeats the shorter run epoch for epoch before going on (the learning-rate
    schedule does not depend on the number of epochs), so its best validation
    epoch is chosen among the shorter run's and the ones after.
    """
    return len(base) == len(longer) and all(
        len(b) <= len(x) and all(abs(u - w) <= 1e-6 for u, w in zip(b, x, strict=False))
        for b, x in zip(base, longer, strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, required=True, help="folder of the datasets")
    ap.add_argument("--runs", type=_variant, nargs="+", required=True, metavar="NAME=FOLDER",
                    help="the variants' run folders, the incumbent first")
    ap.add_argument("--datasets", default="jtsc,all_idb2,bloodseg")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--out", type=Path, default=ROOT / "leukolib" / "reference",
                    help="folder of the JSON (default: the shipped results, which chapter 4 reads)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing JSON")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)

    import pandas as pd

    from leukolib import reference
    from leukolib.data import load_dataset
    from leukolib.profiles import get_profile
    from leukolib.segmentation import evaluate_segmentation, methods_for
    from leukolib.segmentation.ensemble import ENSEMBLE
    from leukolib.segmentation.unet import NUM_RES_UNITS
    from leukolib.selection import choose, leave_one_out
    from leukolib.stats import holm_paired, paired_comparison

    target = args.out / f"unet_variants_{args.profile}.json"
    if target.exists() and not args.overwrite:
        print(f"{target} exists; --overwrite to replace it", file=sys.stderr)
        return 2
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    variants = [v for v, _ in args.runs]
    if len(set(variants)) != len(variants) or len(variants) < 2:
        print("--runs: two or more variants with distinct names", file=sys.stderr)
        return 2
    shipped = reference.load("segmentation")["results"]
    scores: dict[tuple[str, str], dict[str, pd.Series]] = {}
    runs: dict[str, dict[str, dict]] = {v: {} for v in variants}
    histories: dict[tuple[str, str], list[list[float]]] = {}
    for name in names:
        ds = None
        for variant, folder in args.runs:
            rd = folder / name
            if not (rd / "run.json").is_file():
                continue
            rec = json.loads((rd / "run.json").read_text())
            if rec.get("status") != "complete":
                print(f"{rd}: the run is not complete ({rec.get('status')})", file=sys.stderr)
                return 1
            folds = [sorted(map(str, f["test_ids"])) for f in rec["folds"]]
            if folds != [sorted(map(str, f)) for f in shipped["unet_runs"][name]["fold_test_ids"]]:
                print(f"{rd}: its folds are not those of segmentation.json's {name} run",
                      file=sys.stderr)
                return 1
            ds = ds or load_dataset(name, args.shared / FOLDERS[name])
            deep = pd.DataFrame(rec["oof"]["per_image"]).set_index("id")["iou"]
            ev = evaluate_segmentation(ds, methods_for("ensemble", rd, ds),
                                       progress=not args.quiet)
            if ev.failures:
                print(f"{name}: {len(ev.failures)} image(s) failed: {ev.failures}",
                      file=sys.stderr)
            p = ev.per_image
            ens = p[p["method"] == ENSEMBLE].set_index("id")["iou"]
            scores[(variant, name)] = {"DEEP": deep, "ENSEMBLE": ens}
            cfg, t = rec["config"], rec["timings"]
            histories[(variant, name)] = [[h["val_iou"] for h in f["history"]]
                                          for f in rec["folds"]]
            runs[variant][name] = {
                "num_res_units": cfg["network"]["num_res_units"], "epochs": cfg["epochs"],
                "folds": cfg["folds"], "total_seconds": t["total_seconds"],
                "mean_epoch_seconds": t["mean_epoch_seconds"],
                "deep_iou": float(deep.mean()), "ensemble_iou": float(ens.mean()),
                "failed_images": len(ev.failures)}
    empty = [v for v in variants if not runs[v]]
    if empty:
        print(f"no run of {', '.join(names)} in the folder of {', '.join(empty)}",
              file=sys.stderr)
        return 1
    base = variants[0]
    missing = [n for n in names if n not in runs[base]]
    if missing:
        print(f"{base} (the incumbent) has no run of {', '.join(missing)}", file=sys.stderr)
        return 1

    rows, times = [], []
    for v in variants[1:]:
        for name in runs[v]:
            for method in ("DEEP", "ENSEMBLE"):
                x, y = scores[(v, name)][method], scores[(base, name)][method]
                ids = x.index.intersection(y.index)
                c = paired_comparison(x[ids].to_numpy(), y[ids].to_numpy(), names=(v, base))
                rows.append({"variant": v, "dataset": name, "method": method, **c})
            ratio = runs[v][name]["total_seconds"] / runs[base][name]["total_seconds"]
            like = _shipped_like(shipped, name, runs[base][name]["epochs"])
            if like is None:
                print(f"{name}: no shipped record of runs of {base}'s "
                      f"{runs[base][name]['epochs']} epochs to carry its time to",
                      file=sys.stderr)
                return 1
            where, recorded = like
            limit = shipped["before_scale"]["unet_runs"][name]["total_seconds"]
            times.append({"variant": v, "dataset": name, "ratio": ratio,
                          "shipped_record": where, "shipped_seconds": recorded,
                          "carried_seconds": recorded * ratio, "limit_seconds": limit,
                          "within_limit": bool(recorded * ratio <= limit)})
    paired = holm_paired(pd.DataFrame(rows), [(r["variant"], base) for r in rows])
    for v in variants[1:]:  # a longer run of the same network replays the shorter one first
        for name in runs[v]:
            if runs[v][name]["epochs"] > runs[base][name]["epochs"]:
                runs[v][name]["continues_incumbent"] = _continues(histories[(base, name)],
                                                                  histories[(v, name)])

    table = pd.DataFrame({f"{m} {v}": {n: runs[v][n][f"{m.lower()}_iou"] for n in runs[v]}
                          for m in ("DEEP", "ENSEMBLE") for v in variants}).reindex(names)
    print("\nout-of-fold mean IoU\n", table.round(4).to_string())
    print("\npaired, each variant minus", base, "\n",
          paired[["variant", "dataset", "method", "mean_diff", "ci_low", "ci_high",
                  "wilcoxon_p_holm", "verdict"]].round(4).to_string(index=False))
    print("\ntraining time\n", pd.DataFrame(times).round(2).to_string(index=False))

    complete = [v for v in variants if all(n in runs[v] for n in names)]
    sp = get_profile(args.profile).segmentation
    library = next((v for v in complete if all(
        runs[v][n]["num_res_units"] == NUM_RES_UNITS and runs[v][n]["epochs"] == sp.epochs_for(n)
        for n in names)), None)  # the variant the profile trains, if one is
    choice = None
    if len(complete) > 1:
        means = pd.DataFrame({n: {v: runs[v][n]["ensemble_iou"] for v in complete}
                              for n in names}).loc[complete]
        c, lodo = choose(means, base), leave_one_out(means, base)
        choice = {"candidates": complete, "chosen": c.chosen, "reason": c.reason,
                  "table": c.table.rename_axis("candidate").reset_index()
                  .to_dict(orient="records"),
                  "leave_one_out": lodo.to_dict(orient="records")}
        print("\nthe selection rule on the ensemble's means:", c.reason)
    partial = [v for v in variants if v not in complete]
    if partial:
        print(f"not run on every dataset, so not a candidate of the rule: {', '.join(partial)}")

    cmd = "python benchmarks/unet_variants.py " + shlex.join(
        _no_root(x) for x in (argv or sys.argv[1:]))
    results = {
        "datasets": names, "variants": variants, "incumbent": base, "library": library,
        "runs": runs,
        "iou": table.reset_index(names="dataset").to_dict(orient="records"),
        "paired": json.loads(paired.to_json(orient="records")),
        "choice": choice, "not_candidates": partial,
        "training_time": times,
        "ensemble_defaults": "the library's, chosen by the report on its shipped runs",
    }
    path = reference.write(f"unet_variants_{args.profile}", results, cmd, args.profile,
                           folder=args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
