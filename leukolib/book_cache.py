"""The book's execution cache: a prose edit rebuilds the book in seconds.

``make book`` (:mod:`leukolib.book`) looks every notebook up here before
executing it. A notebook's **key** hashes what decides its outputs:

* its code cells (source, and the tags that change execution), not its markdown;
* the parameters, paths as the book shows them (relative to the build);
* the installed ``leukolib`` package: every file of it (:func:`library_fingerprint`),
  but for the two book helpers that run after the cache on every build;
* the versions of the main dependencies (:func:`dependency_versions`);
* the data (:func:`data_fingerprint`): the synthetic generator's settings, a
  public dataset's pinned archive, or a folder's files with their sizes and
  contents;
* the keys of the notebooks it reads (:data:`DEPENDS_ON`), so a change upstream
  re-executes everything downstream of it, and nothing else.

A notebook whose key is in the cache is not executed: its cached outputs are
merged into its current cells (:func:`merge_outputs`), so an edited sentence,
label or reference shows at once, and its ``output_dir/<notebook>.json`` is put
back. A notebook that is executed is stored under its key.

The trained runs the notebooks share (U-Net, classifiers) live beside the
notebooks, in ``runs/`` (``$LEUKOLIB_RUNS`` during execution,
:mod:`leukolib.run_cache`), keyed by their configuration and data: a notebook
re-executed finds them trained.

Layout of the cache folder (``_build/cache``)::

    notebooks/<notebook>/<key>/notebook.ipynb   executed copy (injected cell collapsed)
    notebooks/<notebook>/<key>/results.json     its output_dir/<notebook>.json
    notebooks/<notebook>/<key>/entry.json       the key's parts, seconds, date
    runs/<run name>-<config key>/               trained runs

Why not ``jupyter-cache``, Jupyter Book's own cache: it keys a notebook by its
code cells and kernel alone, and the key here needs what lies outside the
notebook (the library, the dependencies, the data, the upstream notebooks); its
matching and merging expect the cached notebook to hold the very code cells of
the source, which papermill's injected-parameters cell breaks; and it executes
notebooks itself, where this book's are executed by papermill. A folder of
plain files addressed by a SHA-256 key does all that is needed, in a page of
code, and travels as is in the Pages workflow's ``actions/cache``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from leukolib.data.fingerprint import file_sha256
from leukolib.run_cache import ENV_VAR as RUNS_ENV_VAR
from leukolib.run_cache import digest

__all__ = [
    "DEPENDS_ON",
    "ExecutionCache",
    "data_fingerprint",
    "dependency_versions",
    "library_fingerprint",
    "merge_outputs",
    "notebook_keys",
    "upstream",
]

FORMAT = "leukolib.book-cache/1"

#: The earlier notebooks each notebook reads (through their trained runs); a
#: notebook not listed reads every earlier one. 04 and 07 use chapter 3's U-Net;
#: 06 and 07 chapter 5's eight classifiers (06 also its hard-attention runs).
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "01_datasets": (),
    "02_handcrafted_segmentation": (),
    "03_deep_segmentation": (),
    "04_ensemble_evaluation": ("03_deep_segmentation",),
    "05_classification": (),
    "06_explanations": ("05_classification",),
    "07_clusters_robustness": ("03_deep_segmentation", "05_classification"),
    "08_claims": (),  # reads committed results only
}

#: Cell tags that change what papermill executes (the others only change display).
EXECUTION_TAGS = frozenset({"parameters", "injected-parameters", "raises-exception",
                            "skip-execution"})

#: Package files no notebook runs: applied to every build after the cache (the
#: front page, the checks of the HTML), so editing them re-executes nothing.
OUTSIDE_KERNEL = frozenset({"book_checks.py", "book_results.py"})

#: Versions in the key beyond :func:`leukolib.runs.library_versions`: the tables,
#: figures and the execution machinery.
MORE_VERSIONS = ("pandas", "scipy", "matplotlib", "pillow", "papermill", "ipykernel",
                 "nbformat", "myst-nb")

#: Entries kept per notebook (the most recently used).
KEEP = 3

_INJECTED = "injected-parameters"
_PARTS = ("code", "kernel", "parameters", "library", "versions", "data", "upstream")


# --------------------------------------------------------------------------- the key


def upstream(name: str, order: Sequence[str],
             depends: Mapping[str, Sequence[str]] = DEPENDS_ON) -> tuple[str, ...]:
    """The notebooks ``name`` reads, among ``order`` (every earlier one when not listed).

    Examples
    --------
    >>> order = ["03_deep_segmentation", "04_ensemble_evaluation", "08_new"]
    >>> upstream("04_ensemble_evaluation", order)
    ('03_deep_segmentation',)
    >>> upstream("08_new", order)
    ('03_deep_segmentation', '04_ensemble_evaluation')
    """
    earlier = list(order[: list(order).index(name)])
    if name not in depends:
        return tuple(earlier)
    late = [d for d in depends[name] if d not in earlier and d in order]
    if late:
        raise ValueError(f"{name} reads {late}, which do not come before it")
    return tuple(d for d in depends[name] if d in earlier)


def code_fingerprint(nb: Any) -> str:
    """SHA-256 of a notebook's code cells: source and execution tags, in order."""
    cells = [(c.source, sorted(EXECUTION_TAGS.intersection(c.get("metadata", {}).get("tags", []))))
             for c in nb.cells if c.cell_type == "code"]
    return digest(cells)


