"""Which shipped results were made with splits that near duplicates straddle.

Usage::

    python benchmarks/split_audit.py [--shared ../shared/data] [--check]

Every shipped result that depends on a split (the classifier reports of
``leukolib/reference`` and ``benchmarks/results``, the U-Net runs of
``segmentation.json``, and what was computed from those runs: explanations,
robustness) is checked against the near-duplicate detector
(:mod:`leukolib.data.duplicates`, the shipped rule):

* a report that records its split (``grid.split``: test ids and the folds'
  validation ids, written since near duplicates are grouped) is read as it is;
* an older report is split again as the code of its commit did (identical
  pixels only, the recorded seed, folds and test fraction), which is exactly
  the split it trained on.

For each, the near-duplicate groups that fall on both sides of the test split
or of a fold are counted and named. The result goes to
``leukolib/reference/split_audit.json``, which the book reads to flag results
made before near duplicates were grouped; ``--check`` compares the committed
file with a fresh audit instead of writing it (the test suite does that).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"jtsc": "segmentation_WBC", "all_idb2": "ALL_IDB2", "bloodseg": "BloodSeg"}
# The derived results and the runs they read (their provenance commands say so).
DERIVED = {
    "explain_jtsc_cpu.json": ["classification_jtsc_cpu.json"],
    "explain_all_idb2_cpu.json": ["classification_all_idb2_cpu.json"],
    "robustness.json": ["classification_all_idb2_cpu.json", "segmentation.json:jtsc",
                        "segmentation.json:all_idb2"],
    "seg_ceiling.json": ["segmentation.json:jtsc", "segmentation.json:all_idb2",
                         "segmentation.json:bloodseg"],
    # its runs were trained anew on the folds of these (checked when it is made)
    "unet_variants_cpu.json": ["segmentation.json:jtsc", "segmentation.json:all_idb2"],
    "classification_jtsc_cpu_settings.json": ["classification_jtsc_cpu.json"],
    "classification_all_idb2_cpu_settings.json": [
        "classification_all_idb2_cpu.json", "classification_all_idb2_cpu_seed1.json",
        "classification_all_idb2_cpu_seed2.json"],
    "classification_all_idb2_cpu_splits.json": [
        "classification_all_idb2_cpu.json", "classification_all_idb2_cpu_seed1.json",
        "classification_all_idb2_cpu_seed2.json"],
}


def _groups(name: str, shared: Path, cache: dict) -> tuple[Any, Any, list[str]]:
    """The dataset, its near-duplicate groups and fingerprints (computed once)."""
    if name not in cache:
        from leukolib.data import load_dataset
        from leukolib.data.duplicates import image_thumbnails, thumbnail_groups

        ds = load_dataset(name, shared / FOLDERS[name])
        thumbs, prints = image_thumbnails(ds)
        cache[name] = (ds, thumbnail_groups(thumbs, prints),
                       prints)
    return cache[name]


def _named(ds, groups: list) -> list[list[str]]:
    return sorted(sorted(str(ds.ids[i]) for i in g) for g in groups)


def _seed(report: dict[str, Any]) -> int:
    found = re.search(r"--seed[ =](\d+)", str(report.get("command", "")))
    return int(found.group(1)) if found else 0


def audit_classifier(file: str, report: dict[str, Any], shared: Path, cache: dict,
                     ) -> dict[str, Any]:
    """One classifier report: its split (recorded, or made again) against the detector."""
    import numpy as np

    from leukolib.classification.splits import classifier_split
    from leukolib.data.duplicates import straddling

    name = report["dataset"]["name"]
    ds, near, prints = _groups(name, shared, cache)
    grid = report["grid"]
    recorded = grid.get("split")
    seed = _seed(report)
    if recorded:
        pos = {str(i): k for k, i in enumerate(ds.ids)}
        test = np.array([pos[i] for i in recorded["test_ids"]])
        trainval = np.setdiff1d(np.arange(len(ds)), test)
        folds = []
        for val_ids in recorded["fold_val_ids"]:
            val = np.array([pos[i] for i in val_ids])
            folds.append((np.setdiff1d(trainval, val), val))
        grouping = recorded.get("grouping") or {"by": ["identical pixels"]}
    else:  # made before splits were recorded: the old protocol, identical pixels only
        cfg = grid["config"]
        sp = classifier_split(prints, ds.labels, cfg["test_fraction"], cfg["folds"], seed,
                              near_duplicates=None)
        test, trainval, folds = sp.test, sp.trainval, sp.folds
        grouping = {"by": ["identical pixels"]}
    across_test = straddling(near, [test, trainval])
    across_folds = straddling(near, [v for _, v in folds])
    return {"file": file, "kind": "classifier", "dataset": name, "seed": seed,
            "commit": report.get("commit"), "grouped_by": grouping["by"],
            "split_recorded": bool(recorded),
            "across_test": _named(ds, across_test), "across_folds": _named(ds, across_folds),
            "clean": not across_test and not across_folds}


def audit_unet(name: str, entry: dict[str, Any], provenance: dict[str, Any], shared: Path,
               cache: dict) -> dict[str, Any]:
    """One U-Net run of the segmentation report: its k folds against the detector."""
    import numpy as np

    from leukolib.data.duplicates import straddling
    from leukolib.data.fingerprint import split_groups
    from leukolib.folds import kfold

    ds, near, prints = _groups(name, shared, cache)
    recorded = entry.get("fold_test_ids")
    seed = int(entry.get("seed", 0))
    if recorded:
        pos = {str(i): k for k, i in enumerate(ds.ids)}
        parts = [np.array([pos[i] for i in ids]) for ids in recorded]
        grouping = entry.get("grouping") or {"by": ["identical pixels"]}
    else:  # the old protocol: identical pixels only, seed 0, the profile's validation share
        from leukolib.profiles import get_profile

        vf = get_profile(provenance.get("profile", "cpu")).segmentation.val_fraction
        g = split_groups(prints, ds.groups, near_duplicates=None)
        parts = [f.test for f in kfold(len(ds), int(entry["folds"]), seed, groups=g,
                                       val_fraction=vf)]
        grouping = {"by": ["identical pixels"]}
    across = straddling(near, parts)
    return {"file": f"segmentation.json:{name}", "kind": "unet", "dataset": name, "seed": seed,
            "commit": provenance.get("commit"), "grouped_by": grouping["by"],
            "split_recorded": bool(recorded), "across_test": [],
            "across_folds": _named(ds, across), "clean": not across}


def _made(file: str) -> tuple[str | None, str]:
    """The commit and the date a shipped file says it was made at."""
    name = file.split(":")[0]
    for folder in (ROOT / "leukolib" / "reference", ROOT / "benchmarks" / "results"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text())
            p = data.get("provenance") or data
            return p.get("commit"), str(p.get("date", ""))[:10]
    return None, ""


def _git(*args: str) -> subprocess.CompletedProcess | None:
    """A git command in the repository (None when git cannot run here)."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None


