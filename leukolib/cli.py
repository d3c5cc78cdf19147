"""The ``leukolib`` command line.

Commands
--------
``leukolib segment INPUT... --out DIR``
    Segment the nucleus of image files (or of every image in folders) and
    write ``<stem>_mask.png`` (0/255) and ``<stem>_overlay.png`` (the nucleus
    contour in cyan over the image) for each.
``leukolib evaluate --dataset NAME --root DIR``
    Run a method over a dataset with ground truth: the six metrics (mean and
    std), images/s, and optionally a JSON record.
``leukolib train-unet --dataset NAME --root DIR --out RUN_DIR``
    Train the U-Net by k-fold cross-validation under a profile (resumable);
    the run directory is then the ``--model`` of ``--method unet|ensemble``.
``leukolib datasets``
    The dataset names ``evaluate`` understands.

Exit status: 0 on success, 1 when some images failed (the others were still
processed; the failures are listed at the end), 2 for a usage error (bad
arguments, unknown dataset or method, outputs that exist without
``--overwrite``), in which case nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main"]

#: Suffixes of the files ``segment`` writes.
MASK_SUFFIX = "_mask.png"
OVERLAY_SUFFIX = "_overlay.png"

_DATASET_HELP = {
    "synthetic": "generated blood smears with FAB L1/L2/L3 blasts (no root needed)",
    "jtsc": "JTSC, Zheng et al. 2018 'Dataset 1': 300 crops 120x120, nucleus masks",
    "cellavision": "CellaVision, Zheng et al. 2018 'Dataset 2': 100 crops 300x300, nucleus masks",
    "all_idb2": "ALL-IDB2: 260 single-cell crops, blast or normal, masks in ROOT/masks",
    "bloodseg": "SMC_IDB / BloodSeg: images/ and masks/ (nucleus masks)",
    "leukemia_fab": "the paper's FAB set: ALL1/ALL2/ALL3 folders, no masks",
    "paired": "your segmentation data: ROOT/images/STEM.ext and ROOT/masks/STEM.ext",
    "imagefolder": "your classification data: one sub-folder per class, no masks",
}


class UsageError(Exception):
    """A problem with the command line or its targets: message, exit status 2."""


def _version() -> str:
    from leukolib import __version__

    return __version__


def _methods_help() -> str:
    from leukolib.segmentation import SEGMENTERS

    return "; ".join(f"{s.name}: {s.description}" for s in SEGMENTERS.values())


def _method_names() -> list[str]:
    from leukolib.segmentation import SEGMENTERS

    return list(SEGMENTERS)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``leukolib`` command."""
    parser = argparse.ArgumentParser(
        prog="leukolib",
        description="Explainable ALL CAD (Diaz Resendiz et al., Cancers 2023): "
        "white-blood-cell nucleus segmentation and its evaluation.",
        epilog="Exit status: 0 ok, 1 some images failed, 2 usage error (nothing written).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    seg = sub.add_parser(
        "segment",
        help="segment the nucleus of image files or folders",
        description="Segment the nucleus of each image and write STEM_mask.png (0/255) and "
        "STEM_overlay.png (nucleus contour in cyan) into --out. Folders are scanned for "
        "image files (.bmp .png .jpg .jpeg .tif .tiff), sorted. Unreadable images are "
        "skipped and listed at the end (exit status 1).",
        epilog="Names: with --recursive the sub-folders of an input folder are mirrored "
        "under --out. Two inputs that would write the same output name (same stem) are "
        "refused with exit status 2 before anything is written; rename one or run them "
        "separately. Files that look like this command's own outputs (*_mask.png, "
        "*_overlay.png) inside --out are not taken as inputs.",
    )
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    seg.add_argument(
        "--out",
        "-o",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder (created if missing)",
    )
    _add_method_args(seg)
    seg.add_argument(
        "--recursive", "-r", action="store_true", help="also scan the sub-folders of input folders"
    )
    seg.add_argument(
        "--overwrite", action="store_true", help="replace existing output files (refused otherwise)"
    )
    seg.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    seg.set_defaults(func=cmd_segment)

    ev = sub.add_parser(
        "evaluate",
        help="score a method on a dataset with ground truth",
        description="Run a method on every image of a dataset and print the paper's six "
        "metrics (Acc, Pre, Rec, Spec, DSC, IoU: mean and std over images) and images/s, "
        "without and with the reading of the samples (image and ground truth).",
    )
    ev.add_argument(
        "--dataset",
        "-d",
        required=True,
        metavar="NAME",
        help="dataset name (see 'leukolib datasets')",
    )
    ev.add_argument(
        "--root", type=Path, metavar="DIR", help="dataset folder (not needed for 'synthetic')"
    )
    _add_method_args(ev)
    ev.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    ev.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N images")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    ev.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)

    tr = sub.add_parser(
        "train-unet",
        help="train the U-Net by k-fold cross-validation",
        description="Train the MONAI U-Net (Unified Focal Loss, on-the-fly augmentation) by "
        "k-fold cross-validation on a dataset with nucleus masks, under a profile (which also "
        "caps the number of images: 12 under smoke, all under cpu and paper). Writes one "
        "weights file per fold and run.json (config, folds, per-epoch curves, out-of-fold "
        "metrics) into --out. Run the same command again to resume an interrupted run.",
    )
    tr.add_argument("--dataset", "-d", required=True, metavar="NAME", help="dataset name")
    tr.add_argument("--root", type=Path, metavar="DIR", help="dataset folder")
    tr.add_argument("--out", "-o", required=True, type=Path, metavar="RUN_DIR", help="run folder")
    tr.add_argument(
        "--profile", default="cpu", choices=["smoke", "cpu", "paper"], help="sizes (default cpu)"
    )
    tr.add_argument("--seed", type=int, default=0, help="seed of folds, weights, augmentation")
    tr.add_argument("--epochs", type=_positive_int, help="override the profile's epochs")
    tr.add_argument("--folds", type=_positive_int, help="override the profile's folds")
    tr.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when present")
    tr.add_argument(
        "--overwrite", action="store_true", help="replace a run of another configuration in --out"
    )
    tr.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train_unet)

    ds = sub.add_parser(
        "datasets",
        help="list the dataset names",
        description="List the dataset names 'evaluate --dataset' accepts.",
    )
    ds.set_defaults(func=cmd_datasets)
    return parser


