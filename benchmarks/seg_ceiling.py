"""How far post-processing can take the shipped U-Nets in their own domain: an upper bound.

Usage::

    python benchmarks/seg_ceiling.py --shared ../shared/data --runs seg_runs \\
        [--datasets jtsc,bloodseg]

For each dataset, the U-Net run trained on it (``<runs>/unet_<dataset>_<profile>_seed<seed>``,
the runs of ``benchmarks/segmentation_report.py``) segments every image out-of-fold, as in
the report. Every post-processing of a family is then scored on those same images: the
U-Net alone, AND and OR at thresholds 0.3 to 0.9, the soft vote at four weights, the
handcrafted mask eroded by 1 or 2 px (its last step dilates by 2 px) alone and ANDed, and a
per-image oracle that keeps the best of HM, DEEP and AND for each image. Also measured: the
resampling ceiling, the IoU of each ground-truth mask resampled to the run's nucleus scale
and back (what the scale alone costs).

These numbers are chosen on the test images themselves: they are **not results** and no
default is taken from them. They answer one question: can any choice of threshold, fusion
or per-image selection reach the issue's in-domain targets with these networks, or must
the networks improve? Printed: a table per dataset, and each dataset's best candidate
beside its target. Written: ``leukolib/reference/seg_ceiling.json`` (chapter 4 reads it)
with the command, date and commit (``--overwrite`` to replace it; ``--out`` another folder).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"jtsc": "segmentation_WBC", "all_idb2": "ALL_IDB2", "bloodseg": "BloodSeg"}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SOFT_WEIGHTS = (0.6, 0.67, 0.75, 0.9)
EROSIONS = (1, 2)


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    from leukolib.metrics import segmentation_metrics  # the report's IoU, edge cases included

    return float(segmentation_metrics(mask, truth)["iou"])


def _candidates() -> dict[str, tuple[str, dict]]:
    """Candidate name -> (kind, keyword arguments of the ensemble's ``fuse``)."""
    out: dict[str, tuple[str, dict]] = {}
    for t in THRESHOLDS:
        out[f"DEEP t={t:g}"] = ("deep", {"threshold": t})
        out[f"AND t={t:g}"] = ("fuse", {"fusion": "and", "threshold": t})
        out[f"OR t={t:g}"] = ("fuse", {"fusion": "or", "threshold": t})
    for w in SOFT_WEIGHTS:
        out[f"SOFT w={w:g}"] = ("fuse", {"fusion": "soft", "soft_weight": w})
    return out


def _targets(report: dict, name: str) -> tuple[float, str]:
    """The issue's in-domain target of ``name``: the paper's ensemble (Table 2), for ALL-IDB2
    (the paper's ensemble lies below our HM there) the better of HM and DEEP."""
    from leukolib.paper import reported

    rows = {r["method"]: r for r in report["intervals"] if r["dataset"] == name}
    paper = reported(table="2", metric="iou").set_index("dataset")["value"]
    if name == "all_idb2" or name not in paper:
        best = max(("HM", "DEEP"), key=lambda m: rows[m]["mean"])
        return float(rows[best]["mean"]), f"the better of HM and DEEP, {best}"
    return float(paper[name]), "the paper's ensemble, Table 2"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--datasets", default="jtsc,all_idb2,bloodseg")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "leukolib" / "reference")
    ap.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    target_file = args.out / "seg_ceiling.json"
    if target_file.exists() and not args.overwrite:
        ap.error(f"{target_file} exists; pass --overwrite to replace it")

    import pandas as pd
    import torch
    from scipy import ndimage as ndi
    from tqdm.auto import tqdm

    from leukolib import reference
    from leukolib.data import load_dataset
    from leukolib.segmentation.ensemble import EnsembleParams, fuse
    from leukolib.segmentation.handcrafted import segment_nucleus
    from leukolib.segmentation.scale import resample
    from leukolib.segmentation.unet import load_unet_run

    shipped = reference.load("segmentation")
    report = shipped["results"]
    off = {"fallback_iou": 0.0, "fallback_entropy": 0.0, "gate_entropy": 0.0}
    candidates = _candidates()
    tables, summary = {}, {}
    for name in args.datasets.split(","):
        t0 = time.perf_counter()
        data = load_dataset(name, args.shared / FOLDERS[name])
        run = load_unet_run(args.runs / f"unet_{name}_{args.profile}_seed{args.seed}", device="cpu")
        predictor = run.predictor_for(data)
        if predictor.mode != "out-of-fold":
            raise SystemExit(f"{name}: the run did not train on every image ({predictor.mode})")
        scores: dict[str, list[float]] = {}

        def add(key: str, value: float, _s=scores) -> None:
            _s.setdefault(key, []).append(value)

        factor = run.scale.factor(run.median_diameter) if run.scale.mode == "diameter" else None
        for s in tqdm(data, desc=name, leave=False):
            truth = np.asarray(s.nucleus, dtype=bool)
            hm = segment_nucleus(s.image)
            p = predictor.proba(s, handcrafted_mask=hm)
            add("HM", _iou(hm, truth))
            for key, (kind, kw) in candidates.items():
                mask = (p >= kw["threshold"] if kind == "deep"
                        else fuse(hm, p, EnsembleParams(**kw, **off)))
                add(key, _iou(mask, truth))
            for e in EROSIONS:
                eroded = ndi.binary_erosion(hm, iterations=e)
                add(f"HM eroded {e} px", _iou(eroded, truth))
                add(f"HM eroded {e} px AND t=0.5",
                    _iou(fuse(eroded, p, EnsembleParams(fusion="and", **off)), truth))
            add("oracle per image: best of HM, DEEP, AND",
                max(scores[k][-1] for k in ("HM", "DEEP t=0.5", "AND t=0.5")))
            if factor is not None:
                m = torch.from_numpy(truth.astype(np.float32))[None]
                back = torch.nn.functional.interpolate(
                    resample(m, factor)[None], size=truth.shape, mode="bilinear",
                    align_corners=False)[0, 0].numpy() >= 0.5
                add("resampling ceiling (ground truth to scale and back)", _iou(back, truth))
        means = pd.Series({k: float(np.mean(v)) for k, v in scores.items()}).sort_values(
            ascending=False)
        target, what = _targets(report, name)
        post = means.drop([k for k in means.index if k.startswith(("oracle", "resampling"))])
        summary[name] = {
            "n_images": len(data), "target": target, "target_is": what,
            "shipped_ensemble": float(next(r["mean"] for r in report["intervals"]
                                           if r["dataset"] == name and r["method"] == "ENSEMBLE")),
            "best_post_processing": post.index[0], "best_post_processing_iou": float(post.iloc[0]),
            "oracle_per_image_iou": float(means["oracle per image: best of HM, DEEP, AND"]),
            "resampling_ceiling": (float(means.get(
                "resampling ceiling (ground truth to scale and back)", np.nan))
                if factor is not None else None),
            "reaches_target": bool(post.iloc[0] >= target),
            "seconds": time.perf_counter() - t0,
        }
        tables[name] = {k: float(v) for k, v in means.items()}
        print(f"\n{name} ({len(data)} images, out-of-fold; chosen on these images: an upper bound)")
        print(means.round(4).to_string())
    print("\nbest post-processing against the issue's in-domain target")
    print(pd.DataFrame(summary).T[["target", "target_is", "shipped_ensemble",
                                  "best_post_processing", "best_post_processing_iou",
                                  "oracle_per_image_iou", "reaches_target"]].to_string())
    cmd = "python benchmarks/seg_ceiling.py " + shlex.join(
        a if not a.startswith("/") else Path(a).name for a in (argv or sys.argv[1:]))
    results = {"what": "in-domain IoU of post-processings chosen on the test images "
                       "themselves: an upper bound, not a result",
               "runs_of": shipped["provenance"]["commit"], "summary": summary, "iou": tables}
    path = reference.write("seg_ceiling", results, cmd, args.profile, folder=args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
