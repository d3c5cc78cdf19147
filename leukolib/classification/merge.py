"""One classifier run from parts trained fold by fold, on several machines.

The paper's grid is 8 models x k folds, units that train independently:
``train_classifier(..., fold=K)`` (``leukolib train-classifier --fold K``)
trains one into a run directory, which stays ``"partial"``. Jobs that share
the units (several GPUs, a Slurm array, Dask or Ray workers) each write a
directory of their own: ``run.json`` is rewritten whole after each fold, so
two processes training folds into one directory would drop each other's
folds. :func:`merge_classifier_runs` (``leukolib merge-runs``) then gathers the
parts of one model into one run directory::

    for k in range(10):  # each on its own machine
        train_classifier(ds, f"parts/{k}", input="raw", fold=k, profile="paper")
    merge_classifier_runs([f"parts/{k}" for k in range(10)], "runs/raw-relu-linear")

The parts must share the configuration, the pixels (dataset fingerprints),
the labels and the split, and hold every fold exactly once. The merged
directory is what one call training every fold would have written: the same
folds' weights and logits, and ``logits.npz``, metrics and summary from the
same :func:`~leukolib.classification.results.finish_run`; only the timings
differ, and ``merged_from`` records each part (its folds, device, versions).
:func:`merge_grid_runs` does the same for grid folders (``train_grid``,
``--grid``), model by model.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leukolib.classification.grid import grid_keys
from leukolib.classification.results import finish_run
from leukolib.classification.training import RUN_FORMAT, fold_logits_path
from leukolib.runs import RunDirectory, RunError, now

__all__ = ["merge_classifier_runs", "merge_grid_runs"]


@dataclass
class _Plan:
    """A checked merge, nothing written yet: the record without its results, each fold's part."""

    out: RunDirectory
    record: dict[str, Any]
    owners: dict[int, RunDirectory]


def merge_classifier_runs(parts: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                          overwrite: bool = False) -> dict[str, Any]:
    """Merge the parts of one classifier run, trained fold by fold, into ``out``.

    Parameters
    ----------
    parts : sequence of path
        Run directories of :func:`~leukolib.classification.training.train_classifier`
        (``fold=K``, partial, or complete), each fold in exactly one of them.
    out : path
        The merged run directory: new or empty; not one of the parts.
    overwrite : bool
        Replace the run files already in ``out``.

    Returns
    -------
    dict
        The complete run's record, as written to ``out/run.json``.

    Raises
    ------
    RunError
        Naming the part and the problem: no classifier run, another
        configuration, other pixels, labels or split, a fold in two parts, a
        fold in none, a fold's file missing; or ``out`` not empty. Nothing is
        written then.
    """
    t0 = time.perf_counter()
    return _write(_plan(parts, out, overwrite), overwrite, t0)


def merge_grid_runs(parts: Sequence[str | os.PathLike], out: str | os.PathLike, *,
                    keys: Sequence[str] | None = None,
                    overwrite: bool = False) -> dict[str, dict[str, Any]]:
    """Merge grid folders (``train_grid(..., fold=K)``) model by model into ``out/<key>``.

    Parameters
    ----------
    parts : sequence of path
        Grid folders, each holding runs in sub-folders named by key.
    out : path
        The merged grid folder.
    keys : sequence of str, optional
        Only these models; default: every model found in a part.
    overwrite : bool
        As :func:`merge_classifier_runs`.

    Returns
    -------
    dict
        ``key -> run record``, in grid order.

    Raises
    ------
    RunError
        As :func:`merge_classifier_runs`, for any model, before anything is written.
    """
    t0 = time.perf_counter()
    folders = [Path(p).expanduser() for p in parts]

    def holders(key: str) -> list[Path]:
        return [f / key for f in folders if RunDirectory(f / key, RUN_FORMAT).record_path.is_file()]

    wanted = list(keys) if keys is not None else [k for k in grid_keys() if holders(k)]
    if not wanted:
        raise RunError(f"no classifier run in a sub-folder of {', '.join(map(str, folders))}")
    plans = {k: _plan(holders(k), Path(out) / k, overwrite) for k in wanted}  # check all first
    return {k: _write(plan, overwrite, t0) for k, plan in plans.items()}


def _read_part(part: RunDirectory) -> dict[str, Any]:
    record = part.read()
    if record is None:
        raise RunError(f"{part.path}: holds no classifier run")
    if not record.get("dataset", {}).get("labels"):
        raise RunError(f"{part.path}: its record has no class labels (written by an older "
                       "leukolib); train its folds again")
    return record


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """What the parts of one run share, by name."""
    return {"configuration": record["config"],
            "pixels (dataset fingerprints)": record["dataset"].get("fingerprints"),
            "class labels": record["dataset"]["labels"], "split": record["split"]}