def library_fingerprint(package: str | os.PathLike | None = None) -> str:
    """SHA-256 of the package's files (code and shipped data), but :data:`OUTSIDE_KERNEL`.

    Parameters
    ----------
    package : path, optional
        The package folder (default: the installed ``leukolib``).
    """
    if package is None:
        import leukolib

        package = Path(leukolib.__file__).parent
    package = Path(package)
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix != ".pyc" and p.relative_to(package).as_posix()
                   not in OUTSIDE_KERNEL)
    return digest([(p.relative_to(package).as_posix(), file_sha256(p)) for p in files])


def dependency_versions() -> dict[str, str]:
    """Python's and the main dependencies' versions (what the outputs depend on)."""
    from importlib.metadata import PackageNotFoundError, version

    from leukolib.runs import library_versions

    out = library_versions()
    for pkg in MORE_VERSIONS:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def file_tree_fingerprint(root: str | os.PathLike) -> dict[str, Any]:
    """Number of files, bytes and one SHA-256 over every file's path, size and contents."""
    root = Path(root)
    if not root.is_dir():
        return {"root": "missing"}
    files = sorted(p for p in root.rglob("*") if p.is_file())
    rows = [(p.relative_to(root).as_posix(), p.stat().st_size, file_sha256(p)) for p in files]
    return {"files": len(rows), "bytes": sum(r[1] for r in rows), "digest": digest(rows)}


