"""``leukolib segment`` and ``leukolib evaluate``: segmentation from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from leukolib.cli.common import (
    UsageError,
    check_new_outputs,
    collect_inputs,
    positive_int,
    reason,
    report_failures,
    write_png,
)

__all__ = ["add_parsers", "cmd_evaluate", "cmd_segment"]

#: Suffixes of the files ``segment`` writes.
MASK_SUFFIX = "_mask.png"
OVERLAY_SUFFIX = "_overlay.png"


def _methods_help() -> str:
    from leukolib.segmentation import SEGMENTERS

    return "; ".join(f"{s.name}: {s.description}" for s in SEGMENTERS.values())


def add_method_args(p: argparse.ArgumentParser) -> None:
    """``--method``, ``--model``, ``--fusion``, ``--gate``, ``--diameter`` and ``--tta``."""
    from leukolib.segmentation import SEGMENTERS
    from leukolib.segmentation.tta import TTA, VIEW_SETS

    p.add_argument("--method", "-m", default="handcrafted", choices=list(SEGMENTERS),
                   help=f"segmentation method (default: handcrafted). {_methods_help()}")
    p.add_argument("--model", metavar="RUN_DIR",
                   help="U-Net run directory from 'leukolib train-unet' (unet and ensemble)")
    p.add_argument("--fusion", choices=["and", "or", "soft"],
                   help="change the ensemble's fusion rule (the default rule is printed)")
    p.add_argument("--gate", type=float, metavar="BITS",
                   help="the ensemble's set gate: keep the handcrafted masks of every input when "
                   "the U-Net's median entropy on them (up to 32, evenly spaced) is above BITS; "
                   "0: never (default: the library's, printed with the rule)")
    p.add_argument("--diameter", type=float, metavar="PX",
                   help="nucleus diameter of the images in pixels (unet and ensemble with a run "
                   "trained at the nucleus scale); default: estimated per image from its "
                   "handcrafted mask, else the run's training median. What was used is printed")
    p.add_argument("--tta", choices=list(VIEW_SETS),
                   help="test-time augmentation of the U-Net (unet and ensemble): 'flips' also "
                   "segments each patch in its three mirror images and averages the four "
                   f"(4x the network's time); default: the library's ({TTA!r})")


def add_parsers(sub) -> None:
    """Add ``segment`` and ``evaluate`` to the sub-command parser."""
    seg = sub.add_parser(
        "segment", help="segment the nucleus of image files or folders",
        description="Segment the nucleus of each image and write STEM_mask.png (0/255) and "
        "STEM_overlay.png (nucleus contour in cyan) into --out. Folders are scanned for "
        "image files (.bmp .png .jpg .jpeg .tif .tiff), sorted. Unreadable images are "
        "skipped and listed at the end (exit status 1).",
        epilog="Names: with --recursive the sub-folders of an input folder are mirrored "
        "under --out. Two inputs that would write the same output name (same stem) are "
        "refused with exit status 2 before anything is written; rename one or run them "
        "separately. Files that look like this command's own outputs (*_mask.png, "
        "*_overlay.png) inside --out are not taken as inputs.")
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    seg.add_argument("--out", "-o", required=True, type=Path, metavar="DIR",
                     help="output folder (created if missing)")
    add_method_args(seg)
    seg.add_argument("--recursive", "-r", action="store_true",
                     help="also scan the sub-folders of input folders")
    seg.add_argument("--overwrite", action="store_true",
                     help="replace existing output files (refused otherwise)")
    seg.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    seg.set_defaults(func=cmd_segment)

    ev = sub.add_parser(
        "evaluate", help="score a method on a dataset with ground truth",
        description="Run a method on every image of a dataset and print the paper's six "
        "metrics (Acc, Pre, Rec, Spec, DSC, IoU: mean and std over images) and images/s. "
        "Images that cannot be read or segmented are listed and skipped (exit status 1); "
        "masks with a few stray values between their levels are repaired and counted.")
    ev.add_argument("--dataset", "-d", required=True, metavar="NAME",
                    help="dataset name (see 'leukolib datasets')")
    ev.add_argument("--root", type=Path, metavar="DIR",
                    help="dataset folder (not needed for 'synthetic')")
    add_method_args(ev)
    ev.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    ev.add_argument("--limit", type=positive_int, metavar="N", help="only the first N images")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    ev.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)


def _options(args: argparse.Namespace) -> dict:
    out: dict = {}
    if args.fusion is not None:
        if args.method != "ensemble":
            raise UsageError(f"--fusion is for --method ensemble, not {args.method!r}")
        out["fusion"] = args.fusion
    if getattr(args, "gate", None) is not None:
        if args.method != "ensemble":
            raise UsageError(f"--gate is for --method ensemble, not {args.method!r}")
        if not 0.0 <= args.gate < 1.0:
            raise UsageError(f"--gate must be in [0, 1) bit, got {args.gate:g}")
        out["gate_entropy"] = args.gate
    if getattr(args, "diameter", None) is not None:
        if args.method not in ("unet", "ensemble"):
            raise UsageError(f"--diameter is for --method unet or ensemble, not {args.method!r}")
        if not args.diameter > 0:
            raise UsageError(f"--diameter must be a positive number of pixels, "
                             f"got {args.diameter:g}")
        out["diameter"] = args.diameter
    if getattr(args, "tta", None) is not None:
        if args.method not in ("unet", "ensemble"):
            raise UsageError(f"--tta is for --method unet or ensemble, not {args.method!r}")
        out["tta"] = args.tta
    return out


def _set_scale(segment, sources: list[Path]) -> str | None:
    """A run at the nucleus scale segments the inputs at one scale: estimate it once.

    Without ``--diameter``, the median nucleus diameter of the handcrafted
    masks of up to 32 of the inputs (evenly spaced; unreadable ones skipped,
    they are reported with the rest) becomes the scale of every input.
    """
    from leukolib.data.io import read_image
    from leukolib.segmentation.scale import DIAMETER_SOURCES, estimate_diameter

    deep = getattr(segment, "deep", segment)
    run = getattr(deep, "run", None)
    if run is None or run.scale.mode != "diameter" or getattr(deep, "diameter", None):
        return None

    class _Files:  # reads only the images the estimate picks
        def __len__(self) -> int:
            return len(sources)

        def __getitem__(self, i: int):
            try:
                return read_image(sources[i])
            except Exception:  # noqa: BLE001 - reported when segmented
                return np.zeros((8, 8, 3), np.uint8)

    d, n = estimate_diameter(_Files())
    if d is None:
        return "scale: no nucleus in the inputs' handcrafted masks; each image on its own"
    deep.diameter, deep.diameter_source = d, DIAMETER_SOURCES[1]
    return (f"scale: nucleus diameter {d:.1f} px, the median of the handcrafted masks of {n} "
            f"input(s) (--diameter PX to give it)")


def _set_gate(segment, sources: list[Path]) -> str | None:
    """An ensemble with a set gate decides once whether the inputs are out of its U-Net's domain.

    The U-Net's entropy on up to 32 of the inputs (evenly spaced; unreadable
    ones skipped, they are reported with the rest) decides
    (:meth:`~leukolib.segmentation.ensemble.EnsembleSegmenter.calibrate`).
    """
    from leukolib.data.io import read_image
    from leukolib.data.sample import Sample

    params = getattr(segment, "params", None)
    if not hasattr(segment, "calibrate") or not getattr(params, "gate_entropy", 0.0):
        return None

    class _Samples:  # reads only the images the gate picks
        def __len__(self) -> int:
            return len(sources)

        def __getitem__(self, i: int) -> Sample:
            return Sample(read_image(sources[i]), None, None, None, sources[i].stem, sources[i])

    out = segment.calibrate(_Samples())
    if segment.set_entropy is None:
        return "set gate: no input could be read to measure the U-Net's entropy"
    verdict = ("out of its domain: the handcrafted mask of every input is kept" if out else
               "in its domain: the ensemble fuses")
    return (f"set gate: the U-Net's median entropy on the inputs is {segment.set_entropy:.3f} "
            f"bit (gate {params.gate_entropy:g} bit), {verdict}")


def scale_line(segment) -> str | None:
    """What the U-Net's scale came from, and how often the ensemble fell back, in words."""
    deep = getattr(segment, "deep", segment)
    run = getattr(deep, "run", None)
    sources = getattr(deep, "scale_sources", None)
    if run is None or not sources:
        return None
    used = ", ".join(f"{n} image(s) by {src}" for src, n in sources.items())
    line = f"scale: {run.scale.label()}; nucleus diameter: {used}"
    if getattr(run, "tta", "none") != "none":
        from leukolib.segmentation.tta import tta_label

        line += f"; the U-Net sees {tta_label(run.tta)}"
    params = getattr(segment, "params", None)
    if params is not None and params.fallback_label():
        line += (f"; handcrafted mask kept alone on {segment.fallbacks} image(s) "
                 f"({params.fallback_label().removeprefix(', handcrafted alone where ')})")
    return line


