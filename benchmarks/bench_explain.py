"""Speed of ``leukolib explain --cam all`` with a ResNet-50 at 224 px, and where the time goes.

Usage::

    python benchmarks/bench_explain.py [--images 32] [--work /tmp/leukolib_bench_explain] \\
        [--json benchmarks/results/explain_speed.json]

1. Trains (once; reused from ``--work``) a segmented ResNet-50 run at 224 px
   (resize 232; the ``cpu`` profile's crop around the nucleus), random
   initialisation, 1 epoch, 2 folds on 36 synthetic smears: its weights do not
   matter for speed, its shapes do.
2. Writes ``--images`` synthetic smears (256 x 256 PNG) and runs the command
   in this process (after one warm-up run): all four maps, the page and the
   CSV row of every image, with the run's handcrafted segmentation of every
   image: ``images_per_s`` is the number of images over the wall time of the
   command (model loading included).
3. Times the steps on the same images: reading and segmenting, preparing the
   network input, the four maps from one forward and backward pass per batch
   (:func:`leukolib.explain.compute_cams`) against pytorch-grad-cam's four
   classes called one after the other, composing and writing the pages.

Prints a table; ``--json`` also writes it with the command, date and commit
that produced it (:func:`leukolib.reference.write`). Other jobs on the machine
slow everything down: the load average is recorded beside the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path


def machine() -> dict[str, object]:
    """What the timings depend on: CPUs, threads, the load of other jobs."""
    import torch

    return {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
                       f"({torch.get_num_threads()} threads)",
            "load_average_1min": os.getloadavg()[0]}


def bench_run(work: Path) -> Path:
    """A 224 px segmented ResNet-50 run (trained once into ``work/run``)."""
    from leukolib.classification import train_classifier
    from leukolib.data import load_dataset

    ds = load_dataset("synthetic", n_images=36, size=256, seed=0)
    train_classifier(ds, work / "run", input="segmented", head="linear", act="relu",
                     profile="cpu", seed=0, weights=None, progress=False, epochs=1, folds=2,
                     image_size=224, resize=232, batch_size=8, arch="resnet50",
                     overwrite=True)  # a bench folder: an older configuration is replaced
    return work / "run"


def write_inputs(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    from leukolib.data import load_dataset

    folder.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("synthetic", n_images=n, size=256, seed=1)
    paths = []
    for i in range(n):
        p = folder / f"smear_{i:03d}.png"
        if not p.is_file():
            Image.fromarray(ds[i].image).save(p)
        paths.append(p)
    return paths


def _timed(fn, *a, **k):
    t0 = time.perf_counter()
    out = fn(*a, **k)
    return out, time.perf_counter() - t0


def steps(run_dir: Path, paths: list[Path], batch: int) -> dict[str, float]:
    """Seconds per image of each step of the command, on the same images."""
    import numpy as np
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from leukolib.classification import load_classifier_run
    from leukolib.cli.common import write_png
    from leukolib.data.io import read_image
    from leukolib.explain.cams import cam_classes, compute_cams, target_layer
    from leukolib.explain.page import explain_page

    run = load_classifier_run(run_dir, device="cpu")
    model = run.model(run.best_fold)
    n = len(paths)
    images, t_read = _timed(lambda: [read_image(p) for p in paths])
    masks, t_seg = _timed(lambda: [run.mask_source.mask(im) for im in images])
    prep, t_prep = _timed(run.prepare, images, masks)
    compute_cams(model, prep.x[:2], "all")  # warm-up
    cams, t_cams = _timed(compute_cams, model, prep.x, "all", None, batch)
    targets = [ClassifierOutputTarget(int(t)) for t in cams.targets]

    def separate():
        layer = target_layer(model)
        for cls in cam_classes().values():
            with cls(model=model, target_layers=[layer]) as cam:
                for s in range(0, n, batch):
                    cam(prep.x[s:s + batch], targets[s:s + batch])

    _, t_sep = _timed(separate)
    probs = cams.probabilities
    pages, t_page = _timed(lambda: [explain_page(prep.images[i], {m: c[i] for m, c in
                                                                  cams.cams.items()},
                                                 probs[i], run.class_names, prep.masks[i])
                                    for i in range(n)])
    out = run_dir.parent / "pages"
    _, t_write = _timed(lambda: [write_png(out / f"{i}.png", p) for i, p in enumerate(pages)])
    assert all(np.isfinite(c).all() for c in cams.cams.values())
    return {"read": t_read / n, "segment": t_seg / n, "prepare": t_prep / n,
            "four_maps_one_pass": t_cams / n, "four_maps_separately": t_sep / n,
            "page": t_page / n, "write_png": t_write / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32, help="images explained (default 32)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--work", type=Path, default=Path("/tmp/leukolib_bench_explain"))
    ap.add_argument("--json", type=Path, help="write the results here (with their provenance)")
    args = ap.parse_args(argv)

    import torch

    from leukolib.cli import main as leukolib

    torch.manual_seed(0)
    run_dir = bench_run(args.work)
    paths = write_inputs(args.work / "in", args.images)
    cmd = ["explain", str(args.work / "in"), "--model", str(run_dir), "--out",
           str(args.work / "out"), "--cam", "all", "--overwrite", "--quiet",
           "--batch-size", str(args.batch_size), "--device", "cpu"]
    leukolib(cmd)  # warm-up: imports, first allocations
    status, wall = _timed(leukolib, cmd)
    per = steps(run_dir, paths, args.batch_size)
    result = {
        "images": args.images, "image_size": 224, "batch_size": args.batch_size,
        "exit_status": status, "wall_s": wall, "images_per_s": args.images / wall,
        "target_images_per_s": 2.0, "seconds_per_image": per,
        "speedup_one_pass": per["four_maps_separately"] / per["four_maps_one_pass"],
        **machine(),
    }
    print(f"# {result['machine']}, load {result['load_average_1min']:.2f}")
    print(f"leukolib explain --cam all, {args.images} images at 224 px: {wall:.1f} s, "
          f"{result['images_per_s']:.2f} images/s (target >= 2)")
    print(f"{'step':24s} {'ms/image':>9s}")
    for k, v in per.items():
        print(f"{k:24s} {1000 * v:9.1f}")
    print(f"four maps from one pass: {result['speedup_one_pass']:.1f}x faster than four "
          "pytorch-grad-cam calls")
    if args.json:
        from leukolib import reference

        command = shlex.join(["python", "benchmarks/bench_explain.py",
                              *(sys.argv[1:] if argv is None else argv)])
        path = reference.write(args.json.stem, result, command, "224 px input (any profile)",
                               folder=args.json.parent)
        print(f"wrote {path}")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
