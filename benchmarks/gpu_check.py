"""One GPU check of the ``paper`` protocol: U-Net on JTSC, ResNet-50 on ALL-IDB2, a fold each.

Usage, on a machine with a GPU (a few minutes on an H100/H200-class GPU)::

    python benchmarks/gpu_check.py --jtsc DATA/segmentation_WBC --all-idb2 DATA/ALL_IDB2 \
        --out benchmarks/results/gpu_check.json [--weights resnet50.pth]

and on a CPU with tiny synthetic smears, as the test suite runs it so that the
script cannot rot (its numbers mean nothing)::

    python benchmarks/gpu_check.py --smoke --out /tmp/gpu_check.json

What it runs, with the ``paper`` profile's settings (its DataLoader workers,
mixed precision, cuDNN mode, checkpoint policy):

* the U-Net (256 px, batch 8, the paper's Table A2 hyper-parameters) on the
  first of the profile's 10 folds of JTSC, for ``--unet-epochs`` epochs;
* ResNet-50 at 224 px, batch 8, raw input, fold 1 of the profile's 10 on
  ALL-IDB2 for the profile's 30 epochs, from ImageNet weights when a file is
  at hand (``--weights``, or torchvision's file in the torch hub cache) and
  otherwise from random initialisation, which the output says (the speed is
  the same; the accuracy is then not the paper's protocol);
* inference of the trained ResNet-50 (float32, as the saved logits are).

It prints and writes (JSON): training and inference throughput in images per
second (the first epoch left out: it pays for cuDNN's autotuning and for
starting the workers), the mean epoch time, the share of the training time the
loop waited for the DataLoader, and the GPU memory peak of each stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

# the script runs from a checkout without installing leukolib (on a GPU machine too)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Enough(Exception):
    """Raised by the U-Net's epoch callback once its first fold is done."""


def _peak_gib(dev: str) -> float | None:
    import torch

    if not dev.startswith("cuda"):
        return None
    return torch.cuda.max_memory_allocated(dev) / 2**30


def _reset_peak(dev: str) -> None:
    import torch

    if dev.startswith("cuda"):
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)


def _speed(history: list[dict]) -> dict:
    """Throughput and the DataLoader's share from a fold's epochs, the first left out."""
    rows = history[1:] or history
    images = sum(h["train_images"] for h in rows)
    train = sum(h["train_seconds"] for h in rows)
    waited = sum(h["data_seconds"] for h in rows)
    return {"epochs": len(history), "epochs_timed": len(rows),
            "train_images_per_second": images / train,
            "dataloader_share": waited / train,
            "mean_epoch_seconds": sum(h["seconds"] for h in rows) / len(rows),
            "first_epoch_seconds": history[0]["seconds"]}


def check_unet(data, out: Path, dev: str, epochs: int, overrides: dict) -> dict:
    """The paper's U-Net on the first of its folds: speed, memory, the fold's IoU."""
    from leukolib.runs import read_json
    from leukolib.segmentation.training import train_unet

    def stop_after_first_fold(fold: int, row: dict) -> None:
        if fold >= 1:
            raise _Enough

    _reset_peak(dev)
    t0 = time.perf_counter()
    try:
        train_unet(data, out, profile="paper", seed=0, device=dev, progress=False,
                   epochs=epochs, on_epoch_end=stop_after_first_fold, **overrides)
    except _Enough:
        pass
    seconds = time.perf_counter() - t0
    record = read_json(out / "run.json")
    fold = next(f for f in record["folds"] if f["fold"] == 0)
    cfg = record["config"]
    return {"dataset": data.name, "images": len(data), "image_size": cfg["image_size"],
            "batch_size": cfg["batch_size"], "folds": cfg["folds"],
            "train_images": len(fold["train_ids"]), "best_val_iou": fold["best_val_iou"],
            "fold_test_iou": fold["test_iou"], **_speed(fold["history"]),
            "gpu_memory_peak_gib": _peak_gib(dev), "stage_seconds": seconds}


