"""Execute the notebooks with papermill and build the Jupyter Book.

``make book`` runs ``python -m leukolib.book build`` which

1. executes every ``notebooks/NN_*.ipynb`` in order with papermill, passing
   the parameters ``profile``, ``dataset``, ``data_root``, ``output_dir`` and
   ``seed`` (all notebooks share one ``output_dir``, so a later notebook can
   read what an earlier one wrote), and stops at the first failing notebook;
   a notebook whose code, parameters, library, dependencies, data and upstream
   notebooks are unchanged is not executed again but taken from the execution
   cache in ``_build/cache`` with its current markdown
   (:mod:`leukolib.book_cache`; ``--no-cache``, ``make book FRESH=1``, executes
   and trains everything afresh);
2. collapses papermill's injected-parameters cell (tag ``hide-cell``), so the
   page shows which parameters produced it without cluttering it, with its
   paths shown relative to the folder that holds ``_build``;
3. stages the book sources (``_config.yml``, ``book/``) and the executed
   copies in ``_build/src`` with the repository's layout, so the Colab and
   Binder buttons point at the clean notebooks in ``notebooks/``;
4. runs ``jupyter-book build`` with warnings as errors (``-W``) into
   ``_build/html``;
5. checks the built pages as a reader gets them (:func:`check_html`): no
   markdown table left as raw ``| a | b |`` text, no absolute path of the
   build machine, no notebook error output; any problem fails the build.

The install cell of every notebook is stamped from ``repository.url`` in
``_config.yml`` (``python -m leukolib.book sync``), the one place that URL is
kept.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leukolib.book_checks import check_html, page_lengths

__all__ = [
    "check_html",
    "REPO_ROOT",
    "list_notebooks",
    "execute_notebooks",
    "install_cell_source",
    "sync_install_cells",
    "stage_book",
    "build_book",
    "book_key",
    "check_html",
    "main",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_TAG = "colab-install"


def list_notebooks(folder: str | Path = REPO_ROOT / "notebooks") -> list[Path]:
    """The book's notebooks (``NN_name.ipynb``), in order."""
    nbs = sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not nbs:
        raise FileNotFoundError(f"{folder}: no notebooks named NN_*.ipynb")
    return nbs


def read_config(root: str | Path = REPO_ROOT) -> dict[str, Any]:
    """The book's ``_config.yml``."""
    import yaml

    return yaml.safe_load((Path(root) / "_config.yml").read_text())


def install_cell_source(repository_url: str) -> str:
    """The idempotent install cell: installs leukolib in Colab only, once."""
    return (
        "# Colab only: install leukolib from its repository (a no-op elsewhere and on re-runs)\n"
        "import importlib.util\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules and importlib.util.find_spec("leukolib") is None:\n'
        f'    %pip install -q "leukolib @ git+{repository_url}"'
    )


def sync_install_cells(
    notebooks: Sequence[Path] | None = None, root: str | Path = REPO_ROOT, check: bool = False
) -> list[Path]:
    """Stamp every notebook's install cell (tag ``colab-install``) from ``_config.yml``.

    Parameters
    ----------
    notebooks : sequence of Path, optional
        Default: all of ``notebooks/``.
    root : path
        Repository root (holds ``_config.yml``).
    check : bool
        Only report the notebooks whose install cell is missing or stale.

    Returns
    -------
    list of Path
        Notebooks that were (or, with ``check``, would be) changed.
    """
    import nbformat

    url = read_config(root)["repository"]["url"]
    source = install_cell_source(url)
    changed = []
    for path in notebooks or list_notebooks(Path(root) / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if INSTALL_TAG in c.get("metadata", {}).get("tags", [])]
        if len(cells) != 1:
            raise ValueError(
                f"{path}: expected one cell tagged {INSTALL_TAG!r}, found {len(cells)}"
            )
        if cells[0].source != source:
            changed.append(path)
            if not check:
                cells[0].source = source
                nbformat.write(nb, path)
    return changed


