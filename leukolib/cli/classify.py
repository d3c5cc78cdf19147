"""``leukolib train-classifier``, ``leukolib merge-runs`` and ``leukolib classify``."""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

from leukolib.cli.common import (
    UsageError,
    add_device_argument,
    add_training_arguments,
    check_new_outputs,
    collect_inputs,
    positive_int,
    reason,
    report_failures,
)

__all__ = ["add_parsers", "cmd_classify", "cmd_merge_runs", "cmd_train_classifier"]


def _margin(text: str) -> float | str | None:
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 4:
        raise argparse.ArgumentTypeError(f"the crop margin must be in [0, 4], got {value}")
    return value


def add_parsers(sub) -> None:
    """Add ``train-classifier`` and ``classify``."""
    tr = sub.add_parser(
        "train-classifier", help="train a ResNet-50 classifier (or all eight) by k-fold",
        description="Train one of the paper's eight ResNet-50 classifiers (Table 1: segmented "
        "or raw input, ReLU or Mish, Linear or Medium head) by its protocol: a stratified, "
        "grouped 10 %% test split, k-fold on the rest, each fold selected on its validation "
        "fold, the paper's augmentation. Writes the fold weights, run.json and logits.npz "
        "into --out; run the same command again to resume. --grid trains all eight into "
        "--out/<key>. --fold K trains one fold, so that jobs on several machines share the "
        "units (model x fold), each into its own --out; 'leukolib merge-runs' merges them.")
    add_training_arguments(tr, "sizes and protocol (default cpu)")
    tr.add_argument("--input", choices=["segmented", "raw"], help="default segmented")
    tr.add_argument("--head", choices=["linear", "medium"], help="default linear")
    tr.add_argument("--act", choices=["relu", "mish"], help="default relu")
    tr.add_argument("--grid", action="store_true", help="train all eight models into --out/KEY")
    tr.add_argument("--segmenter", default="profile",
                    choices=["profile", "handcrafted", "ensemble", "unet", "oracle"],
                    help="nucleus masks of segmented inputs (default: the profile's, handcrafted "
                    "in smoke and cpu, the ensemble in paper, whose U-Net is trained on the "
                    "training-validation part only unless --seg-model is given; oracle: the "
                    "dataset's ground truth)")
    tr.add_argument("--seg-model", metavar="RUN_DIR",
                    help="U-Net run of --segmenter ensemble/unet; refused if it trained on a "
                    "test image")
    tr.add_argument("--crop", type=_margin, default="auto", metavar="MARGIN|auto|none",
                    help="crop a square around the nucleus with this margin; auto (default): "
                    "a fixed window for datasets of whole smear fields (synthetic, bloodseg), "
                    "none for cell crops (jtsc, all_idb2, ...); for your own folder the median "
                    "nucleus diameter of 32 images decides: a field when the nucleus would span "
                    "3/8 of a window under 90%% of the image side, then cropped to that window "
                    "(printed)")
    tr.add_argument("--crop-min", type=float, default=0.0, metavar="FRACTION",
                    help="smallest side of the crop, a fraction of the image's shorter side "
                    "(a fixed window keeps the nucleus's scale)")
    tr.add_argument("--color", default="rgb", choices=["rgb", "gray"],
                    help="gray: the colour-neutralised ablation")
    tr.add_argument("--weights", default="profile", metavar="imagenet|none|FILE",
                    help="backbone weights (default: the profile's rule: required under paper, "
                    "tried under cpu, none under smoke)")
    tr.add_argument("--seed", type=int, default=0, help="seed of split, weights, augmentation")
    tr.add_argument("--epochs", type=positive_int, help="override the profile's epochs")
    tr.add_argument("--folds", type=positive_int, help="override the profile's folds")
    tr.add_argument("--fold", type=int, metavar="K",
                    help="train only fold K (0-based; of all eight with --grid): one unit for "
                    "one machine or job; the run stays partial until its other folds are "
                    "trained into --out, or trained into other folders (one per job: never two "
                    "jobs into one folder) and merged by 'leukolib merge-runs'")
    add_device_argument(tr)
    tr.add_argument("--overwrite", action="store_true",
                    help="replace a run of another configuration in --out")
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train_classifier)

    mg = sub.add_parser(
        "merge-runs", help="merge classifier runs trained fold by fold (--fold) into one",
        description="Merge the parts of one classifier run, each written by 'leukolib "
        "train-classifier --fold K' into a folder of its own (one per machine or job), into "
        "--out: the parts must share the configuration, the images, the labels and the "
        "split, and hold every fold once. --out is then what one call training every fold "
        "would have written (the same metrics, the same logits.npz). With --grid, each PART "
        "is a --grid folder and every model found in them is merged into --out/KEY.")
    mg.add_argument("parts", nargs="+", type=Path, metavar="PART", help="run folders to merge")
    mg.add_argument("--out", "-o", required=True, type=Path, metavar="RUN_DIR",
                    help="the merged run (new or empty; not one of the parts)")
    mg.add_argument("--grid", action="store_true", help="the parts are --grid folders")
    mg.add_argument("--overwrite", action="store_true", help="replace a run in --out")
    mg.set_defaults(func=cmd_merge_runs)

    cl = sub.add_parser(
        "classify", help="classify image files with a trained classifier run",
        description="Classify each image with a run from 'leukolib train-classifier' (the "
        "average of its folds' logits). A segmented model segments each image first, with "
        "the run's own segmenter. Writes one CSV row per image: the file, the predicted "
        "class and each class's probability. Unreadable images are skipped and listed at "
        "the end (exit status 1).")
    cl.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    cl.add_argument("--model", "-m", required=True, type=Path, metavar="RUN_DIR",
                    help="a classifier run directory")
    cl.add_argument("--out", "-o", required=True, type=Path, metavar="CSV",
                    help="predictions file (refused if it exists, unless --overwrite)")
    cl.add_argument("--fold", metavar="K|best",
                    help="only fold K's model, or the best fold's (by validation accuracy): one "
                    "forward pass per image instead of one per fold (default: the average of "
                    "all folds, the model the run's test accuracy is of)")
    cl.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                    help="images per forward pass (default 16)")
    cl.add_argument("--recursive", "-r", action="store_true", help="scan sub-folders too")
    add_device_argument(cl)
    cl.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    cl.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    cl.set_defaults(func=cmd_classify)


