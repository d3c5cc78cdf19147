"""``leukolib explain``: class activation maps of image files, one page and one CSV row each."""

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
    check_new_outputs,
    collect_inputs,
    positive_int,
    reason,
    report_failures,
    write_png,
)

__all__ = ["PAGE_SUFFIX", "SCORES", "add_parsers", "cmd_explain"]

#: Suffix of the page written for each image, and the name of the scores file.
PAGE_SUFFIX = "_explain.png"
SCORES = "explanations.csv"


def add_parsers(sub) -> None:
    """Add ``explain``."""
    from leukolib.explain.cams import METHODS

    ex = sub.add_parser(
        "explain", help="class activation maps of image files with a trained classifier",
        description="Explain each image's prediction by a classifier run from 'leukolib "
        "train-classifier' (the model of its best fold, or --fold) with Grad-CAM, Grad-CAM++, "
        "HiResCAM and/or XGrad-CAM on the last block of layer4. Writes STEM_explain.png (the "
        "network's input with the nucleus outlined, the class probabilities, the maps and "
        f"each map's share on the nucleus) and one row per image in {SCORES}. The nucleus "
        "comes from the run's own segmenter (the handcrafted one for a raw run). Unreadable "
        "images are skipped and listed at the end (exit status 1).",
        epilog="Two inputs with the same stem, or outputs that exist without --overwrite, are "
        "refused with exit status 2 before anything is written.")
    ex.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    ex.add_argument("--model", "-m", required=True, type=Path, metavar="RUN_DIR",
                    help="a classifier run directory")
    ex.add_argument("--out", "-o", required=True, type=Path, metavar="DIR",
                    help="output folder (created if missing)")
    ex.add_argument("--cam", default="all", choices=[*METHODS, "all"],
                    help="the map(s) to compute (default: all four)")
    ex.add_argument("--fold", type=int, metavar="K", help="explain fold K's model "
                    "(default: the run's best fold)")
    ex.add_argument("--layer", default="layer4", choices=["layer4", "layer3", "layer2"],
                    help="the ResNet stage whose last block the maps look at (default layer4, "
                    "the paper's; earlier stages give finer maps of small inputs)")
    ex.add_argument("--target", metavar="CLASS",
                    help="explain this class (name or index) instead of the predicted one")
    ex.add_argument("--batch-size", type=positive_int, default=16, metavar="N",
                    help="images per forward and backward pass (default 16)")
    ex.add_argument("--panel", type=positive_int, default=224, metavar="PX",
                    help="side of each image on the page, pixels (default 224)")
    ex.add_argument("--recursive", "-r", action="store_true", help="scan sub-folders too")
    add_device_argument(ex)
    ex.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    ex.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    ex.set_defaults(func=cmd_explain)


def _target(text: str | None, names: list[str]) -> int | None:
    if text is None:
        return None
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    raise UsageError(f"--target {text!r}: not one of the run's classes ({', '.join(names)})")


def _masker(run):
    """The nucleus segmenter of the pages: the run's own, else the handcrafted one.

    A raw run has none; an ``oracle`` run (trained on ground-truth masks)
    cannot segment new images: both get the handcrafted segmentation, named
    in the CSV's ``nucleus_mask`` column.
    """
    source = run.mask_source
    if source is not None and source.spec.name != "oracle":
        return source.spec.key, source.mask
    from leukolib.data.sample import Sample
    from leukolib.segmentation import get_method

    method = get_method("handcrafted")
    return "handcrafted", lambda im: np.asarray(
        method(Sample(im, None, None, None, "image")), bool)


def _load(items, mask_of, failures):
    """``(path, base, image, mask)`` of the readable, segmentable files."""
    from leukolib.data.io import read_image

    ok = []
    for path, base in items:
        try:
            image = read_image(path)
            ok.append((path, base, image, mask_of(image)))
        except Exception as exc:  # noqa: BLE001 - report and go on
            failures.append((str(path), reason(exc, path)))
    return ok


def _explain(run, model, items, methods, target, panel, layer, failures):
    """Pages and rows of a batch; on failure, image by image so one bad file fails alone."""
    from leukolib.explain.page import explain_batch

    def go(chunk):
        prep = run.prepare([im for _, _, im, _ in chunk], [m for _, _, _, m in chunk])
        return explain_batch(model, prep.x, prep.images, prep.masks, list(run.class_names),
                             methods, [p.name for p, _, _, _ in chunk], target, panel, layer)

    try:
        return list(zip(items, go(items), strict=True))
    except Exception:  # noqa: BLE001 - find the culprit
        out = []
        for item in items:
            try:
                out.append((item, go([item])[0]))
            except Exception as exc:  # noqa: BLE001
                failures.append((str(item[0]), reason(exc, item[0])))
        return out


def cmd_explain(args: argparse.Namespace) -> int:
    """``leukolib explain``: a page per image and a CSV of scores."""
    from tqdm.auto import tqdm

    from leukolib.classification import load_classifier_run
    from leukolib.errors import LeukolibError
    from leukolib.explain.cams import resolve_methods

    out: Path = args.out.expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    try:
        run = load_classifier_run(args.model, device=args.device)
    except (LeukolibError, OSError) as exc:
        raise UsageError(str(exc)) from None
    if args.fold is not None and not 0 <= args.fold < run.n_folds:
        raise UsageError(f"--fold {args.fold}: the run has folds 0 to {run.n_folds - 1}")
    names = list(run.class_names)
    target = _target(args.target, names)
    methods = resolve_methods(args.cam)
    jobs, failures = collect_inputs(args.inputs, out, args.recursive, (PAGE_SUFFIX,))
    if not jobs:
        for path, why in failures:
            print(f"leukolib: {path}: {why}", file=sys.stderr)
        raise UsageError("no image files found in the inputs")
    scores = out / SCORES
    targets: dict[Path, list[Path]] = {scores: []}
    for src, base in jobs:
        targets.setdefault(out / f"{base}{PAGE_SUFFIX}", []).append(src)
    check_new_outputs(targets, args.overwrite)
    fold = run.best_fold if args.fold is None else args.fold
    model = run.inference_model(fold)  # batch norms folded: the same maps, sooner
    mask_name, mask_of = _masker(run)
    out.mkdir(parents=True, exist_ok=True)
    rows, done = [], 0
    bar = tqdm(total=len(jobs), desc=f"explain ({run.key}, fold {fold})", unit="img",
               disable=args.quiet, file=sys.stderr)
    for start in range(0, len(jobs), args.batch_size):
        chunk = jobs[start:start + args.batch_size]
        for (path, base, _, _), (page, row) in _explain(
                run, model, _load(chunk, mask_of, failures), methods, target, args.panel,
                args.layer, failures):
            dest = out / f"{base}{PAGE_SUFFIX}"
            try:
                write_png(dest, page)
            except Exception as exc:  # noqa: BLE001 - no half-written page is left behind
                dest.unlink(missing_ok=True)
                failures.append((str(path), reason(exc, path)))
                continue
            rows.append({"file": str(path), **row, "nucleus_mask": mask_name,
                         "page": str(dest.relative_to(out))})
            done += 1
        bar.update(len(chunk))
    bar.close()
    if rows:
        tmp = scores.with_name(scores.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, scores)
    print(f"{run.key}, fold {fold}: {', '.join(methods)}; nucleus masks: {mask_name}",
          file=sys.stderr)
    return report_failures(failures, done, f"explained into {out}:")