def _shown_path(value: str, display_root: Path) -> str:
    """An absolute path as the book shows it: relative, never the build machine's."""
    for base in (display_root, REPO_ROOT):
        try:
            return Path(value).resolve().relative_to(base.resolve()).as_posix() or "."
        except ValueError:
            continue
    try:
        return Path(os.path.relpath(value, REPO_ROOT)).as_posix()
    except ValueError:  # another drive (Windows)
        return f".../{Path(value).name}"


def _display_paths(parameters: dict[str, Any], display_root: Path) -> dict[str, str]:
    """Absolute paths among the parameters -> how the executed copy shows them."""
    return {
        v: _shown_path(v, display_root)
        for v in parameters.values()
        if isinstance(v, str) and v and os.path.isabs(v)
    }


def _replace_strings(obj: Any, shown: dict[str, str]) -> Any:
    if isinstance(obj, str):
        for real, display in sorted(shown.items(), key=lambda kv: -len(kv[0])):
            obj = obj.replace(real, display)
        return obj
    if isinstance(obj, dict):
        return {k: _replace_strings(v, shown) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_strings(v, shown) for v in obj]
    return obj


def _collapse_injected(path: Path, shown: dict[str, str] | None = None) -> None:
    """Collapse the injected-parameters cell; show its paths (and papermill's) relative.

    The executed copy is only ever displayed (the Colab and Binder buttons
    open the clean notebooks), so the build machine's absolute paths in the
    injected cell and in papermill's metadata are replaced by ``shown``.
    """
    import nbformat

    shown = shown or {}
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            cell.metadata["tags"] = [*tags, "hide-cell"]
            header = "# Parameters of this run (injected by papermill)\n"
            if shown:
                header += "# (paths relative to the folder that holds _build)\n"
            cell.source = header + _replace_strings(cell.source, shown)
    if "papermill" in nb.metadata:
        nb.metadata["papermill"] = _replace_strings(dict(nb.metadata["papermill"]), shown)
    nbformat.write(nb, path)


def _with_upstream(notebooks: Sequence[Path]) -> list[Path]:
    """``notebooks`` and the book's other notebooks beside them, in order (for their keys)."""
    folders = {nb.parent for nb in notebooks}
    siblings = {p.resolve() for f in folders for p in f.glob("[0-9][0-9]_*.ipynb")}
    return sorted(siblings | {nb.resolve() for nb in notebooks}, key=lambda p: p.name)


