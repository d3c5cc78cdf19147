"""Train (or resume) the k-fold U-Net on a dataset and print its out-of-fold numbers.

Usage::

    python benchmarks/bench_unet.py --dataset jtsc --root ../shared/data/segmentation_WBC \
        --profile cpu --out /tmp/unet_runs/jtsc_cpu

The run directory is resumable: run the same command again after an
interruption, or to print the table of a finished run without training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def paper_numbers(dataset: str) -> str:
    """The paper's nucleus IoU for ``dataset``, as far as leukolib.paper has it."""
    from leukolib import paper

    rows = paper.reported(dataset=dataset)
    rows = rows[rows["metric"] == "iou"]
    deep = rows[rows["method"] == "DEEP"]
    if len(deep):
        return f"DEEP IoU {deep['value'].iloc[0]:.3f}"
    parts = ["DEEP: not recovered (Tables 2-3 missing)"]
    for _, r in rows.iterrows():
        parts.append(f"{r['method']} IoU {r['value']:.3f} (table {r['table']})")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, train or resume, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="jtsc", help="leukolib dataset name")
    ap.add_argument("--root", default=None, help="dataset folder (not for synthetic)")
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--out", required=True, help="run directory (created; resumed if present)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override profile.seg_epochs")
    ap.add_argument("--folds", type=int, default=None, help="override profile.seg_folds")
    ap.add_argument("--image-size", type=int, default=None, help="override seg_image_size")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    ap.add_argument("--overwrite", action="store_true", help="replace a different run in --out")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--json", action="store_true", help="also print the table as JSON")
    args = ap.parse_args(argv)

    from leukolib.notebook import profile_dataset
    from leukolib.profiles import get_profile
    from leukolib.segmentation.training import train_unet
    from leukolib.segmentation.unet import read_record

    prof = get_profile(args.profile)
    ds = profile_dataset(args.dataset, args.root, prof, args.seed)
    before = read_record(args.out) if os.path.isdir(args.out) else None
    state = "fresh run" if before is None else f"found a {before.get('status')} run"
    t0 = time.perf_counter()
    rec = train_unet(
        ds,
        args.out,
        profile=prof,
        seed=args.seed,
        device=args.device,
        progress=not args.quiet,
        overwrite=args.overwrite,
        epochs=args.epochs,
        folds=args.folds,
        data_root=args.root,
        image_size=args.image_size,
    )
    wall = time.perf_counter() - t0
    cfg, s, t = rec["config"], rec["oof"]["summary"], rec["timings"]
    table = {
        "dataset": rec["dataset"]["name"],
        "images": rec["dataset"]["n_images"],
        "profile": cfg["profile"],
        "folds": cfg["folds"],
        "epochs": cfg["epochs"],
        "image size": cfg["image_size"],
        "OOF IoU": f"{s['iou']['mean']:.4f} ± {s['iou']['std']:.4f}",
        "OOF DSC": f"{s['dsc']['mean']:.4f} ± {s['dsc']['std']:.4f}",
        "OOF Pre / Rec": f"{s['pre']['mean']:.4f} / {s['rec']['mean']:.4f}",
        "wall time total": f"{t['total_seconds'] / 60:.1f} min ({t['total_seconds']:.0f} s)",
        "mean epoch time": f"{t['mean_epoch_seconds']:.1f} s wall"
        + (f", {cpu:.1f} s CPU" if (cpu := t.get("mean_epoch_cpu_seconds")) else ""),
        "this call": f"{wall:.0f} s ({state})",
        "device": rec.get("device", "?"),
        "hparams": f"{cfg['hparams']} ({cfg['hparams_source']})",
        "paper": paper_numbers(rec["dataset"]["name"]),
        "run dir": args.out,
    }
    width = max(len(k) for k in table)
    print()
    for k, v in table.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        print(json.dumps(table, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
