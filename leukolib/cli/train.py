"""``leukolib train-unet`` and ``leukolib datasets``."""

from __future__ import annotations

import argparse

from leukolib.cli.common import (
    UsageError,
    add_device_argument,
    add_training_arguments,
    positive_int,
)

__all__ = ["add_parsers", "cmd_datasets", "cmd_train_unet"]

_DATASET_HELP = {
    "synthetic": "generated blood smears with FAB L1/L2/L3 blasts (no root needed)",
    "jtsc": "JTSC, Zheng et al. 2018 'Dataset 1': 300 crops 120x120, nucleus masks, 5 WBC types",
    "cellavision": "CellaVision, Zheng et al. 2018 'Dataset 2': 100 crops 300x300, nucleus masks",
    "all_idb2": "ALL-IDB2: 260 single-cell crops, blast or normal, masks in ROOT/masks",
    "bloodseg": "SMC_IDB / BloodSeg: 367 fields 640x480, images/ and masks/ (nucleus masks)",
    "leukemia_fab": "the paper's FAB set: ALL1/ALL2/ALL3 folders, no masks",
    "paired": "your segmentation data: ROOT/images/STEM.ext and ROOT/masks/STEM.ext",
    "imagefolder": "your classification data: one sub-folder per class, no masks",
}


def add_parsers(sub) -> None:
    """Add ``train-unet`` and ``datasets``."""
    tr = sub.add_parser(
        "train-unet", help="train the U-Net by k-fold cross-validation",
        description="Train the MONAI U-Net (Unified Focal Loss, on-the-fly augmentation) by "
        "k-fold cross-validation on a dataset with nucleus masks, under a profile (which also "
        "caps the number of images: 12 under smoke, all under cpu and paper). Folds are made "
        "by group: duplicate images always share a fold. Writes one weights file per fold and "
        "run.json (config, folds, per-epoch curves, out-of-fold metrics) into --out. Run the "
        "same command again to resume an interrupted run.")
    add_training_arguments(tr, "sizes (default cpu)")
    tr.add_argument("--seed", type=int, default=0, help="seed of folds, weights, augmentation")
    tr.add_argument("--epochs", type=positive_int, help="override the profile's epochs")
    tr.add_argument("--folds", type=positive_int, help="override the profile's folds")
    tr.add_argument("--scale", choices=["diameter", "square"],
                    help="how images reach the network: 'diameter' resamples each so that its "
                    "nucleus has the run's target size and trains on patches (smoke, cpu); "
                    "'square' resizes every image to one square, the paper's protocol (paper)")
    add_device_argument(tr)
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a run of another configuration in --out")
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train_unet)

    ds = sub.add_parser("datasets", help="list the dataset names",
                        description="List the dataset names the commands accept.")
    ds.set_defaults(func=cmd_datasets)


def cmd_train_unet(args: argparse.Namespace) -> int:
    """``leukolib train-unet``: a k-fold U-Net run."""
    from leukolib.data import profile_dataset
    from leukolib.errors import DataError, LeukolibError
    from leukolib.segmentation.training import train_unet

    try:
        dataset = profile_dataset(args.dataset, args.root, args.profile, args.seed)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if not dataset.has_masks:
        raise UsageError(f"dataset {args.dataset!r} has no nucleus masks: nothing to train on")
    try:
        record = train_unet(dataset, args.out.expanduser(), profile=args.profile, seed=args.seed,
                            device=args.device, progress=not args.quiet,
                            overwrite=args.overwrite, epochs=args.epochs, folds=args.folds,
                            data_root=args.root, scale=args.scale)
    except LeukolibError as exc:
        raise UsageError(str(exc)) from None
    s = record["oof"]["summary"]
    print(f"{dataset.name}: {len(record['folds'])} folds, out-of-fold IoU "
          f"{s['iou']['mean']:.4f} ± {s['iou']['std']:.4f}, DSC {s['dsc']['mean']:.4f}; "
          f"run in {args.out}")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """``leukolib datasets``: one line per dataset name."""
    from leukolib.data import DATASETS

    width = max(len(n) for n in DATASETS)
    for name, loader in DATASETS.items():
        doc = _DATASET_HELP.get(name) or (loader.__doc__ or "").strip().split("\n")[0]
        print(f"{name:{width}s}  {doc}")
    return 0
