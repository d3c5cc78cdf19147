"""Accuracy and speed of the handcrafted segmentation on the shared datasets.

Usage::

    python benchmarks/bench_handcrafted.py [--shared ../shared/data] [--repeat 3]

Prints, per dataset (JTSC, ALL-IDB2, SMC_IDB): the number of images, mean IoU
+- std and mean DSC with the default parameters, and images/s of the method
alone (images already in memory), including the reading of each image file
(what ``leukolib segment`` does), and including the reading of the sample with
its ground-truth mask (what ``leukolib evaluate`` does). Speeds are the median
of ``--repeat`` passes, in this one process. How the defaults were chosen is
``benchmarks/segmentation_report.py``'s business.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

from leukolib.data import load_dataset, read_image
from leukolib.metrics import segmentation_metrics, summarize
from leukolib.segmentation.handcrafted import segment_nucleus

DATASETS = (("jtsc", "segmentation_WBC"), ("all_idb2", "ALL_IDB2"), ("bloodseg", "BloodSeg"))
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _median_rate(n: int, run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    print(f"{'dataset':10s} {'n':>4s} {'IoU':>15s} {'DSC':>6s} {'img/s':>8s} "
          f"{'+read':>8s} {'+read+GT':>9s}")
    for name, folder in DATASETS:
        root = args.shared / folder
        if not root.is_dir():
            print(f"{name}: not found at {root}", file=sys.stderr)
            continue
        ds = load_dataset(name, root)
        samples = list(ds)
        s = summarize(segmentation_metrics(segment_nucleus(x.image), x.nucleus) for x in samples)
        files = [r.image for r in ds.records]
        alone = _median_rate(len(samples), lambda s=samples: [segment_nucleus(x.image) for x in s],
                             args.repeat)
        with_read = _median_rate(len(files),
                                 lambda f=files: [segment_nucleus(read_image(p)) for p in f],
                                 args.repeat)
        with_gt = _median_rate(len(ds), lambda d=ds: [segment_nucleus(x.image) for x in d],
                               args.repeat)
        print(f"{name:10s} {len(samples):4d} {s['iou']['mean']:7.4f} ± {s['iou']['std']:.3f} "
              f"{s['dsc']['mean']:6.3f} {alone:8.0f} {with_read:8.0f} {with_gt:9.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