def _paper_classifier(weights: str | None):
    """The ``paper`` profile, or its variant without required ImageNet weights."""
    from leukolib.classification.models import imagenet_weights_file
    from leukolib.profiles import get_profile

    paper = get_profile("paper")
    if weights or imagenet_weights_file("resnet50").is_file():
        return paper, weights or "imagenet", "ImageNet weights"
    c = dataclasses.replace(paper.classification, pretrained=False, try_pretrained=False)
    note = ("random initialisation: no ImageNet weights on this machine (the speed is the "
            "paper protocol's, its accuracy is not)")
    return dataclasses.replace(paper, classification=c), None, note


def _network_alone(model, dev: str, size: int, batch: int, steps: int) -> float:
    """Training images per second of the network alone (random batches already on the device).

    The ceiling the training loop can reach: the same mixed precision, fused
    Adam and memory layout, but no DataLoader, no augmentation, no copies.
    """
    import torch

    from leukolib.device import use_amp
    from leukolib.training import adam

    model.train()
    fmt = torch.channels_last if dev.startswith("cuda") else torch.contiguous_format
    model.to(memory_format=fmt)
    opt = adam(model.parameters(), lr=1e-5, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp(dev))
    x = torch.randn(batch, 3, size, size, device=dev).contiguous(memory_format=fmt)
    y = torch.zeros(batch, dtype=torch.long, device=dev)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", enabled=use_amp(dev)):
            out = model(x)
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(5):  # warm-up
        step()
    if dev.startswith("cuda"):
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if dev.startswith("cuda"):
        torch.cuda.synchronize(dev)
    return steps * batch / (time.perf_counter() - t0)


def check_resnet(data, out: Path, dev: str, weights: str | None, overrides: dict,
                 n_infer: int) -> dict:
    """ResNet-50 by the paper's protocol, one fold: speed, memory, inference."""
    import torch

    from leukolib.classification import load_classifier_run, train_classifier
    from leukolib.classification.training import predict_logits

    prof, source, note = _paper_classifier(weights)
    _reset_peak(dev)
    t0 = time.perf_counter()
    record = train_classifier(data, out, input="raw", profile=prof, seed=0, weights=source,
                              device=dev, progress=False, fold=0, **overrides)
    seconds = time.perf_counter() - t0
    train_peak = _peak_gib(dev)
    fold = next(f for f in record["folds"] if f["fold"] == 0)
    cfg = record["config"]
    model = load_classifier_run(out, device=dev, allow_incomplete=True).model(0)
    size = cfg["image_size"]
    x = torch.randn(n_infer, 3, size, size)  # the speed does not depend on the pixels
    predict_logits(model, x[:64], dev, batch_size=64)  # warm-up: cuDNN's autotuning
    _reset_peak(dev)
    t1 = time.perf_counter()
    predict_logits(model, x, dev, batch_size=64)  # ends on the host: the time is complete
    infer = time.perf_counter() - t1
    alone = _network_alone(model, dev, size, cfg["batch_size"], 100 if n_infer > 64 else 3)
    return {"dataset": data.name, "images": len(data), "arch": cfg["arch"], "image_size": size,
            "batch_size": cfg["batch_size"], "folds": cfg["folds"], "weights": cfg["weights"],
            "weights_note": note, "lr": cfg["lr"], "lr_kind": cfg["lr_kind"],
            "training_step": record.get("cuda", {}).get("training_step", "eager, float32 (CPU)"),
            "train_images": len(fold["train_ids"]), "best_val_acc": fold["best_val_acc"],
            "fold_test_acc": fold["test"]["accuracy"], **_speed(fold["history"]),
            "gpu_memory_peak_gib": train_peak, "network_alone_images_per_second": alone,
            "inference_images_per_second": n_infer / infer, "inference_batch_size": 64,
            "inference_gpu_memory_peak_gib": _peak_gib(dev), "stage_seconds": seconds}


