"""The U-Net at one square against the U-Net at the nucleus scale, in and out of its domain.

Usage::

    python benchmarks/bench_scale.py --train bloodseg --shared ../shared/data \\
        --runs runs/bench_scale --folds 2 --epochs 4 [--eval jtsc,all_idb2,bloodseg]

Two k-fold U-Nets are trained on the ``--train`` dataset with the same seed,
folds, epochs and patch side (the profile's ``image_size``), one per scale
mode (:mod:`leukolib.segmentation.scale`): ``square`` (every image resized to
one square, the paper's protocol and leukolib's before) and ``diameter``
(resampled to the nucleus scale, patches, tiles). Each is evaluated on every
``--eval`` dataset, out-of-fold on its own and with the average of its folds
elsewhere: HM (no training), DEEP, the library's ensemble (its rule recorded
per mode as ``ensemble``, since the default changes with the reports) and the
ensemble with the fallback to HM at several agreements alone, the entropy off
(candidates, not a choice: the segmentation report chooses). Printed: mean IoU per pair and
method, the share of images that fall back, images per second of the
ensemble, and the training time. The numbers go to
``benchmarks/results/scale_<train>_<profile>.json`` with the command, date and
commit. A short protocol (``--folds 2 --epochs 4``) compares the two modes on
equal terms; it is not the book's protocol, whose numbers come from
``benchmarks/segmentation_report.py``. A mode may add ``+gray-world``
(the colour constancy before the network) and ``+stainS`` (HED stain jitter of
half-width S in the training augmentation,
:class:`~leukolib.segmentation.augment.RandStainJitterd`), e.g.
``--modes diameter+stain0.05,diameter+stain0.2``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"jtsc": "segmentation_WBC", "all_idb2": "ALL_IDB2", "bloodseg": "BloodSeg"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default="bloodseg", choices=list(FOLDERS))
    ap.add_argument("--eval", default="jtsc,all_idb2,bloodseg")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--modes", default="square,diameter",
                    help="scale modes, each optionally with '+gray-world' (colour constancy "
                    "first) and '+stainS' (HED stain jitter of half-width S in training)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import pandas as pd

    from leukolib import reference
    from leukolib.data import load_dataset
    from leukolib.reference import source_commit
    from leukolib.segmentation.ensemble import EnsembleParams, fuse
    from leukolib.segmentation.evaluate import evaluate_segmentation, standard_methods
    from leukolib.segmentation.report import fallback_rates
    from leukolib.segmentation.training import train_unet
    from leukolib.segmentation.unet import load_unet_run

    progress = not args.quiet
    fallbacks = (0.3, 0.5, 0.7)
    data = {n: load_dataset(n, args.shared / FOLDERS[n])
            for n in dict.fromkeys([args.train, *args.eval.split(",")])}
    rows, rates, info = [], [], {}
    for mode in args.modes.split(","):
        scale, *extras = mode.split("+")
        colour = "gray-world" if "gray-world" in extras else "rgb"
        stain = next((float(e[len("stain"):]) for e in extras if e.startswith("stain")), None)
        unknown = [e for e in extras if e != "gray-world" and not e.startswith("stain")]
        if unknown:
            ap.error(f"unknown mode options {unknown} in {mode!r}")
        run_dir = args.runs / f"unet_{args.train}_{args.profile}_{mode}_f{args.folds}e{args.epochs}"
        t0 = time.perf_counter()
        rec = train_unet(data[args.train], run_dir, profile=args.profile, seed=args.seed,
                         folds=args.folds, epochs=args.epochs, scale=scale,
                         colour=colour, stain_sigma=stain, progress=progress)
        run = load_unet_run(run_dir, device="cpu")
        info[mode] = {"scale": rec["config"]["scale"],
                      "train_seconds": float(sum(f["train_seconds"] for f in rec["folds"])),
                      "call_seconds": time.perf_counter() - t0,
                      "median_nucleus_diameter": rec["dataset"].get("median_nucleus_diameter"),
                      "oof_iou": rec["oof"]["summary"]["iou"]["mean"], "pairs": {},
                      "ensemble": EnsembleParams().label()}
        for name in args.eval.split(","):
            base = EnsembleParams()
            guarded = {f: EnsembleParams(fallback_iou=f, fallback_entropy=0.0) for f in fallbacks}
            extra = {f"ENSEMBLE fallback {f:g}": (lambda hm, p, _q=q: fuse(hm, p, _q))
                     for f, q in guarded.items()}
            predictor = run.predictor_for(data[name])
            ev = evaluate_segmentation(data[name], standard_methods(predictor, base, extra=extra),
                                       trained_on=args.train, progress=progress)
            means = ev.per_image.groupby("method", sort=False)["iou"].mean()
            for method, iou in means.items():
                rows.append({"mode": mode, "pair": f"{args.train} -> {name}", "method": method,
                             "iou": float(iou)})
            r = fallback_rates(ev, {f"{f:g}": EnsembleParams(fallback_iou=f, fallback_entropy=0.0)
                                    for f in fallbacks})
            for _, rr in r.iterrows():
                rates.append({"mode": mode, "pair": f"{args.train} -> {name}",
                              **{f"falls back < {k}": float(rr[k]) for k in r.columns if k != "n"}})
            i = ev.info[name]
            info[mode]["pairs"][name] = {
                "images_per_s": i["images_per_s"], "n_images": i["n_images"],
                "predictor": predictor.mode, "scale_sources": i.get("scale_sources"),
                "n_failures": i["n_failures"]}
    table = pd.DataFrame(rows).pivot_table(index=["pair", "method"], columns="mode",
                                           values="iou", sort=False)
    print(table.round(4).to_string())
    print(pd.DataFrame(rates).round(3).to_string(index=False))
    for mode, i in info.items():
        speeds = ", ".join(f"{n} {p['images_per_s']:.1f}" for n, p in i["pairs"].items())
        print(f"{mode}: training {i['train_seconds']:.0f} s; images/s (HM + U-Net): {speeds}")
    cmd = "python benchmarks/bench_scale.py " + shlex.join(
        a if not a.startswith("/") else Path(a).name for a in (argv or sys.argv[1:]))
    for i in info.values():
        i["ran_at"] = {"commit": source_commit(), "command": cmd}
    results = {"train": args.train, "folds": args.folds, "epochs": args.epochs,
               "seed": args.seed, "iou": rows, "fallback_rates": rates, "runs": info}
    previous = args.out / f"scale_{args.train}_{args.profile}.json"
    if previous.is_file():  # runs of other modes from an earlier call stay in the file
        shipped = json.loads(previous.read_text())
        old, was = shipped["results"], shipped["provenance"]
        if (old["folds"], old["epochs"], old["seed"]) == (args.folds, args.epochs, args.seed):
            modes = set(info)
            # each mode keeps the commit and command it ran at (the provenance is this call's)
            for run in old["runs"].values():
                run.setdefault("ran_at", {"commit": was["commit"], "command": was["command"]})
            results["iou"] = [r for r in old["iou"] if r["mode"] not in modes] + rows
            results["fallback_rates"] = [r for r in old["fallback_rates"]
                                         if r["mode"] not in modes] + rates
            results["runs"] = {**{k: v for k, v in old["runs"].items() if k not in modes}, **info}
    path = reference.write(f"scale_{args.train}_{args.profile}", results, cmd, args.profile,
                           folder=args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