def _execute_one(nb: Path, out: Path, parameters: dict[str, Any], timeout: int,
                 shown: dict[str, str], display_root: Path) -> None:
    """Run one notebook with papermill; collapse its injected cell, paths shown relative."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(nb),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(nb.parent),
            progress_bar=False,
            execution_timeout=timeout,
        )
    except Exception as exc:
        raise RuntimeError(
            f"notebook {nb.name} failed; see the executed copy {out}:\n{exc}"
        ) from exc
    paths = {str(nb): _shown_path(str(nb), display_root)}
    paths[str(out)] = _shown_path(str(out), display_root)
    _collapse_injected(out, {**shown, **paths})


def execute_notebooks(
    executed_dir: str | Path,
    parameters: dict[str, Any],
    notebooks: Sequence[Path] | None = None,
    timeout: int | None = None,
    display_root: str | Path | None = None,
    cache: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Execute notebooks in order with papermill, or take them from the execution cache.

    Parameters
    ----------
    executed_dir : path
        Where the executed copies go (same file names).
    parameters : dict
        Passed to every notebook (``profile``, ``dataset``, ``data_root``,
        ``output_dir``, ``seed``).
    notebooks : sequence of Path, optional
        Default: all of ``notebooks/``.
    timeout : int, optional
        Per-cell timeout in seconds (default: ``execute.timeout`` of
        ``_config.yml``).
    display_root : path, optional
        The executed copies show the absolute paths among ``parameters``
        relative to this folder (default: ``executed_dir/../..``, the
        repository for ``_build/executed``), never the build machine's.
    cache : path, optional
        The execution cache's folder (:class:`~leukolib.book_cache.ExecutionCache`):
        a notebook whose key is there is not executed, one executed is stored
        there, and the trained runs are shared in its ``runs/``. Default: none,
        everything is executed.

    Returns
    -------
    list of dict
        ``notebook``, ``status`` (``"cached"`` or ``"executed"``), ``seconds``
        (execution; 0 when cached) and, when executed past an older entry,
        ``changed`` (what differs from it) per notebook.

    Raises
    ------
    RuntimeError
        At the first failing notebook, naming it and its executed copy.
    """
    from leukolib.book_cache import ExecutionCache, changed_parts, notebook_keys

    executed_dir = Path(executed_dir)
    executed_dir.mkdir(parents=True, exist_ok=True)
    display_root = Path(display_root or executed_dir.resolve().parent.parent)
    shown = _display_paths(parameters, display_root)
    if timeout is None:
        timeout = int(read_config().get("execute", {}).get("timeout", 1800))
    notebooks = list(notebooks or list_notebooks())
    store = None if cache is None else ExecutionCache(cache)
    keys: dict[str, dict[str, Any]] = {}
    if store is not None:
        keys = notebook_keys(_with_upstream(notebooks),
                             store.context(parameters, _replace_strings(parameters, shown)))
    output_dir = parameters.get("output_dir")
    report = []
    with store.shared_runs() if store is not None else contextlib.nullcontext():
        for nb in notebooks:
            out = executed_dir / nb.name
            key = keys.get(nb.stem, {})
            if store is not None and store.restore(nb, key["key"], out, output_dir):
                print(f"[book] {nb.name}: cached", flush=True)
                report.append({"notebook": nb.name, "status": "cached", "seconds": 0.0})
                continue
            t0 = time.perf_counter()
            print(f"[book] executing {nb.name} ...", flush=True)
            _execute_one(nb, out, parameters, timeout, shown, display_root)
            dt = time.perf_counter() - t0
            row = {"notebook": nb.name, "status": "executed", "seconds": round(dt, 1)}
            if store is not None:
                row["changed"] = changed_parts(store.latest_parts(nb.stem), key["parts"])
                results = Path(output_dir) / f"{nb.stem}.json" if output_dir else None
                store.store(nb.stem, key["key"], key["parts"], out, results, dt)
            why = f"; changed: {', '.join(row['changed'])}" if row.get("changed") else ""
            print(f"[book] {nb.name}: executed ({dt:.0f} s{why})", flush=True)
            report.append(row)
    return report


def stage_book(executed_dir: str | Path, staging: str | Path, root: str | Path = REPO_ROOT) -> Path:
    """Lay out the book sources and the executed notebooks for jupyter-book."""
    root, staging, executed_dir = Path(root), Path(staging), Path(executed_dir)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    shutil.copy2(root / "_config.yml", staging / "_config.yml")
    shutil.copytree(root / "book", staging / "book")
    shutil.copy2(root / "book" / "_toc.yml", staging / "_toc.yml")
    shutil.copytree(executed_dir, staging / "notebooks", ignore=shutil.ignore_patterns("*.json"))
    from leukolib.book_results import write_glance, write_gpu_check

    write_glance(staging / "book")  # the front page's results, from the shipped reference JSONs
    write_gpu_check(staging / "book")  # the GPU measurements of "Run the paper's protocol"
    return staging


def build_book(staging: str | Path, output: str | Path) -> Path:
    """Run ``jupyter-book build`` (warnings are errors); return the HTML folder."""
    output = Path(output)
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build",
        str(staging),
        "--path-output",
        str(output),
        "-W",
        "-n",
        "--keep-going",
    ]
    print("[book] " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    html = output / "_build" / "html"
    if not (html / "index.html").exists():
        raise RuntimeError(f"jupyter-book produced no {html / 'index.html'}")
    return html


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m leukolib.book", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    helps = {"build": "build the book", "execute": "run notebooks",
             "key": "print one key of all notebooks' cache keys (for CI caches)"}
    for name, text in helps.items():
        s = sub.add_parser(name, help=text)
        s.add_argument("--profile", default="cpu")
        s.add_argument("--dataset", default="synthetic")
        s.add_argument("--data-root", default="")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--build-dir", default=str(REPO_ROOT / "_build"))
        if name != "key":
            s.add_argument("--notebooks", nargs="*", help="only these notebooks (paths)")
            s.add_argument("--no-cache", action="store_true",
                           help="execute every notebook and train every model afresh "
                           "(the cache is neither read nor written)")
    s = sub.add_parser("sync", help="stamp the install cells from _config.yml")
    s.add_argument("--check", action="store_true", help="only report stale notebooks")
    return p