def _environment(dev: str) -> dict:
    import torch

    from leukolib.profiles import get_profile

    env = {"device": dev, "torch": torch.__version__, "cpu_count": os.cpu_count(),
           "dataloader_workers": get_profile("paper").workers_for(dev),
           "cuda_mode": get_profile("paper").cuda_mode}
    if dev.startswith("cuda"):
        env.update(gpu=torch.cuda.get_device_name(dev), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return env


def _table(result: dict) -> str:
    rows = [("stage", "train img/s", "network alone", "epoch s", "loader share", "GPU peak GiB",
             "infer img/s")]
    for name in ("unet", "resnet50"):
        r = result[name]
        if "error" in r:
            rows.append((name, "failed", "", "", "", "", ""))
            continue
        peak = r["gpu_memory_peak_gib"]
        infer = r.get("inference_images_per_second")
        alone = r.get("network_alone_images_per_second")
        rows.append((name, f"{r['train_images_per_second']:.0f}",
                     "-" if alone is None else f"{alone:.0f}", f"{r['mean_epoch_seconds']:.2f}",
                     f"{100 * r['dataloader_share']:.1f} %",
                     "-" if peak is None else f"{peak:.2f}",
                     "-" if infer is None else f"{infer:.0f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jtsc", type=Path, help="the JTSC folder (segmentation_WBC)")
    ap.add_argument("--all-idb2", type=Path, help="the ALL-IDB2 folder (img/, masks/)")
    ap.add_argument("--out", type=Path, required=True, help="the JSON to write")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ap.add_argument("--runs", type=Path, help="folder of the runs (default: a temporary one)")
    ap.add_argument("--weights", help="a ResNet-50 ImageNet weights file")
    ap.add_argument("--device", help="default: $LEUKOLIB_DEVICE, else cuda when present")
    ap.add_argument("--unet-epochs", type=int, default=5)
    ap.add_argument("--smoke", action="store_true",
                    help="tiny synthetic smears on the CPU: checks that the script runs")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.overwrite:
        ap.error(f"{args.out} exists; pass --overwrite to replace it")
    if not args.smoke and not (args.jtsc and args.all_idb2):
        ap.error("--jtsc and --all-idb2 are needed (or --smoke)")

    from leukolib.data import load_dataset
    from leukolib.device import select_device
    from leukolib.reference import source_commit
    from leukolib.runs import library_versions, now, write_json

    dev = select_device("cpu" if args.smoke else args.device)
    if args.smoke:  # the paper's protocol at toy sizes
        seg_data = load_dataset("synthetic", n_images=12, size=64, seed=0)
        cls_data = load_dataset("synthetic", n_images=30, size=96, seed=0)
        unet_sizes, cls_sizes, epochs, n_infer = {"image_size": 64}, \
            {"image_size": 32, "resize": 34, "epochs": 2, "folds": 2}, 2, 64
    else:
        seg_data = load_dataset("jtsc", args.jtsc)
        cls_data = load_dataset("all_idb2", args.all_idb2)
        unet_sizes, cls_sizes, epochs, n_infer = {}, {}, args.unet_epochs, 2048
    command = "python benchmarks/gpu_check.py " + (
        "--smoke" if args.smoke else "--jtsc DATA/segmentation_WBC --all-idb2 DATA/ALL_IDB2")
    result = {"command": command,
              "date": now(), "commit": os.environ.get("LEUKOLIB_COMMIT") or source_commit(),
              "versions": library_versions(),
              "environment": _environment(dev)}
    stages = {
        "unet": lambda runs: check_unet(seg_data, runs / "unet_jtsc", dev, epochs, unet_sizes),
        "resnet50": lambda runs: check_resnet(cls_data, runs / "resnet50_all_idb2", dev,
                                              args.weights, cls_sizes, n_infer),
    }
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, stage in stages.items():
            try:  # a GPU lease is short: a failing stage must not cost the other's numbers
                result[name] = stage(args.runs or Path(tmp))
            except Exception as exc:  # noqa: BLE001 - recorded, reported, exit status 1
                result[name] = {"error": "".join(traceback.format_exception(exc))}
                failed.append(name)
                print(result[name]["error"], file=sys.stderr)
    write_json(args.out, result)
    print(json.dumps(result["environment"]))
    if "weights_note" in result["resnet50"]:
        print(f"ResNet-50: {result['resnet50']['weights_note']}")
    print(_table(result))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