def data_fingerprint(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What identifies the data a build's notebooks read, from its parameters.

    Synthetic smears: the generator and the profile's number and size of smears
    per stage, with the seed. A public dataset fetched by name (empty
    ``data_root``): its archive's address, pinned to a commit and checked
    against leukolib's manifest on every fetch. A folder: its files, sizes and
    contents (:func:`file_tree_fingerprint`).
    """
    name, root = parameters.get("dataset"), parameters.get("data_root")
    if not name:
        return {}
    if root:
        return {"dataset": name, **file_tree_fingerprint(root)}
    if name == "synthetic":
        from leukolib.profiles import get_profile

        prof = get_profile(parameters.get("profile", "cpu"))
        return {"dataset": name, "generator": "leukolib.data.synthetic",
                "seed": parameters.get("seed"),
                "smears": {"data": [prof.data.synthetic_images, prof.data.synthetic_size],
                           "classification": [prof.classification.synthetic_images,
                                              prof.classification.synthetic_size]}}
    from leukolib.data.download import SOURCES

    source = SOURCES.get(str(name).lower().replace("-", "_"))
    return {"dataset": name, "fetched": source[0] if source else None}


def notebook_keys(notebooks: Sequence[Path], context: Mapping[str, Any],
                  depends: Mapping[str, Sequence[str]] = DEPENDS_ON) -> dict[str, dict[str, Any]]:
    """Every notebook's key and its parts, in order (upstream keys first).

    Parameters
    ----------
    notebooks : sequence of Path
        The book's notebooks, in order.
    context : mapping
        What every notebook shares: ``parameters``, ``library``, ``versions``, ``data``.
    depends : mapping
        :data:`DEPENDS_ON`.

    Returns
    -------
    dict
        ``name -> {"key": str, "parts": dict}``.
    """
    import nbformat

    order = [nb.stem for nb in notebooks]
    keys: dict[str, dict[str, Any]] = {}
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        parts = {"format": FORMAT, "code": code_fingerprint(nb),
                 "kernel": nb.metadata.get("kernelspec", {}).get("name"),
                 **{k: context.get(k) for k in ("parameters", "library", "versions", "data")},
                 "upstream": {u: keys[u]["key"] for u in upstream(path.stem, order, depends)}}
        keys[path.stem] = {"key": digest(parts), "parts": parts}
    return keys


def changed_parts(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What differs between two keys' parts, in words (``"upstream 05_classification"``).

    Examples
    --------
    >>> old = {"code": "a", "upstream": {"03": "x"}}
    >>> changed_parts(old, {"code": "b", "upstream": {"03": "y"}})
    ['code', 'upstream 03']
    """
    if old is None:
        return []
    out = [p for p in _PARTS if p != "upstream" and old.get(p) != new.get(p)]
    before, after = old.get("upstream") or {}, new.get("upstream") or {}
    return out + [f"upstream {u}" for u in sorted(set(before) | set(after))
                  if before.get(u) != after.get(u)]


# --------------------------------------------------------------------------- merging


def _tags(cell: Any) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def merge_outputs(source: Any, executed: Any) -> Any:
    """The source notebook (its markdown, cell tags) with the executed copy's outputs.

    Parameters
    ----------
    source : NotebookNode
        The notebook as it is now.
    executed : NotebookNode
        A copy executed by papermill from the same code cells (its injected
        parameters cell is put back after the cell tagged ``parameters``).

    Returns
    -------
    NotebookNode

    Raises
    ------
    ValueError
        When the two do not hold the same code cells.
    """
    merged = copy.deepcopy(source)
    ran = [c for c in executed.cells if c.cell_type == "code" and _INJECTED not in _tags(c)]
    mine = [c for c in merged.cells if c.cell_type == "code"]
    if [c.source for c in ran] != [c.source for c in mine]:
        raise ValueError("the executed copy holds other code cells than the notebook")
    for cell, done in zip(mine, ran, strict=True):
        cell.outputs = done.get("outputs", [])
        cell.execution_count = done.get("execution_count")
        for k in ("papermill", "execution"):  # timings of the run that produced the outputs
            if k in done.get("metadata", {}):
                cell.metadata[k] = done.metadata[k]
    injected = [c for c in executed.cells if _INJECTED in _tags(c)]
    if injected:
        at = next((i + 1 for i, c in enumerate(merged.cells) if "parameters" in _tags(c)), 0)
        merged.cells.insert(at, copy.deepcopy(injected[0]))
    for k in ("papermill", "language_info", "widgets"):
        if k in executed.metadata:
            merged.metadata[k] = copy.deepcopy(executed.metadata[k])
    return merged


# --------------------------------------------------------------------------- the store


class ExecutionCache:
    """The cache folder: executed notebooks by key, and the shared trained runs.

    Parameters
    ----------
    root : path
        The folder (``_build/cache`` for ``make book``); created when needed.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def runs_dir(self) -> Path:
        """Where the notebooks' trained runs live (``$LEUKOLIB_RUNS`` while they execute)."""
        return self.root / "runs"

    def entry(self, name: str, key: str) -> Path:
        """The folder of one notebook's entry."""
        return self.root / "notebooks" / name / key

    def context(self, parameters: Mapping[str, Any],
                shown: Mapping[str, Any] | None = None,
                package: str | os.PathLike | None = None) -> dict[str, Any]:
        """What all notebooks' keys share (see :func:`notebook_keys`).

        ``parameters`` as given to papermill; ``shown`` the same as the book
        shows them (paths relative to the build), which is what is keyed.
        """
        return {"parameters": dict(shown if shown is not None else parameters),
                "library": library_fingerprint(package), "versions": dependency_versions(),
                "data": data_fingerprint(parameters)}

    def restore(self, source: Path, key: str, out: Path,
                output_dir: str | os.PathLike | None = None) -> bool:
        """Write the cached outputs of ``source`` under ``key`` to ``out``; False on a miss.

        The notebook's cached ``<name>.json`` is put back into ``output_dir``.
        """
        import nbformat

        entry = self.entry(source.stem, key)
        if not (entry / "entry.json").is_file():
            return False
        try:
            merged = merge_outputs(nbformat.read(source, as_version=4),
                                   nbformat.read(entry / "notebook.ipynb", as_version=4))
        except (OSError, ValueError) as exc:  # a damaged entry is a miss, and is replaced
            print(f"[book] {source.name}: cache entry unusable ({exc}); executing", flush=True)
            return False
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(merged, out)
        results = entry / "results.json"
        if output_dir is not None and results.is_file():
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy2(results, Path(output_dir) / f"{source.stem}.json")
        os.utime(entry / "entry.json")  # recently used: kept by prune()
        return True

    def store(self, name: str, key: str, parts: Mapping[str, Any], executed: Path,
              results: Path | None, seconds: float) -> Path:
        """Keep an executed notebook (and its results JSON) under its key; prune old entries."""
        entry = self.entry(name, key)
        tmp = entry.with_name(f".{key}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        shutil.copy2(executed, tmp / "notebook.ipynb")
        if results is not None and results.is_file():
            shutil.copy2(results, tmp / "results.json")
        record = {"format": FORMAT, "notebook": name, "key": key, "seconds": round(seconds, 1),
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "parts": dict(parts)}
        (tmp / "entry.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)  # whole entries only: an interrupted store leaves a .tmp folder
        self.prune(name)
        return entry

    def entries(self, name: str) -> list[Path]:
        """A notebook's entries, most recently used first."""
        folder = self.root / "notebooks" / name
        found = [p for p in folder.glob("[!.]*") if (p / "entry.json").is_file()]
        return sorted(found, key=lambda p: (p / "entry.json").stat().st_mtime, reverse=True)

    def latest_parts(self, name: str) -> dict[str, Any] | None:
        """The key parts of a notebook's most recently used entry (to say what changed)."""
        for entry in self.entries(name):
            try:
                return json.loads((entry / "entry.json").read_text())["parts"]
            except (OSError, ValueError, KeyError):
                continue
        return None

    def prune(self, name: str, keep: int = KEEP) -> None:
        """Delete a notebook's entries but the ``keep`` most recently used."""
        for old in self.entries(name)[keep:]:
            shutil.rmtree(old, ignore_errors=True)

    @contextmanager
    def shared_runs(self) -> Iterator[Path]:
        """Set ``$LEUKOLIB_RUNS`` to :attr:`runs_dir` (the kernels inherit it), then restore it."""
        before = os.environ.get(RUNS_ENV_VAR)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        os.environ[RUNS_ENV_VAR] = str(self.runs_dir.resolve())
        try:
            yield self.runs_dir
        finally:
            if before is None:
                os.environ.pop(RUNS_ENV_VAR, None)
            else:
                os.environ[RUNS_ENV_VAR] = before
