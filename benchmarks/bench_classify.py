"""How fast the classifiers train and classify on this machine, and how well they learn in time.

Usage::

    python benchmarks/bench_classify.py speed --out benchmarks/results/classification_speed.json
    python benchmarks/bench_classify.py learn --n 600 --size 48 --resize 50 --crop 0.25 \
        --crop-min 0.375 --epochs 12 --arch resnet18 --lr 1e-3 --runs /tmp/learn

``speed`` measures, and prints as tables:

1. **training cost** per image of one step (forward, backward, Adam) of the
   ResNet-50 classifier at several input sizes and batch sizes: what the
   profiles' sizes are chosen from;
2. **inference** per image at 224 px (batch 16, ``torch.inference_mode``), in
   the default memory layout and in channels-last, with the achieved GFLOP/s
   of the forward pass (ResNet-50: about 4.1 GMAC, 8.2 GFLOP, per 224 px
   image), so that the distance to the machine's peak is visible;
3. **``leukolib classify`` end to end** with a segmented ResNet-50 run at 224 px
   (reading, handcrafted segmentation, network view, forward pass, CSV): images
   per second with one fold's model and with the average of the run's folds.
   The run is trained for the purpose (16 synthetic smears, one epoch: its
   accuracy is irrelevant here, its cost is not).

``learn`` trains models of the grid (default: one segmented and one raw) on
synthetic smears (or a real dataset) with the given sizes, folds, epochs,
backbone and learning rate, and prints each model's validation and test
accuracy, its learning curve and its time: how the ``cpu`` profile's sizes and
its learning rate from random initialisation were chosen
(``benchmarks/results/classification_cpu_choices.json`` holds the runs).

Timings depend on what else runs on the machine: the load average before and
after is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from leukolib.profiles import TUNING_SEED_BASE
from leukolib.reference import source_commit

GMAC_224 = 4.1  # ResNet-50, one 224 px image (torchvision's model card)
ROOT = Path(__file__).resolve().parents[1]


def train_cost(sizes, batches, steps: int, device: str,
               archs=("resnet50", "resnet18")) -> list[dict]:
    """Milliseconds per image of one training step, per backbone, input size and batch size."""
    import torch

    from leukolib.classification import build_classifier

    rows = []
    for arch, size, bs in ((a, s, b) for a in archs for s in sizes for b in batches):
        torch.manual_seed(0)
        m = build_classifier(3, arch=arch).to(device).train()
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        x = torch.randn(bs, 3, size, size, device=device)
        y = torch.randint(0, 3, (bs,), device=device)
        times = []
        for i in range(steps + 1):
            t = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:  # the first step warms up
                times.append(time.perf_counter() - t)
        ms = 1e3 * min(times) / bs  # the least disturbed step
        rows.append({"arch": arch, "size": size, "batch": bs, "train_ms_per_image": ms})
        print(f"  train {arch} {size:4d} px, batch {bs:2d}: {ms:7.1f} ms/img", flush=True)
    return rows


def inference_cost(size: int, batch: int, repeats: int, device: str) -> list[dict]:
    """Forward pass per image at ``size``, NCHW and channels-last, and the GFLOP/s."""
    import torch

    from leukolib.classification import build_classifier

    rows = []
    for layout in ("contiguous", "channels_last"):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        m = build_classifier(3).to(device).eval().to(memory_format=fmt)
        x = torch.randn(batch, 3, size, size, device=device).to(memory_format=fmt)
        times = []
        with torch.inference_mode():
            for i in range(repeats + 1):
                t = time.perf_counter()
                m(x)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                if i:
                    times.append(time.perf_counter() - t)
        per = min(times) / batch
        gflops = 2 * GMAC_224 * (size / 224) ** 2 / per
        rows.append({"size": size, "batch": batch, "layout": layout,
                     "ms_per_image": 1e3 * per, "images_per_s": 1 / per, "gflop_per_s": gflops})
        print(f"  infer {size} px, batch {batch}, {layout:13s}: {1e3 * per:6.1f} ms/img, "
              f"{1 / per:5.1f} img/s, {gflops:6.1f} GFLOP/s", flush=True)
    return rows


def classify_throughput(n_images: int, shared: Path, work: Path) -> list[dict]:
    """``leukolib classify`` on real files with a segmented 224 px run: images per second."""
    import cv2

    from leukolib.classification import train_classifier
    from leukolib.cli import main
    from leukolib.data import load_dataset

    run_dir = work / "run"
    train_classifier(load_dataset("synthetic", n_images=16, size=256, seed=0), run_dir,
                     input="segmented", profile="smoke", image_size=224, resize=232, epochs=1,
                     arch="resnet50",
                     crop=None, weights=None, progress=False)
    folder = work / "images"
    folder.mkdir(exist_ok=True)
    src = shared / "ALL_IDB2"
    ds = load_dataset("all_idb2", src) if src.is_dir() else load_dataset(
        "synthetic", n_images=n_images, size=257, seed=1)
    for i in range(min(n_images, len(ds))):
        cv2.imwrite(str(folder / f"{i:03d}.png"), ds[i].image[..., ::-1])
    n = len(list(folder.iterdir()))
    rows = []
    for label, extra in (("one fold (--fold best)", ["--fold", "best"]),
                         ("fold average (2 folds)", [])):
        out = work / "pred.csv"
        t = time.perf_counter()
        code = main(["classify", str(folder), "--model", str(run_dir), "--out", str(out),
                     "--overwrite", "--quiet", *extra])
        dt = time.perf_counter() - t
        rows.append({"model": label, "images": n, "seconds": dt, "images_per_s": n / dt,
                     "exit_status": code, "source": ds.name})
        print(f"  classify {n} {ds.name} images, {label}: {n / dt:5.1f} img/s "
              f"({dt:.1f} s, exit {code})", flush=True)
    return rows


def learn(args) -> dict:
    """Train some models of the grid with the given settings; their accuracies and times."""
    from leukolib.classification import train_grid
    from leukolib.data import load_dataset

    if args.dataset == "synthetic":  # the tuning range: smears no book page or report draws
        ds = load_dataset("synthetic", n_images=args.n, size=args.syn_size,
                          seed=TUNING_SEED_BASE + args.seed)
    else:
        ds = load_dataset(args.dataset, args.root)
    t = time.perf_counter()
    records = train_grid(ds, args.runs, "cpu", args.seed, keys=args.keys.split(","), weights=None,
                         progress=False, epochs=args.epochs, folds=args.folds,
                         image_size=args.size, resize=args.resize or args.size,
                         batch_size=args.batch, lr=args.lr, crop=args.crop,
                         crop_min=args.crop_min, arch=args.arch)
    out = {}
    for k, r in records.items():
        s = r["summary"]
        out[k] = {"val_acc_mean": s["val_acc_mean"], "test_acc": s["test_acc"],
                  "test_acc_ci": s["test_acc_ci"], "test_acc_folds_mean": s["test_acc_folds_mean"],
                  "seconds": r["timings"]["total_seconds"],
                  "val_curves": [[h["val_acc"] for h in f["history"]] for f in r["folds"]]}
        print(f"  {k}: validation {s['val_acc_mean']:.3f}, test {s['test_acc']:.3f} "
              f"[{s['test_acc_ci'][0]:.3f}, {s['test_acc_ci'][1]:.3f}], "
              f"{r['timings']['total_seconds']:.0f} s", flush=True)
    return {"models": out, "wall_seconds": time.perf_counter() - t}


def main(argv: list[str] | None = None) -> int:
    """Measure and print; write the JSON record when ``--out`` is given."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode")
    sp = sub.add_parser("speed", help="training and inference cost, classify throughput")
    sp.add_argument("--sizes", default="48,64,96,128,224", help="training input sizes")
    sp.add_argument("--batches", default="8,16", help="training batch sizes")
    sp.add_argument("--steps", type=int, default=3, help="timed training steps per setting")
    sp.add_argument("--images", type=int, default=48, help="images for the classify timing")
    sp.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    lp = sub.add_parser("learn", help="accuracy and time of training settings")
    lp.add_argument("--dataset", default="synthetic")
    lp.add_argument("--root", type=Path)
    lp.add_argument("--n", type=int, default=600, help="synthetic smears")
    lp.add_argument("--syn-size", type=int, default=128, help="side of the smears")
    lp.add_argument("--size", type=int, default=48)
    lp.add_argument("--resize", type=int)
    lp.add_argument("--crop", type=float)
    lp.add_argument("--crop-min", type=float, default=0.0)
    lp.add_argument("--folds", type=int, default=2)
    lp.add_argument("--epochs", type=int, default=12)
    lp.add_argument("--batch", type=int, default=8)
    lp.add_argument("--lr", type=float, default=1e-3)
    lp.add_argument("--arch", default="resnet18")
    lp.add_argument("--keys", default="segmented-relu-linear,raw-relu-linear")
    lp.add_argument("--seed", type=int, default=0)
    lp.add_argument("--runs", type=Path, required=True, help="run folder (resumable)")
    for p in (sp, lp):
        p.add_argument("--device", default="cpu")
        p.add_argument("--out", type=Path, help="write the results as JSON")
    args = ap.parse_args(argv)
    if args.mode is None:
        ap.error("choose a mode: speed or learn")

    import torch

    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} "
          f"cores, load average {load0[0]:.1f}", flush=True)
    record = {
        "command": "python benchmarks/bench_classify.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": source_commit(),
        "torch": torch.__version__,
    }
    if args.mode == "learn":
        record.update(learn(args))
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        batches = [int(b) for b in args.batches.split(",")]
        print("1. training cost (one step: forward, backward, Adam)")
        train = train_cost(sizes, batches, args.steps, args.device)
        print("2. inference at 224 px")
        infer = inference_cost(224, 16, 3, args.device)
        print("3. leukolib classify, segmented ResNet-50 at 224 px, handcrafted segmentation")
        with tempfile.TemporaryDirectory() as tmp:
            classify = classify_throughput(args.images, args.shared, Path(tmp))
        record.update(gmac_per_224px_image=GMAC_224, train=train, inference=infer,
                      classify=classify)
    record["machine"] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                         "device": args.device, "load_average_before": load0[0],
                         "load_average_after": os.getloadavg()[0]}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
