"""What one DataLoader worker spends on a classifier's training image, at the paper's 224 px.

Usage::

    python benchmarks/bench_augment.py [--size 224] [--images 300]

Prints the milliseconds per image of the paper's augmentation
(:class:`~leukolib.classification.augment.Augmenter`) and of the hand-over a
worker does after it (a ``uint8`` tensor, normalised later on the device), and
for comparison the float conversion and ImageNet normalisation the workers did
before (:func:`~leukolib.classification.inputs.to_tensor`). One thread, as in a
worker: divide a worker's images per second by this to size ``num_workers``
for a GPU's rate (``benchmarks/gpu_check.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=300)
    args = ap.parse_args(argv)
    import cv2
    import numpy as np
    import torch

    from leukolib.classification.augment import Augmenter
    from leukolib.classification.inputs import to_tensor

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    views = rng.integers(0, 256, (32, args.size, args.size, 3), dtype=np.uint8)
    aug = Augmenter(segmented=False, seed=0)
    out = []
    t0 = time.perf_counter()
    for i in range(args.images):
        out.append(aug(views[i % len(views)], None))
    t1 = time.perf_counter()
    for img in out:
        torch.from_numpy(np.ascontiguousarray(img))
    t2 = time.perf_counter()
    for img in out:
        to_tensor(img[None])
    t3 = time.perf_counter()
    ms = 1000 / args.images
    a, h, f = (t1 - t0) * ms, (t2 - t1) * ms, (t3 - t2) * ms
    print(f"{args.size} px, {args.images} images, one thread")
    print(f"  augmentation            {a:6.2f} ms/image")
    print(f"  uint8 hand-over (now)   {h:6.2f} ms/image -> {1000 / (a + h):5.0f} images/s a worker")
    print(f"  float + normalise (was) {f:6.2f} ms/image -> {1000 / (a + f):5.0f} images/s a worker")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
