"""Training-step variants of ResNet-50 at the paper's batch 8 and 224 px, on a GPU.

Usage (a GPU machine; about two minutes)::

    python benchmarks/gpu_step.py --out benchmarks/results/gpu_step.json

The paper's batch of 8 images keeps a large GPU mostly waiting for the host
to launch kernels: this measures, on random batches already on the device
(no DataLoader), the images per second of one optimizer step done in
several ways, to choose how :func:`leukolib.training.fit` trains on a GPU:

* ``eager-fp16-nhwc``: autocast float16, gradient scaler, channels-last;
* ``eager-fp16-nchw``: the same in the default memory layout;
* ``eager-bf16-nhwc``: autocast bfloat16, no scaler (bfloat16 has float32's range);
* ``compile-fp16-nhwc``: ``torch.compile`` of the model (default mode);
* ``graph-bf16-nhwc``: the whole step (forward, backward, fused Adam)
  captured once in a CUDA graph and replayed.

Each variant: 10 warm-up steps (compilation and capture included, timed
apart), then ``--steps`` timed steps between two synchronisations.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _model(fmt):
    import torch

    from leukolib.classification.models import build_classifier

    torch.manual_seed(0)
    return build_classifier(2, arch="resnet50").cuda().to(memory_format=fmt).train()


def _timed(step, steps: int) -> tuple[float, float]:
    import torch

    t0 = time.perf_counter()
    for _ in range(10):
        step()
    torch.cuda.synchronize()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return warm, time.perf_counter() - t0


def variant(name: str, batch: int, size: int, steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    nhwc = "nhwc" in name
    fmt = torch.channels_last if nhwc else torch.contiguous_format
    dtype = torch.bfloat16 if "bf16" in name else torch.float16
    model = _model(fmt)
    x = torch.randn(batch, 3, size, size, device="cuda").contiguous(memory_format=fmt)
    y = torch.zeros(batch, dtype=torch.long, device="cuda")
    if name.startswith("graph"):
        opt = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=1e-4, fused=True,
                               capturable=True)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up on a side stream before capture
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=dtype):
                    out = model(x)
                F.cross_entropy(out.float(), y).backward()
                opt.step()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            with torch.autocast("cuda", dtype=dtype):
                out = model(x)
            F.cross_entropy(out.float(), y).backward()
            opt.step()

        def step():
            graph.replay()
    else:
        net = torch.compile(model) if name.startswith("compile") else model
        opt = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=1e-4, fused=True)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=dtype):
                out = net(x)
            loss = F.cross_entropy(out.float(), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    warm, timed = _timed(step, steps)
    return {"variant": name, "images_per_second": steps * batch / timed,
            "ms_per_step": 1000 * timed / steps, "warmup_seconds": warm}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    args = ap.parse_args(argv)
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    rows = []
    for name in ("eager-fp16-nhwc", "eager-fp16-nchw", "eager-bf16-nhwc", "graph-bf16-nhwc",
                 "compile-fp16-nhwc"):
        try:
            rows.append(variant(name, args.batch, args.size, args.steps))
        except Exception as exc:  # noqa: BLE001 - one variant failing must not hide the others
            rows.append({"variant": name, "error": "".join(traceback.format_exception(exc))})
        print(json.dumps(rows[-1])[:400], flush=True)
        torch.cuda.empty_cache()
    args.out.write_text(json.dumps({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                                    "batch": args.batch, "size": args.size, "rows": rows},
                                   indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