def _is_ancestor(ancestor: str, commit: str) -> bool | None:
    """Whether ``ancestor`` is ``commit`` or precedes it (None: no history to tell)."""
    done = _git("merge-base", "--is-ancestor", ancestor, commit)
    return None if done is None or done.returncode not in (0, 1) else done.returncode == 0


def _source_then(file: str, source: str) -> dict[str, Any] | None:
    """The version of ``source`` that ``file`` was computed from (None: no history to tell).

    A file's provenance commit is the code it ran on. The source it read is the
    newest committed version of the source whose own run came at or before that
    commit (it may have been committed later than ``file``'s run started).
    """
    commit, name = _made(file)[0], source.split(":")[0]
    if not commit:
        return None
    for folder in ("leukolib/reference", "benchmarks/results"):
        log = _git("log", "--format=%H", "--", f"{folder}/{name}")
        if log is None or log.returncode != 0:
            return None
        for version in log.stdout.split():
            shown = _git("show", f"{version}:{folder}/{name}")
            try:
                data = json.loads(shown.stdout) if shown and shown.returncode == 0 else None
            except json.JSONDecodeError:
                continue
            made = ((data or {}).get("provenance") or data or {}).get("commit")
            if made and _is_ancestor(made, commit):
                return data
    return None


def _descends(file: str, source: str) -> bool:
    """Whether ``file`` was made at or after ``source``: git ancestry, else the dates.

    Without history (a shallow clone) a day decides, and the same day counts as after.
    """
    (commit, date), (ancestor, source_date) = _made(file), _made(source)
    if not commit or not ancestor:
        return False
    known = _is_ancestor(ancestor, commit)
    return date >= source_date if known is None else known