def _weights(text: str):
    return None if text.lower() in ("none", "random") else text


def cmd_train_classifier(args: argparse.Namespace) -> int:
    """``leukolib train-classifier``: one classifier run, or the grid of eight."""
    from leukolib.classification import train_classifier, train_grid
    from leukolib.classification.grid import resolve_segmenter
    from leukolib.data import profile_dataset
    from leukolib.errors import DataError, LeukolibError

    if args.grid and (args.input or args.head or args.act):
        raise UsageError("--grid trains all eight models: leave out --input, --head and --act")
    if args.seg_model and args.segmenter not in ("ensemble", "unet", "profile"):
        raise UsageError("--seg-model is for --segmenter ensemble or unet")
    try:
        dataset = profile_dataset(args.dataset, args.root, args.profile, args.seed,
                                  stage="classification")
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if dataset.labels is None:
        raise UsageError(f"dataset {args.dataset!r} has no class labels: nothing to train on")
    out = args.out.expanduser()
    try:
        segmenter = resolve_segmenter(dataset, out, args.profile, args.seed, args.segmenter,
                                      args.seg_model, device=args.device,
                                      progress=not args.quiet)
    except (LeukolibError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    common = dict(profile=args.profile, seed=args.seed, segmenter=segmenter,
                  crop=args.crop, crop_min=args.crop_min,
                  color=args.color,
                  weights=_weights(args.weights), device=args.device, progress=not args.quiet,
                  overwrite=args.overwrite, epochs=args.epochs, folds=args.folds,
                  fold=args.fold)
    try:
        if args.grid:
            records = train_grid(dataset, out, **common)
        else:
            key = f"{args.input or 'segmented'}-{args.act or 'relu'}-{args.head or 'linear'}"
            records = {key: train_classifier(
                dataset, out, input=args.input or "segmented", head=args.head or "linear",
                act=args.act or "relu", data_root=args.root, **common)}
    except (LeukolibError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    _print_records(records, out, args.grid)
    return 0


def cmd_merge_runs(args: argparse.Namespace) -> int:
    """``leukolib merge-runs``: one classifier run (or grid) from parts trained fold by fold."""
    from leukolib.classification import merge_classifier_runs, merge_grid_runs
    from leukolib.errors import LeukolibError

    out = args.out.expanduser()
    try:
        if args.grid:
            records = merge_grid_runs(args.parts, out, overwrite=args.overwrite)
        else:
            record = merge_classifier_runs(args.parts, out, overwrite=args.overwrite)
            records = {record["config"]["key"]: record}
    except LeukolibError as exc:
        raise UsageError(str(exc)) from None
    _print_records(records, out, args.grid)
    return 0


def _print_records(records: dict, out: Path, grid: bool) -> None:
    """One line per run: its test accuracy, or the folds a partial run holds."""
    for key, r in records.items():
        if r["status"] != "complete":
            done = ", ".join(str(k) for k in sorted(f["fold"] for f in r["folds"]))
            print(f"{key}: fold(s) {done} of {r['config']['folds']} trained (partial: train the "
                  "others with --fold, or merge the folders with 'leukolib merge-runs')")
            continue
        s = r["summary"]
        print(f"{key}: test accuracy {s['test_acc']:.3f} [{s['test_acc_ci'][0]:.3f}, "
              f"{s['test_acc_ci'][1]:.3f}], validation {s['val_acc_mean']:.3f} ± "
              f"{s['val_acc_std']:.3f} ({r['config']['weights']} weights)")
    print(f"run{'s' if grid else ''} in {out}")


def _read(paths: list[Path], failures: list[tuple[str, str]]):
    from leukolib.data.io import read_image

    ok = []
    for p in paths:
        try:
            ok.append((p, read_image(p)))
        except Exception as exc:  # noqa: BLE001 - report and go on
            failures.append((str(p), reason(exc, p)))
    return ok


def _predict(run, items, fold, failures):
    """Probabilities of a batch; on failure, image by image so one bad file fails alone."""
    import torch

    def probs(images):
        logits = run.predict_images(images, folds=fold)
        return torch.softmax(torch.from_numpy(logits), 1).numpy()

    try:
        return list(zip([p for p, _ in items], probs([im for _, im in items]), strict=True))
    except Exception:  # noqa: BLE001 - find the culprit
        out = []
        for p, im in items:
            try:
                out.append((p, probs([im])[0]))
            except Exception as exc:  # noqa: BLE001
                failures.append((str(p), reason(exc, p)))
        return out


def _fold(text: str | None, run) -> int | None:
    if text is None:
        return None
    if text == "best":
        return run.best_fold
    try:
        k = int(text)
    except ValueError:
        raise UsageError(f"--fold {text!r}: give a fold number or 'best'") from None
    if not 0 <= k < run.n_folds:
        raise UsageError(f"--fold {k}: the run has folds 0 to {run.n_folds - 1}")
    return k


def cmd_classify(args: argparse.Namespace) -> int:
    """``leukolib classify``: a CSV of predictions for image files."""
    from tqdm.auto import tqdm

    from leukolib.classification import load_classifier_run
    from leukolib.errors import LeukolibError

    out: Path = args.out.expanduser()
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give a CSV file name")
    try:
        run = load_classifier_run(args.model, device=args.device)
    except LeukolibError as exc:
        raise UsageError(str(exc)) from None
    if (run.config.get("segmenter") or {}).get("name") == "oracle":
        raise UsageError(f"{args.model}: this run was trained on ground-truth masks (oracle), "
                         "which new images do not have")
    fold = _fold(args.fold, run)
    jobs, failures = collect_inputs(args.inputs, out.parent, args.recursive)
    jobs = [(p, b) for p, b in jobs if p.resolve() != out.resolve()]
    if not jobs:
        for path, why in failures:
            print(f"leukolib: {path}: {why}", file=sys.stderr)
        raise UsageError("no image files found in the inputs")
    check_new_outputs({out: [jobs[0][0]]}, args.overwrite)  # one file for all the inputs
    names = list(run.class_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    done = 0
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "prediction", *(f"p_{n}" for n in names)])
        bar = tqdm(total=len(jobs), desc=f"classify ({run.key})", unit="img",
                   disable=args.quiet, file=sys.stderr)
        for start in range(0, len(jobs), args.batch_size):
            chunk = [p for p, _ in jobs[start : start + args.batch_size]]
            for path, p in _predict(run, _read(chunk, failures), fold, failures):
                writer.writerow([str(path), names[int(np.argmax(p))],
                                 *(f"{v:.6f}" for v in p)])
                done += 1
            bar.update(len(chunk))
        bar.close()
    os.replace(tmp, out)
    which = "fold average" if fold is None else f"fold {fold}"
    print(f"{run.key} ({which}): predictions in {out}", file=sys.stderr)
    return report_failures(failures, done, "classified")
