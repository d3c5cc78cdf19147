"""Accuracy and speed of the handcrafted segmentation on JTSC and ALL-IDB2.

Usage::

    python benchmarks/bench_handcrafted.py [--shared ../shared/data] [--json FILE]

Prints, per dataset: the number of images, mean IoU +- std and mean DSC with
the default parameters, and images/s of the method alone (images already in
memory), including the reading of each image file (``read_image``, what
``leukolib segment`` does) and including the reading of the sample with its
ground-truth mask (what ``leukolib evaluate`` reports). Speeds are the median
of ``--repeat`` passes over the whole set, in this one process.

Then the ablations that fixed the documented defaults of
:class:`~leukolib.segmentation.handcrafted.HandcraftedParams`: where the
Table A1 dilation goes (none, after Otsu, after the closing, after the area
filter), with its radius scaled to the image size or the absolute 2 px, and
the area-threshold rule (scaled or absolute 150 px).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from leukolib.data import load_dataset, read_image
from leukolib.metrics import segmentation_metrics, summarize
from leukolib.segmentation import evaluate_dataset, get_method
from leukolib.segmentation.handcrafted import (
    HandcraftedParams,
    ablation_variants,
    segment_nucleus,
)

DATASETS = (("jtsc", "segmentation_WBC"), ("all_idb2", "ALL_IDB2"))
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _median_rate(n: int, run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def _scores(samples, params: HandcraftedParams) -> dict[str, dict[str, float]]:
    rows = [segmentation_metrics(segment_nucleus(s.image, params), s.nucleus) for s in samples]
    return summarize(rows)


def bench_dataset(name: str, root: Path, repeat: int, limit: int | None) -> dict:
    ds = load_dataset(name, root)
    n = len(ds) if limit is None else min(limit, len(ds))
    samples = [ds[i] for i in range(n)]
    paths = [s.path for s in samples]
    images = [s.image for s in samples]
    params = HandcraftedParams()
    summary = _scores(samples, params)

    for im in images[:10]:  # warm-up: first calls allocate OpenCV buffers
        segment_nucleus(im, params)
    rate = _median_rate(n, lambda: [segment_nucleus(im, params) for im in images], repeat)
    rate_io = _median_rate(
        n, lambda: [segment_nucleus(read_image(p), params) for p in paths], repeat
    )
    ev = [
        evaluate_dataset(ds, get_method("handcrafted"), limit=n, progress=False)
        for _ in range(repeat)
    ]
    rate_eval = statistics.median(e.images_per_s_with_io for e in ev)
    return {
        "dataset": name,
        "n": n,
        "shape": list(images[0].shape[:2]),
        "iou": summary["iou"]["mean"],
        "iou_std": summary["iou"]["std"],
        "dsc": summary["dsc"]["mean"],
        "dsc_std": summary["dsc"]["std"],
        "images_per_s": rate,
        "images_per_s_with_read": rate_io,
        "images_per_s_with_read_and_gt": rate_eval,
        "samples": samples,
    }


def ablations(results: list[dict]) -> list[dict]:
    base = HandcraftedParams()
    variants = ablation_variants(base).items()
    rows = []
    for label, p in variants:
        row = {"variant": label.rstrip(" *"), "default": p == base}
        for r in results:
            row[r["dataset"]] = _scores(r["samples"], p)["iou"]["mean"]
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    ap.add_argument("--repeat", type=int, default=3, help="timing passes (median)")
    ap.add_argument("--limit", type=int, help="first N images of each set (quick look)")
    args = ap.parse_args(argv)

    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}, OpenCV {cv2.__version__} "
        f"({cv2.getNumThreads()} threads), numpy {np.__version__}"
    )
    print(f"# defaults: {HandcraftedParams().to_dict()}")
    results = []
    for name, folder in DATASETS:
        root = args.shared / folder
        if not root.is_dir():
            print(f"# {name}: {root} not found, skipped", file=sys.stderr)
            continue
        results.append(bench_dataset(name, root, args.repeat, args.limit))
    if not results:
        print("no dataset found under", args.shared, file=sys.stderr)
        return 1

    print()
    print(
        f"{'dataset':9s} {'n':>4s} {'size':>8s} {'IoU':>15s} {'DSC':>7s} "
        f"{'img/s':>7s} {'+read':>7s} {'+read+GT':>9s}"
    )
    for r in results:
        size = "x".join(map(str, r["shape"]))
        print(
            f"{r['dataset']:9s} {r['n']:4d} {size:>8s} "
            f"{r['iou']:7.4f} ± {r['iou_std']:.3f} {r['dsc']:7.4f} "
            f"{r['images_per_s']:7.0f} {r['images_per_s_with_read']:7.0f} "
            f"{r['images_per_s_with_read_and_gt']:9.0f}"
        )
    print(
        "img/s: method alone; +read: with read_image of each file; "
        "+read+GT: with the sample loading of an evaluation (image and mask)"
    )

    rows = ablations(results)
    names = [r["dataset"] for r in results]
    print()
    print(f"{'variant (mean IoU)':52s}" + "".join(f"{n:>10s}" for n in names))
    for row in rows:
        mark = " *" if row["default"] else ""
        print(f"{row['variant'] + mark:52s}" + "".join(f"{row[n]:10.4f}" for n in names))
    print("* = the default")

    if args.json:
        for r in results:
            r.pop("samples")
        args.json.write_text(json.dumps({"results": results, "ablations": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