def _clean_then(file: str, source: str, shared: Path, cache: dict) -> bool:
    """Whether the runs ``file`` was computed from had a split free of straddling groups.

    Made at or after today's source (audited clean by the caller), it read today's
    runs. Made before it, it read the runs of an older version of the source
    (:func:`_source_then`), which is audited like today's; without the history to
    find that version, or without a split in it, it is not clean.
    """
    if _descends(file, source):
        return True
    then = _source_then(file, source)
    if then is None:
        return False
    if ":" in source:  # a U-Net run of the segmentation report
        dataset = source.split(":")[1]
        entry = then.get("results", {}).get("unet_runs", {}).get(dataset)
        return entry is not None and audit_unet(dataset, entry, then.get("provenance") or {},
                                                shared, cache)["clean"]
    report = then if "grid" in then else then.get("results", {})
    if "grid" not in report:
        return False
    return audit_classifier(source, report, shared, cache)["clean"]


def audit(shared: Path) -> dict[str, Any]:
    """Every shipped split-dependent result, checked (module docstring)."""
    from leukolib.data.duplicates import DEFAULT_RULE

    cache: dict = {}
    rows = []
    for folder in (ROOT / "leukolib" / "reference", ROOT / "benchmarks" / "results"):
        for path in sorted(folder.glob("classification_*_cpu*.json")):
            report = json.loads(path.read_text())
            if "grid" in report and report.get("dataset", {}).get("name") in FOLDERS:
                rows.append(audit_classifier(path.name, report, shared, cache))
    seg = json.loads((ROOT / "leukolib" / "reference" / "segmentation.json").read_text())
    for name, entry in sorted(seg["results"]["unet_runs"].items()):
        rows.append(audit_unet(name, entry, seg["provenance"], shared, cache))
    status = {r["file"]: r["clean"] for r in rows}
    derived = []
    for file, sources in DERIVED.items():
        dirty = [s for s in sources if not status.get(s, True)]
        # computed from the runs of an older version of its source: judged by that split
        stale = [s for s in sources if s not in dirty and not _clean_then(file, s, shared, cache)]
        derived.append({"file": file, "uses": sources, "commit": _made(file)[0],
                        "clean": not dirty and not stale, "leaky_sources": dirty + stale})
    return {"rule": DEFAULT_RULE.to_dict(), "splits": rows, "derived": derived,
            "n_leaky": sum(not r["clean"] for r in rows) + sum(not d["clean"] for d in derived)}


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) ``leukolib/reference/split_audit.json``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--check", action="store_true", help="compare with the committed audit")
    args = ap.parse_args(argv)
    from leukolib import reference

    result = audit(args.shared)
    if args.check:
        committed = reference.load("split_audit")["results"]
        if committed != json.loads(json.dumps(result)):
            print("leukolib/reference/split_audit.json is out of date: run "
                  "python benchmarks/split_audit.py", file=sys.stderr)
            return 1
        return 0
    reference.write("split_audit", result, "python benchmarks/split_audit.py", "cpu")
    for r in result["splits"]:
        print(f"{r['file']:48s} {r['dataset']:9s} seed {r['seed']}  grouped by "
              f"{' + '.join(r['grouped_by']):34s} straddling: test {len(r['across_test'])}, "
              f"folds {len(r['across_folds'])}")
    for d in result["derived"]:
        print(f"{d['file']:48s} uses {', '.join(d['uses'])}: "
              f"{'clean' if d['clean'] else 'made from leaky splits'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