def _check_same(part: Path, record: dict[str, Any], first: Path, ref: dict[str, Any]) -> None:
    mine, theirs = _identity(record), _identity(ref)
    for what, value in mine.items():
        if value == theirs[what]:
            continue
        detail = ""
        if what == "configuration":
            differ = sorted(k for k in set(value) | set(theirs[what])
                            if value.get(k) != theirs[what].get(k))
            detail = f" (differs in: {', '.join(differ)})"
        raise RunError(f"{part}: another {what} than {first}{detail}; only the parts of one "
                       "run merge")


def _fold_files(part: RunDirectory, k: int) -> tuple[Path, Path]:
    return part.weights(k), fold_logits_path(part, k)


def _owners(dirs: list[RunDirectory], records: list[dict[str, Any]]) -> dict[int, RunDirectory]:
    """Each fold's part, checked: once, all of them, with its files."""
    owners: dict[int, RunDirectory] = {}
    for part, record in zip(dirs, records, strict=True):
        for k in sorted(int(f["fold"]) for f in record["folds"]):
            if k in owners:
                raise RunError(f"fold {k} is in {owners[k].path} and in {part.path}: "
                               "give each fold once")
            missing = [str(p) for p in _fold_files(part, k) if not p.is_file()]
            if missing:
                raise RunError(f"{part.path}: fold {k}'s {' and '.join(missing)} missing")
            owners[k] = part
    n = int(records[0]["config"]["folds"])
    absent = [str(k) for k in range(n) if k not in owners]
    if absent:
        raise RunError(f"fold(s) {', '.join(absent)} of {n} in none of the parts "
                       f"({', '.join(str(d.path) for d in dirs)}); train them with fold=K "
                       "(train-classifier --fold K) first")
    return owners


def _target(out: str | os.PathLike, dirs: list[RunDirectory], overwrite: bool) -> RunDirectory:
    target = RunDirectory(out, RUN_FORMAT)
    path = target.path
    if any(path.resolve() == d.path.resolve() for d in dirs):
        raise RunError(f"{path}: is one of the parts; merge into another directory")
    if path.exists() and not path.is_dir():
        raise RunError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise RunError(f"{path}: not empty; choose a new directory or pass overwrite=True")
    return target


def _plan(parts: Sequence[str | os.PathLike], out: str | os.PathLike, overwrite: bool) -> _Plan:
    """Check the parts and ``out``, and draft the merged record; nothing is written."""
    dirs = [RunDirectory(p, RUN_FORMAT) for p in parts]
    if not dirs:
        raise RunError(f"no parts to merge into {out}")
    seen = [d.path.resolve() for d in dirs]
    twice = sorted({str(p) for p in seen if seen.count(p) > 1})
    if twice:
        raise RunError(f"{', '.join(twice)}: given more than once")
    records = [_read_part(d) for d in dirs]
    for part, record in zip(dirs[1:], records[1:], strict=True):
        _check_same(part.path, record, dirs[0].path, records[0])
    owners = _owners(dirs, records)
    entries = {int(f["fold"]): f for r in records for f in r["folds"]}
    folds = [entries[k] for k in sorted(entries)]
    record = {key: value for key, value in records[0].items()
              if key not in ("format", "test", "oof", "summary")}  # finish_run writes these
    record.update(
        status="running", created=min(r["created"] for r in records), folds=folds,
        timings={"prepare_seconds": [s for r in records for s in r["timings"]["prepare_seconds"]],
                 "fold_seconds": [f["seconds"] for f in folds]},
        merged_from=[{"path": str(d.path), "folds": sorted(int(f["fold"]) for f in r["folds"]),
                      **{k: r[k] for k in ("device", "cuda", "versions") if k in r}}
                     for d, r in zip(dirs, records, strict=True)],
        updated=now())
    return _Plan(_target(out, dirs, overwrite), record, owners)


def _copy(src: Path, dst: Path) -> None:
    """Copy atomically (a temporary file, then a rename), as the run's own writes."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _write(plan: _Plan, overwrite: bool, t0: float) -> dict[str, Any]:
    out = plan.out
    if overwrite and out.path.is_dir():
        out.clear()  # the run's own files only
    out.path.mkdir(parents=True, exist_ok=True)
    for k, part in sorted(plan.owners.items()):
        for src in _fold_files(part, k):
            _copy(src, out.path / src.name)
    finish_run(plan.record, out, time.perf_counter() - t0)
    return out.read()