def cmd_segment(args: argparse.Namespace) -> int:
    """``leukolib segment``: masks and overlays of image files."""
    from tqdm.auto import tqdm

    from leukolib.data.io import read_image
    from leukolib.data.sample import Sample
    from leukolib.errors import LeukolibError
    from leukolib.plotting import draw_contour
    from leukolib.segmentation import get_method

    out: Path = args.out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    try:
        segment = get_method(args.method, model=args.model, **_options(args))
    except LeukolibError as exc:
        raise UsageError(str(exc)) from None
    if hasattr(segment, "params") and args.method == "ensemble":
        print(f"ensemble: {segment.params.label()}", file=sys.stderr)
    jobs, failures = collect_inputs(args.inputs, out, args.recursive,
                                    (MASK_SUFFIX, OVERLAY_SUFFIX))
    if not jobs:
        for path, why in failures:
            print(f"leukolib: {path}: {why}", file=sys.stderr)
        raise UsageError("no image files found in the inputs")
    plan = [(src, out / f"{base}{MASK_SUFFIX}", out / f"{base}{OVERLAY_SUFFIX}")
            for src, base in jobs]
    targets: dict[Path, list[Path]] = {}
    for src, mask, overlay in plan:
        targets.setdefault(mask, []).append(src)
        targets.setdefault(overlay, []).append(src)
    check_new_outputs(targets, args.overwrite)
    for note in (_set_scale(segment, [src for src, _, _ in plan]),
                 _set_gate(segment, [src for src, _, _ in plan])):
        if note:
            print(note, file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    for src, mask_path, overlay_path in tqdm(plan, desc="segment", unit="img",
                                             disable=args.quiet, file=sys.stderr):
        try:
            image = read_image(src)
            mask = np.asarray(segment(Sample(image, None, None, None, src.stem, src)), bool)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"the method returned a {mask.shape} mask for a "
                                 f"{image.shape[:2]} image")
            overlay = draw_contour(image, mask)
        except Exception as exc:  # noqa: BLE001 - report and go on
            failures.append((str(src), reason(exc, src)))
            continue
        try:
            write_png(mask_path, mask.astype(np.uint8) * 255)
            write_png(overlay_path, overlay)
        except Exception as exc:  # noqa: BLE001 - no half-written pair is left behind
            for t in (mask_path, overlay_path):
                t.unlink(missing_ok=True)
            failures.append((str(src), reason(exc, src)))
            continue
        done += 1
    line = scale_line(segment)
    if line:
        print(line, file=sys.stderr)
    return report_failures(failures, done, f"segmented into {out}:")


