"""Throughput of the synthetic smear generator on one core.

Usage::

    python benchmarks/bench_synthetic.py [--n 300] [--size 256] [--repeat 3]

Renders ``n`` images of a :class:`~leukolib.data.synthetic.SyntheticDataset`
in the main thread, ``repeat`` times, and prints the best run: wall-clock
seconds, images per second, and images per CPU-second of this process (less
sensitive to other processes sharing the machine). OpenCV is limited to one
thread so that the figure is a one-core figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leukolib.data.synthetic import SyntheticDataset  # noqa: E402


def bench(n: int, size: int, repeat: int) -> tuple[float, float]:
    """Return the best (wall seconds, CPU seconds) to render ``n`` images."""
    data = SyntheticDataset(n_images=n, size=size, seed=0)
    data[0]  # warm up: imports and the shared noise tile
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            data[i]
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="images per run (default 300)")
    parser.add_argument(
        "--size", type=int, nargs="+", default=[256], help="image side(s) (default 256)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs, best kept (default 3)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    print(f"{'size':>6} {'n':>6} {'seconds':>9} {'images/s':>10} {'images/CPU-s':>13}")
    for size in args.size:
        wall, cpu = bench(args.n, size, args.repeat)
        print(f"{size:>6} {args.n:>6} {wall:>9.3f} {args.n / wall:>10.1f} {args.n / cpu:>13.1f}")


if __name__ == "__main__":
    main()