def _parameters(args: argparse.Namespace, build: Path) -> dict[str, Any]:
    return {
        "profile": args.profile,
        "dataset": args.dataset,
        "data_root": str(Path(args.data_root).resolve()) if args.data_root else "",
        "output_dir": str(build / "outputs"),
        "seed": args.seed,
    }


def book_key(parameters: dict[str, Any], build: str | Path) -> str:
    """One SHA-256 of every notebook's cache key: equal keys, nothing to execute.

    What the Pages workflow keys its ``actions/cache`` of ``_build/cache`` with.
    """
    from leukolib.book_cache import ExecutionCache, notebook_keys
    from leukolib.run_cache import digest

    shown = _display_paths(parameters, Path(build).resolve().parent)
    store = ExecutionCache(Path(build) / "cache")
    keys = notebook_keys(list_notebooks(),
                         store.context(parameters, _replace_strings(parameters, shown)))
    return digest({name: k["key"] for name, k in keys.items()})


def _summary(report: list[dict[str, Any]]) -> str:
    cached = sum(r["status"] == "cached" for r in report)
    seconds = sum(r["seconds"] for r in report)
    return f"{cached} cached, {len(report) - cached} executed ({seconds:.0f} s)"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m leukolib.book {build,execute,key,sync}``."""
    p = _parser()
    args = p.parse_args(argv)

    if args.cmd == "sync":
        changed = sync_install_cells(check=args.check)
        for c in changed:
            print(f"{'stale' if args.check else 'updated'}: {c}")
        return 1 if (args.check and changed) else 0

    build = Path(args.build_dir).resolve()
    if build.name != "_build":
        # jupyter-book writes into <path-output>/_build/html: the folder must be called _build
        p.error(f"--build-dir must be a folder named _build, got {build}")
    params = _parameters(args, build)
    if args.cmd == "key":
        print(book_key(params, build))
        return 0
    executed = build / "executed"
    if not args.notebooks and executed.exists():
        shutil.rmtree(executed)  # a full run: no executed copy of an earlier run may be staged
    if args.no_cache and not args.notebooks and (build / "outputs").exists():
        shutil.rmtree(build / "outputs")  # afresh: no run of an earlier build is resumed
    notebooks = [Path(n).resolve() for n in args.notebooks] if args.notebooks else None
    t0 = time.perf_counter()
    try:
        report = execute_notebooks(executed, params, notebooks,
                                   cache=None if args.no_cache else build / "cache")
    except RuntimeError as exc:
        print(f"[book] {exc}", file=sys.stderr)
        return 1
    print(f"[book] notebooks: {_summary(report)}", flush=True)
    (build / "outputs").mkdir(parents=True, exist_ok=True)
    (build / "outputs" / "execution.json").write_text(
        json.dumps({"parameters": params, "notebooks": report}, indent=2) + "\n"
    )
    if args.cmd == "build":
        staging = stage_book(executed, build / "src")
        html = build_book(staging, build.parent)
        problems = check_html(html, roots=[build, staging])
        if problems:
            print(f"[book] {html}: {len(problems)} problem(s) a reader would see:", file=sys.stderr)
            for problem in problems:
                print(f"[book]   {problem}", file=sys.stderr)
            return 1
        for page, n in page_lengths(html).items():  # reported; enforced once chapters are cut
            over = f"  OVER {' and '.join(n['over'])}" if n["over"] else ""
            print(f"[book]   {page}: {n['words']} words, {n['tables']} tables, {n['figures']} "
                  f"figures, about {n['minutes']} min to read{over}")
        print(f"[book] built {html} in {time.perf_counter() - t0:.0f} s; its pages are clean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
