"""Reference results on real data, measured by the benchmarks and shipped with the package.

The book runs by default on synthetic smears (nothing to download), but its
readers want to know how the methods do on real data: the shared datasets
(JTSC, ALL-IDB2, SMC_IDB) that the developers have and a reader may not. The
scripts of ``benchmarks/`` measure that under the ``cpu`` profile and write
one JSON file per stage here (``segmentation.json``, ``classification.json``
...); notebooks and the book's front page render them, each table saying
where its numbers came from (:func:`provenance`). They are package data, so
a notebook opened in Colab shows them too.

Every file holds ``provenance`` (the command, the date, the commit, the
library versions, the profile) and ``results``.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["available", "load", "provenance", "source_commit", "split_note", "split_status",
           "write"]


def _path(name: str) -> Path:
    return Path(str(files(__name__).joinpath(f"{name}.json")))


def available(name: str) -> bool:
    """Whether the reference results of a stage are shipped."""
    return _path(name).is_file()


def load(name: str) -> dict[str, Any]:
    """The reference results of a stage (``"segmentation"``, ``"classification"`` ...).

    Raises
    ------
    FileNotFoundError
        When the benchmark of that stage has not been run and committed.
    """
    path = _path(name)
    if not path.is_file():
        raise FileNotFoundError(f"no reference results {name!r} shipped with leukolib "
                                f"(run the benchmark of that stage: benchmarks/)")
    return json.loads(path.read_text())


def provenance(name: str) -> str:
    """One sentence saying where the reference results of a stage come from.

    Examples
    --------
    >>> provenance("nothing-here")
    'no reference results: the benchmark was not run'
    """
    if not available(name):
        return "no reference results: the benchmark was not run"
    p = load(name)["provenance"]
    said = (f"measured with `{p['command']}` under the {p['profile']} profile on {p['date']} "
            f"(leukolib {p['versions'].get('leukolib', '?')}, commit {p['commit']})")
    again = p.get("reanalysis")
    if again:  # intervals recomputed from the stored counts, nothing retrained
        said += f"; its intervals recomputed with `{again['command']}` on {again['date']}"
    note = split_note(*_audited_files(name))
    return f"{said}. {note}" if note else said


def _audited_files(name: str) -> list[str]:
    """The audit's entries of a shipped file (a report, or each U-Net run of ``segmentation``)."""
    if not available("split_audit") or name == "split_audit":
        return []
    results = load("split_audit")["results"]
    return [r["file"] for r in [*results["splits"], *results["derived"]]
            if r["file"] == f"{name}.json" or r["file"].startswith(f"{name}.json:")]


def split_status(file: str) -> dict[str, Any]:
    """Whether a shipped result's splits kept near duplicates together (``split_audit.json``).

    Parameters
    ----------
    file : str
        A shipped result's file name (``"classification_jtsc_cpu.json"``), or
        ``"segmentation.json:<dataset>"`` for one U-Net run of the segmentation report.

    Returns
    -------
    dict
        ``clean`` (bool), ``grouped_by``, ``across_test`` and ``across_folds``
        (the straddling near-duplicate groups, by image name) or, for a result
        computed from others' runs, ``leaky_sources``; ``{"clean": True,
        "audited": False}`` for a file the audit does not list.

    Examples
    --------
    >>> split_status("no-such-file.json")
    {'clean': True, 'audited': False}
    """
    if not available("split_audit"):
        return {"clean": True, "audited": False}
    results = load("split_audit")["results"]
    for row in [*results["splits"], *results["derived"]]:
        if row["file"] == file:
            return {**row, "audited": True}
    return {"clean": True, "audited": False}


def split_note(*files: str) -> str:
    """One sentence for a page showing these shipped results: empty when their splits are clean.

    Examples
    --------
    >>> split_note("no-such-file.json")
    ''
    """
    leaky = []
    for f in files:
        st = split_status(f)
        if st["clean"]:
            continue
        if "leaky_sources" in st:
            leaky.append(f"{f} (computed from the runs of {', '.join(st['leaky_sources'])})")
        else:
            n_test, n_folds = len(st.get("across_test", [])), len(st.get("across_folds", []))
            leaky.append(f"{f} ({n_test} near-duplicate group(s) across its test split, "
                         f"{n_folds} across its folds)")
    if not leaky:
        return ""
    return ("Made before near-duplicate images were grouped: the same cell, shifted or "
            "re-exposed, lies on both sides of a split in " + "; ".join(leaky) + ". These "
            "numbers are optimistic by that leak until they are regenerated "
            "(`python benchmarks/split_audit.py` lists the pairs).")


def source_commit() -> str:
    """The short git commit of the source tree (``"unknown"`` outside a checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write(name: str, results: dict[str, Any], command: str, profile: str,
          folder: str | os.PathLike | None = None) -> Path:
    """Write a stage's reference results with their provenance (used by ``benchmarks/``)."""
    from leukolib.runs import library_versions, now, write_json

    commit = source_commit()
    target = Path(folder) / f"{name}.json" if folder else _path(name)
    payload = {"provenance": {"command": command, "date": now()[:10], "commit": commit,
                              "profile": profile, "versions": library_versions()},
               "results": results}
    return write_json(target, payload)
