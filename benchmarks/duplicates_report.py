"""Near-duplicate pairs of the shared datasets, and the threshold rule of leukolib's detector.

Usage::

    python benchmarks/duplicates_report.py --shared ../shared/data --transforms \\
        --montage /tmp/duplicates

For every dataset found under ``--shared`` (JTSC, ALL-IDB2, SMC_IDB) it scores
every pair of images (:func:`leukolib.data.duplicates.match_thumbnails`) and
prints the pairs at or above the threshold, the closest pairs below it, and
the groups they make. It then applies the threshold rule of
:mod:`leukolib.data.duplicates` to the pooled scores: the midpoint of the
widest gap between consecutive scores among the 100 highest, rounded to two
decimals; it says whether ``DEFAULT_RULE.threshold`` is that value.

``--transforms`` also scores every image against the flips and 90-degree
rotations of every other (a mirrored copy would show there); ``--montage DIR``
saves the figure of chapter 1 (weakest matches beside closest non-matches) per
dataset into ``DIR``, which must lie outside the repository (ALL-IDB2 images
may not be committed).

Writes ``leukolib/reference/duplicates.json`` (ids and scores only, no image
data; ``--no-reference`` to skip) with the rule, the command, the date and the
commit.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (("jtsc", "segmentation_WBC"), ("all_idb2", "ALL_IDB2"), ("bloodseg", "BloodSeg"))
DEFAULT_SHARED = ROOT.parent / "shared" / "data"

#: How many of the highest pooled scores the threshold rule looks at.
TOP_POOLED = 100

#: The flips and rotations checked by ``--transforms`` (on square thumbnails).
TRANSFORMS = {
    "flip_lr": lambda t: t[:, :, ::-1],
    "flip_ud": lambda t: t[:, ::-1, :],
    "rot90_or_rot270": lambda t: np.rot90(t, 1, axes=(1, 2)),
    "rot180": lambda t: t[:, ::-1, ::-1],
    "transpose": lambda t: t.transpose(0, 2, 1),
    "anti_transpose": lambda t: np.rot90(t, 2, axes=(1, 2)).transpose(0, 2, 1),
}


def features(dataset, rule):
    """Thumbnails and fingerprints of every image of a dataset."""
    from leukolib.data import image_fingerprint
    from leukolib.data.duplicates import thumbnail

    thumbs, prints = [], []
    for s in dataset:
        thumbs.append(thumbnail(s.image, rule))
        prints.append(image_fingerprint(s.image))
    return np.stack(thumbs), prints


def pair_record(q, ids) -> dict:
    """A pair by image id, its score and shift (fractions of height and width)."""
    return {"a": ids[q.i], "b": ids[q.j], "score": round(q.score, 4),
            "shift": [round(q.shift[0], 3), round(q.shift[1], 3)], "exact": q.exact}


def transform_check(thumbs, ids, rule, top: int = 3) -> dict:
    """The highest scores of every pair, one image flipped or rotated (unordered pairs).

    ``score(b, rot90 a)`` is ``score(a, rot270 b)``: the symmetric maximum of the
    rot90 matrix covers rot270 too.
    """
    from leukolib.data.duplicates import score_matrix

    out = {}
    upper = np.triu(np.ones((len(ids), len(ids)), bool), 1)  # no image against its own mirror
    for name, f in TRANSFORMS.items():
        s = score_matrix(thumbs, np.ascontiguousarray(f(thumbs)), max_shift=rule.max_shift)
        s = np.where(upper, np.maximum(s, s.T), -1.0)
        best = np.argsort(s, axis=None)[::-1][:top]
        i, j = np.unravel_index(best, s.shape)
        out[name] = [{"a": ids[a], "b": ids[b], "score": round(float(s[a, b]), 4)}
                     for a, b in zip(i, j, strict=True)]
    return out


def threshold_rule(pooled: list[tuple[float, str, str, str]]) -> dict:
    """Midpoint of the widest gap between consecutive scores among the highest pooled."""
    top = sorted(pooled, reverse=True)[:TOP_POOLED]
    gaps = [top[k][0] - top[k + 1][0] for k in range(len(top) - 1)]
    k = int(np.argmax(gaps))
    above, below = top[k], top[k + 1]
    return {"rule": f"midpoint of the widest gap between consecutive scores among the "
                    f"{TOP_POOLED} highest of all pairs of the datasets, pooled; two decimals",
            "pooled_pairs_considered": len(top),
            "lowest_above": {"dataset": above[1], "a": above[2], "b": above[3],
                             "score": round(above[0], 4)},
            "highest_below": {"dataset": below[1], "a": below[2], "b": below[3],
                              "score": round(below[0], 4)},
            "gap": round(gaps[k], 4), "threshold": round((above[0] + below[0]) / 2, 2)}


def report_dataset(name, dataset, rule, args) -> tuple[dict, list]:
    """Score one dataset: its record and its pooled scores."""
    from leukolib.data.duplicates import groups_from_pairs, match_thumbnails

    t0 = time.perf_counter()
    thumbs, prints = features(dataset, rule)
    ids = list(dataset.ids)
    scored = match_thumbnails(thumbs, prints, rule, min_score=args.floor)
    matched = [q for q in scored if q.exact or q.score >= rule.threshold]
    closest = [q for q in scored if not q.exact and q.score < rule.threshold][:args.closest]
    groups = groups_from_pairs(len(ids), matched)
    members = [[ids[k] for k in np.flatnonzero(groups == g)] for g in np.unique(groups)]
    record = {
        "images": len(ids), "pairs_scored": len(ids) * (len(ids) - 1) // 2,
        "matched": [pair_record(q, ids) for q in matched],
        "closest_non_matching": [pair_record(q, ids) for q in closest],
        "groups": [m for m in members if len(m) > 1],
        "images_in_groups": int(sum(len(m) for m in members if len(m) > 1)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.transforms:
        record["transforms"] = transform_check(thumbs, ids, rule)
    if args.montage:
        save_montage(dataset, scored, rule, args.montage / f"duplicates_{name}.png")
    print_dataset(name, record, rule)
    return record, [(q.score, name, ids[q.i], ids[q.j]) for q in scored]


def save_montage(dataset, scored, rule, path: Path) -> None:
    """The chapter-1 figure of a dataset (outside the repository)."""
    import matplotlib.pyplot as plt

    from leukolib.data.duplicates import plot_duplicate_pairs

    if path.resolve().is_relative_to(ROOT):
        raise SystemExit(f"--montage must lie outside the repository, not {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_duplicate_pairs(dataset, scored, threshold=rule.threshold, n=6)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"  montage: {path}")


def print_dataset(name, record, rule) -> None:
    def line(p):
        what = "exact" if p["exact"] else f"{p['score']:.3f}"
        return f"    {p['a']:>18s} {p['b']:>18s}  {what}  shift {p['shift']}"

    print(f"\n{name}: {record['images']} images, {record['pairs_scored']} pairs, "
          f"{record['seconds']} s")
    print(f"  {len(record['matched'])} pair(s) at or above {rule.threshold}:")
    print("\n".join(line(p) for p in record["matched"]) or "    none")
    print("  closest non-matching pairs:")
    print("\n".join(line(p) for p in record["closest_non_matching"]) or "    none")
    print(f"  {len(record['groups'])} group(s), {record['images_in_groups']} images: "
          + "; ".join("/".join(g) for g in record["groups"]))
    for t, best in record.get("transforms", {}).items():
        print(f"  {t:>14s}: " + ", ".join(f"{b['a']}/{b['b']} {b['score']:.3f}" for b in best))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--datasets", default=",".join(n for n, _ in DATASETS))
    ap.add_argument("--closest", type=int, default=10, help="non-matching pairs listed")
    ap.add_argument("--floor", type=float, default=0.0,
                    help="lowest score kept for the pooled rule and the closest pairs")
    ap.add_argument("--transforms", action="store_true", help="check flips and rotations too")
    ap.add_argument("--montage", type=Path, help="save the chapter-1 figures into this folder")
    ap.add_argument("--no-reference", action="store_true", help="do not write the reference JSON")
    args = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import scipy

    from leukolib import reference
    from leukolib.data import load_dataset
    from leukolib.data.duplicates import DEFAULT_RULE

    folders = dict(DATASETS)
    results: dict = {"rule": DEFAULT_RULE.to_dict(), "datasets": {},
                     "versions": {"scipy": scipy.__version__}}
    pooled: list = []
    for name in filter(None, args.datasets.split(",")):
        root = args.shared / folders[name]
        if not root.is_dir():
            print(f"{name}: not found at {root}, skipped")
            continue
        record, scores = report_dataset(name, load_dataset(name, root), DEFAULT_RULE, args)
        results["datasets"][name] = record
        pooled += scores
    if len(pooled) < TOP_POOLED:
        print(f"\nonly {len(pooled)} pairs scored at least {args.floor}: lower --floor")
        return 1
    chosen = threshold_rule(pooled)
    results["threshold_rule"] = chosen
    agrees = chosen["threshold"] == DEFAULT_RULE.threshold
    print(f"\nthreshold rule: widest gap {chosen['gap']:.3f} between "
          f"{chosen['lowest_above']} and {chosen['highest_below']}: threshold "
          f"{chosen['threshold']} ({'=' if agrees else '!='} DEFAULT_RULE.threshold "
          f"{DEFAULT_RULE.threshold})")
    if not args.no_reference:
        argv_shown = [a if not a.startswith("/") else Path(a).name
                      for a in (sys.argv[1:] if argv is None else argv)]
        command = shlex.join(["python", "benchmarks/duplicates_report.py", *argv_shown])
        path = reference.write("duplicates", results, command, "cpu")
        print(f"reference: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0 if agrees else 1


if __name__ == "__main__":
    sys.exit(main())
