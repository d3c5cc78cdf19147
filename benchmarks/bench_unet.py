"""Train (or resume) the k-fold U-Net on a dataset and print its out-of-fold numbers and speed.

Usage::

    python benchmarks/bench_unet.py --dataset jtsc --root ../shared/data/segmentation_WBC \
        --profile cpu --out runs/unet_jtsc_cpu_seed0

The run directory is resumable: run the same command again after an
interruption, or to print the table of a finished run without training. The
table gives the out-of-fold metrics (mean ± std over images), the time per
epoch (wall and CPU of this process, less sensitive to other jobs) and the
paper's DEEP row where it has one (its own Leukemia Dataset only).
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="jtsc", help="leukolib dataset name")
    ap.add_argument("--root", default=None, help="dataset folder (not for synthetic)")
    ap.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--out", required=True, help="run directory (created; resumed if present)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="override the profile's epochs")
    ap.add_argument("--folds", type=int, default=None, help="override the profile's folds")
    ap.add_argument("--res-units", type=int, default=None,
                    help="MONAI num_res_units of the network (default: the library's)")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)

    from leukolib import paper
    from leukolib.data import profile_dataset
    from leukolib.segmentation.training import train_unet

    ds = profile_dataset(args.dataset, args.root, args.profile, args.seed)
    rec = train_unet(ds, args.out, profile=args.profile, seed=args.seed, device=args.device,
                     progress=not args.quiet, epochs=args.epochs, folds=args.folds,
                     res_units=args.res_units,
                     data_root=args.root)
    s, t, c = rec["oof"]["summary"], rec["timings"], rec["config"]
    print(f"\n{ds.name}: {len(ds)} images, {c['folds']} folds x {c['epochs']} epochs at "
          f"{c['image_size']} px, hyper-parameters {c['hparams_source']}, num_res_units "
          f"{c['network']['num_res_units']}")
    for m in ("iou", "dsc", "pre", "rec"):
        print(f"  {m:4s} {s[m]['mean']:.4f} ± {s[m]['std']:.4f}")
    print(f"  {t['total_seconds'] / 60:.1f} min in all; per epoch {t['mean_epoch_seconds']:.1f} s "
          f"wall, {t['mean_epoch_cpu_seconds']:.1f} s CPU (this process)")
    theirs = paper.reported(dataset=ds.name, method="DEEP", metric="iou")
    if len(theirs):
        print(f"  paper DEEP IoU {theirs['value'].iloc[0]:.3f} (Table {theirs['table'].iloc[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
