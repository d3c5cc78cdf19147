"""Ship the GPU measurements with the package: ``leukolib/reference/gpu_check.json``.

Usage::

    python benchmarks/gpu_reference.py

Reads what ``benchmarks/gpu_check.py`` and ``benchmarks/gpu_step.py`` wrote on a
GPU machine (``benchmarks/results/gpu_check.json``, the same check with eager
training steps, ``gpu_check_eager_steps.json``, and ``gpu_step.json``) and writes
them, with their own provenance (the command, date, commit and library versions
of the GPU machine, not this one's), where the book's page "Run the paper's
protocol" reads them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from leukolib.runs import write_json

    results = ROOT / "benchmarks" / "results"
    check = json.loads((results / "gpu_check.json").read_text())
    eager = json.loads((results / "gpu_check_eager_steps.json").read_text())
    steps = json.loads((results / "gpu_step.json").read_text())
    provenance = {k: check[k] for k in ("command", "date", "commit", "versions")}
    provenance.update(profile="paper", date=check["date"][:10])
    payload = {
        "provenance": provenance,
        "results": {
            "environment": check["environment"],
            "unet": check["unet"],
            "resnet50": check["resnet50"],
            "eager_steps": {"commit": eager["commit"], "resnet50": eager["resnet50"],
                            "unet": eager["unet"]},
            "step_variants": steps,
        },
    }
    out = write_json(ROOT / "leukolib" / "reference" / "gpu_check.json", payload)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