def _add_method_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--method",
        "-m",
        default="handcrafted",
        choices=_method_names(),
        help=f"segmentation method (default: handcrafted). {_methods_help()}",
    )
    p.add_argument(
        "--model",
        metavar="RUN_DIR",
        help="U-Net run directory from 'leukolib train-unet' (methods unet and ensemble)",
    )
    p.add_argument(
        "--fusion",
        choices=["and", "or", "soft"],
        help="how 'ensemble' combines the masks: soft (default, measured best), and (the "
        "paper's; safer for a U-Net from another dataset) or or",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# ----------------------------------------------------------------------------- segment


def _is_own_output(path: Path, out: Path) -> bool:
    name = path.name
    return (name.endswith(MASK_SUFFIX) or name.endswith(OVERLAY_SUFFIX)) and _inside(path, out)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def collect_inputs(
    inputs: Sequence[str | Path], out: Path, recursive: bool = False
) -> tuple[list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Expand files and folders into ``(image path, output base)`` pairs.

    Parameters
    ----------
    inputs : sequence of str or Path
        Files (taken whatever their suffix) and folders (their image files,
        sorted; sub-folders too with ``recursive``).
    out : Path
        The output folder; its own outputs are not taken as inputs.
    recursive : bool
        Scan sub-folders, mirroring them in the output names.

    Returns
    -------
    jobs : list of (Path, Path)
        Image path and output base (relative, without suffix) per image, in
        order, each image once.
    missing : list of (str, str)
        Inputs that do not exist, with the reason.
    """
    from leukolib.data.io import is_image_file

    jobs: list[tuple[Path, Path]] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path, base: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            jobs.append((path, base))

    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir():
            found = p.rglob("*") if recursive else p.iterdir()
            files = sorted(f for f in found if f.is_file() and is_image_file(f))
            for f in files:
                if not _is_own_output(f, out):
                    add(f, f.relative_to(p).with_suffix(""))
        elif p.exists():
            add(p, Path(p.stem))
        else:
            missing.append((str(p), "no such file or folder"))
    return jobs, missing


def _targets(out: Path, base: Path) -> tuple[Path, Path]:
    return out / f"{base}{MASK_SUFFIX}", out / f"{base}{OVERLAY_SUFFIX}"


def _plan(
    jobs: list[tuple[Path, Path]], out: Path, overwrite: bool
) -> list[tuple[Path, Path, Path]]:
    """Check every output name before anything is written (raises UsageError)."""
    by_target: dict[str, list[Path]] = {}
    plan = []
    for src, base in jobs:
        mask, overlay = _targets(out, base)
        # Case-folded, so that Cell.png and cell.bmp clash on any file system.
        by_target.setdefault(str(mask).casefold(), []).append(src)
        plan.append((src, mask, overlay))
    clashes = {t: srcs for t, srcs in by_target.items() if len(srcs) > 1}
    if clashes:
        lines = [f"  {Path(t).name}: " + ", ".join(map(str, srcs)) for t, srcs in clashes.items()]
        raise UsageError(
            f"{len(clashes)} output name(s) would be written by several inputs with the same "
            "stem; rename them or run them separately (nothing was written):\n"
            + "\n".join(lines[:20])
            + ("\n  ..." if len(lines) > 20 else "")
        )
    if not overwrite:
        existing = [t for _, m, o in plan for t in (m, o) if t.exists()]
        if existing:
            shown = "\n".join(f"  {t}" for t in existing[:20])
            more = f"\n  ... and {len(existing) - 20} more" if len(existing) > 20 else ""
            raise UsageError(
                f"{len(existing)} output file(s) already exist; use --overwrite to replace "
                f"them (nothing was written):\n{shown}{more}"
            )
    return plan


def _write_png(path: Path, rgb_or_gray: np.ndarray) -> None:
    import cv2

    a = rgb_or_gray
    if a.ndim == 3:  # OpenCV writes BGR
        a = cv2.cvtColor(a, cv2.COLOR_RGB2BGR)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), a):
        raise OSError(f"{path}: cannot write the file")


def cmd_segment(args: argparse.Namespace) -> int:
    """``leukolib segment``: see the module docstring."""
    from tqdm.auto import tqdm

    from leukolib.data.io import read_image
    from leukolib.data.sample import Sample
    from leukolib.plotting import draw_contour

    out: Path = args.out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    segment = _get_method(args)
    jobs, failures = collect_inputs(args.inputs, out, args.recursive)
    if not jobs:
        for path, reason in failures:
            print(f"leukolib: {path}: {reason}", file=sys.stderr)
        raise UsageError("no image files found in the inputs")
    plan = _plan(jobs, out, args.overwrite)
    out.mkdir(parents=True, exist_ok=True)

    done = 0
    for src, mask_path, overlay_path in tqdm(
        plan, desc="segment", unit="img", disable=args.quiet, file=sys.stderr
    ):
        try:
            image = read_image(src)
            mask = np.asarray(segment(Sample(image, None, None, None, src.stem, src)), bool)
            if mask.shape != image.shape[:2]:
                raise ValueError(
                    f"the method returned a {mask.shape} mask for a {image.shape[:2]} image"
                )
            overlay = draw_contour(image, mask)
        except Exception as exc:  # noqa: BLE001 - report and go on
            failures.append((str(src), _reason(exc, src)))
            continue
        try:
            _write_png(mask_path, mask.astype(np.uint8) * 255)
            _write_png(overlay_path, overlay)
        except Exception as exc:  # noqa: BLE001 - no half-written pair is left behind
            for t in (mask_path, overlay_path):
                t.unlink(missing_ok=True)
            failures.append((str(src), _reason(exc, src)))
            continue
        done += 1

    print(f"segmented {done} image(s) into {out}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} input(s) failed:", file=sys.stderr)
        for path, reason in failures:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0


def _reason(exc: BaseException, src: Path | None = None) -> str:
    text = str(exc).strip() or type(exc).__name__
    if src is not None and text.startswith(f"{src}: "):
        text = text[len(str(src)) + 2 :]  # the path is printed already
    return text


def _get_method(args: argparse.Namespace, dataset=None):
    from leukolib.errors import LeukolibError
    from leukolib.segmentation import SEGMENTERS, get_method

    options = {}
    if args.fusion is not None:
        if args.method != "ensemble":
            raise UsageError(f"--fusion is for --method ensemble, not {args.method!r}")
        options["fusion"] = args.fusion
    if dataset is not None and SEGMENTERS[args.method].needs_model:
        options["dataset"] = dataset  # out-of-fold models on the run's own training set
    try:
        return get_method(args.method, model=args.model, **options)
    except LeukolibError as exc:  # unknown method, missing or unreadable run directory
        raise UsageError(str(exc)) from None


# ----------------------------------------------------------------------------- evaluate


def format_summary(result, dataset: str, method: str) -> str:
    """The text table printed by ``evaluate``."""
    from leukolib.metrics import SEGMENTATION_METRICS

    head = f"{dataset} / {method}: {result.n_images} image(s)"
    if result.failures:
        head += f", {len(result.failures)} failed"
    lines = [head, f"{'':6s}" + "".join(f"{m:>9s}" for m in SEGMENTATION_METRICS)]
    for stat in ("mean", "std"):
        lines.append(
            f"{stat:6s}" + "".join(f"{result.summary[m][stat]:9.4f}" for m in SEGMENTATION_METRICS)
        )
    lines.append(
        f"images/s: {result.images_per_s:.1f} (method only), "
        f"{result.images_per_s_with_io:.1f} (with reading image and ground truth)"
    )
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``leukolib evaluate``: see the module docstring."""
    from leukolib.data import load_dataset
    from leukolib.errors import DataError
    from leukolib.segmentation import evaluate_dataset

    json_path: Path | None = args.json.expanduser() if args.json else None
    if json_path is not None:
        if json_path.exists() and not args.overwrite:
            raise UsageError(f"--json {json_path}: already exists; use --overwrite to replace it")
        if json_path.is_dir():
            raise UsageError(f"--json {json_path}: is a folder")
    try:
        dataset = load_dataset(args.dataset, args.root)
        if not dataset.has_masks:
            raise UsageError(
                f"dataset {args.dataset!r} at {args.root} has no nucleus masks: nothing to evaluate"
            )
    except DataError as exc:
        raise UsageError(str(exc)) from None
    segment = _get_method(args, dataset)
    mode = getattr(segment, "mode", None)
    if mode is not None:
        reason = getattr(segment, "reason", "")
        print(f"{args.method}: {mode}" + (f" ({reason})" if reason else ""))
    result = evaluate_dataset(dataset, segment, limit=args.limit, progress=not args.quiet)
    if result.failures:
        print(f"{len(result.failures)} sample(s) failed:", file=sys.stderr)
        for sid, reason in result.failures:
            print(f"  {sid}: {reason}", file=sys.stderr)
    if not result.n_images:
        print("leukolib: no image could be evaluated", file=sys.stderr)
        return 1
    print(format_summary(result, dataset.name, args.method))
    if json_path is not None:
        record = result.to_json_dict(dataset.name, args.method)
        if mode is not None:
            record["model"] = str(args.model)
            record["model_mode"] = mode  # "out-of-fold" or "fold-average"
        if args.fusion is not None or args.method == "ensemble":
            record["fusion"] = segment.params.fusion
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return 1 if result.failures else 0


# ----------------------------------------------------------------------------- train-unet


def cmd_train_unet(args: argparse.Namespace) -> int:
    """``leukolib train-unet``: see the module docstring."""
    from leukolib.errors import DataError, LeukolibError
    from leukolib.notebook import profile_dataset

    try:
        dataset = profile_dataset(args.dataset, args.root, args.profile, args.seed)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if not dataset.has_masks:
        raise UsageError(f"dataset {args.dataset!r} has no nucleus masks: nothing to train on")
    from leukolib.segmentation.training import train_unet

    try:
        record = train_unet(
            dataset,
            args.out.expanduser(),
            profile=args.profile,
            seed=args.seed,
            device=args.device,
            progress=not args.quiet,
            overwrite=args.overwrite,
            epochs=args.epochs,
            folds=args.folds,
            data_root=args.root,
        )
    except LeukolibError as exc:
        raise UsageError(str(exc)) from None
    s = record["oof"]["summary"]
    print(
        f"{dataset.name}: {len(record['folds'])} folds, out-of-fold IoU "
        f"{s['iou']['mean']:.4f} ± {s['iou']['std']:.4f}, DSC {s['dsc']['mean']:.4f}; "
        f"run in {args.out}"
    )
    return 0


# ----------------------------------------------------------------------------- datasets


def cmd_datasets(args: argparse.Namespace) -> int:
    """``leukolib datasets``: one line per dataset name."""
    from leukolib.data import DATASETS

    width = max(len(n) for n in DATASETS)
    for name, loader in DATASETS.items():
        doc = _DATASET_HELP.get(name) or (loader.__doc__ or "").strip().split("\n")[0]
        print(f"{name:{width}s}  {doc}")
    return 0


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``leukolib`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status (0 ok, 1 some inputs failed, 2 usage error).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors: a status, not an exit
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"leukolib {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("leukolib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