def format_summary(summary, dataset: str, method: str, n: int, n_failed: int) -> str:
    """The text table printed by ``evaluate``."""
    from leukolib.metrics import SEGMENTATION_METRICS

    head = f"{dataset} / {method}: {n} image(s)" + (f", {n_failed} failed" if n_failed else "")
    lines = [head, f"{'':6s}" + "".join(f"{m:>9s}" for m in SEGMENTATION_METRICS)]
    for stat, suffix in (("mean", ""), ("std", "_std")):
        lines.append(f"{stat:6s}" + "".join(f"{summary[m + suffix]:9.4f}"
                                            for m in SEGMENTATION_METRICS))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``leukolib evaluate``: the six metrics of a method on a dataset."""
    from leukolib.data import load_dataset
    from leukolib.errors import DataError, LeukolibError
    from leukolib.metrics import SEGMENTATION_METRICS
    from leukolib.segmentation import evaluate_segmentation, methods_for

    json_path: Path | None = args.json.expanduser() if args.json else None
    if json_path is not None:
        if json_path.is_dir():
            raise UsageError(f"--json {json_path}: is a folder")
        if json_path.exists() and not args.overwrite:
            raise UsageError(f"--json {json_path}: already exists; use --overwrite to replace it")
    try:
        dataset = load_dataset(args.dataset, args.root)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    if not dataset.has_masks:
        raise UsageError(f"dataset {args.dataset!r} at {args.root} has no nucleus masks: "
                         "nothing to evaluate")
    try:
        methods = methods_for(args.method, args.model, dataset, **_options(args))
    except LeukolibError as exc:
        raise UsageError(str(exc)) from None
    info = methods.info
    if info.get("mode"):
        print(f"{args.method}: {info['mode']} ({info.get('reason', '')})")
    if info.get("ensemble"):
        print(f"ensemble: {info['ensemble']}")
    if info.get("tta"):
        from leukolib.segmentation.tta import tta_label

        how = "--tta" if getattr(args, "tta", None) else "the library's default; --tta to change"
        print(f"U-Net views: {tta_label(info['tta'])} ({how})")
    ev = evaluate_segmentation(dataset, methods, limit=args.limit, progress=not args.quiet)
    for _, sid, why in ev.failures:
        print(f"  {sid}: {why}", file=sys.stderr)
    if ev.failures:
        print(f"{len(ev.failures)} sample(s) failed (listed above)", file=sys.stderr)
    if not ev.n_images:
        print("leukolib: no image could be evaluated", file=sys.stderr)
        return 1
    name = methods.names[0]
    summary = ev.summary().xs(name, level="method").iloc[0]
    d = ev.info[dataset.name]
    print(format_summary(summary, dataset.name, name, ev.n_images, len(ev.failures)))
    print(f"images/s: {d['images_per_s']:.1f} (method only), {d['images_per_s_with_io']:.1f} "
          "(with reading image and ground truth)")
    if d.get("scale_sources"):
        print("nucleus diameter: " + ", ".join(f"{n} image(s) by {src}"
                                               for src, n in d["scale_sources"].items()))
    if d["mask_repaired_images"]:
        print(f"masks repaired: {d['mask_repaired_pixels']} stray pixel(s) in "
              f"{d['mask_repaired_images']} mask(s) mapped to the nearest level")
    if json_path is not None:
        per = ev.per_image[["id", *SEGMENTATION_METRICS, "mask_repaired"]]
        record = {"dataset": dataset.name, "method": args.method, "label": name,
                  "n_images": ev.n_images,
                  **{k: float(summary[k]) for m in SEGMENTATION_METRICS for k in (m, m + "_std")},
                  "images_per_s": d["images_per_s"],
                  "images_per_s_with_io": d["images_per_s_with_io"],
                  "n_failures": len(ev.failures),
                  "failures": [{"id": i, "reason": r} for _, i, r in ev.failures],
                  "mask_repaired_images": d["mask_repaired_images"],
                  "mask_repaired_pixels": d["mask_repaired_pixels"],
                  "per_image": per.to_dict(orient="records")}
        if info.get("mode"):
            record.update(model=str(args.model), model_mode=info["mode"], tta=info.get("tta"))
        if info.get("ensemble"):
            record.update(fusion=info["fusion"], ensemble=info["ensemble"])
            if info.get("fold_rules"):  # each fold's rule, and the validation scores it won on
                record["fold_rules"] = info["fold_rules"]
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return 1 if ev.failures else 0
