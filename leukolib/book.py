"""Execute the notebooks with papermill and build the Jupyter Book.

``make book`` runs ``python -m leukolib.book build`` which

1. executes every ``notebooks/NN_*.ipynb`` in order with papermill, passing
   the parameters ``profile``, ``dataset``, ``data_root``, ``output_dir`` and
   ``seed`` (all notebooks share one ``output_dir``, so a later notebook can
   read what an earlier one wrote), and stops at the first failing notebook;
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
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

__all__ = [
    "REPO_ROOT",
    "list_notebooks",
    "execute_notebooks",
    "install_cell_source",
    "sync_install_cells",
    "stage_book",
    "build_book",
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


def execute_notebooks(
    executed_dir: str | Path,
    parameters: dict[str, Any],
    notebooks: Sequence[Path] | None = None,
    timeout: int | None = None,
    display_root: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Execute notebooks in order with papermill.

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

    Returns
    -------
    list of dict
        ``notebook``, ``seconds`` per executed notebook.

    Raises
    ------
    RuntimeError
        At the first failing notebook, naming it and its executed copy.
    """
    import papermill as pm

    executed_dir = Path(executed_dir)
    executed_dir.mkdir(parents=True, exist_ok=True)
    if display_root is None:
        display_root = executed_dir.resolve().parent.parent
    shown = _display_paths(parameters, Path(display_root))
    if timeout is None:
        timeout = int(read_config().get("execute", {}).get("timeout", 1800))
    report = []
    for nb in notebooks or list_notebooks():
        out = executed_dir / nb.name
        t0 = time.perf_counter()
        print(f"[book] executing {nb.name} ...", flush=True)
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
        paths = {str(nb): _shown_path(str(nb), Path(display_root))}
        paths[str(out)] = _shown_path(str(out), Path(display_root))
        _collapse_injected(out, {**shown, **paths})
        dt = time.perf_counter() - t0
        print(f"[book] {nb.name}: {dt:.1f} s", flush=True)
        report.append({"notebook": nb.name, "seconds": round(dt, 1)})
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


# --- HTML hygiene: the pages as a reader gets them -------------------------------------------

_SKIP_TAGS = {"script", "style", "noscript", "template", "textarea"}
_CODE_TAGS = {"pre", "code", "kbd", "samp", "tt"}
_VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl",
    "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip

# A markdown table that was not rendered: a row "| a | b |", or a separator row
# "| --- | :-: |" (dashes possibly turned into en or em dashes by the typographer).
_DASHES = r":?[-\u2013\u2014]+:?"
_PIPE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_PIPE_SEPARATOR = re.compile(
    rf"^\s*\|?\s*{_DASHES}\s*(\|\s*{_DASHES}\s*)+\|?\s*$|\|\s*{_DASHES}\s*\|"
)
# An absolute path: a "/" that starts a path (not one inside a URL, "../a/b", "km/h" or
# "a/b/c") followed by at least two components; or a Windows drive path; or a file: URL.
_PATH_START = r"(?<![\w.:/~\\+\-])"
_ABS_PATH = re.compile(_PATH_START + r"/(?:[\w.@+\-]+/)+[\w.@+\-]*")
_WINDOWS_PATH = re.compile(r"(?<![\w/\\])[A-Za-z]:(?:\\\\?|/)[\w.$@+\-]+")
_FILE_URL = re.compile(r"\bfile:/[^\s\"'<>]*")
# Folders that only ever hold one machine's files: in a page, they are the build machine's.
MACHINE_PREFIXES = (
    "/tmp/", "/var/tmp/", "/var/folders/", "/private/", "/work/", "/home/", "/root/",
    "/Users/", "/mnt/", "/media/", "/opt/", "/srv/", "/scratch/", "/usr/", "/etc/",
)  # fmt: skip
# Documentation placeholders that look like absolute paths.
PLACEHOLDER_PREFIXES = ("/path/to/",)
_TRACEBACK = "Traceback (most recent call last)"


class _PageScanner(HTMLParser):
    """Collect, block by block, the text a reader sees, and the notebook error outputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # open elements, with what each one contributes to the counters below
        self.stack: list[tuple[str, dict[str, int]]] = []
        self.depth = {"skip": 0, "code": 0, "output": 0, "traceback": 0}
        self.prose: list[str] = []  # outside code and maths: where a raw table shows
        self.text: list[str] = []  # all visible text, code included
        # (prose, text, in a cell output, in a rendered error output)
        self.blocks: list[tuple[str, str, bool, bool]] = []
        self.errors: list[str] = []
        self.traceback_text: list[str] = []
        self.links: list[str] = []

    def _flush(self) -> None:
        prose, text = "".join(self.prose), "".join(self.text)
        if text.strip():
            self.blocks.append((prose, text, self.depth["output"] > 0, self.depth["traceback"] > 0))
        self.prose, self.text = [], []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key] or "")
        if a.get("id") == "papermill-error-cell" or "papermill-error-cell-tag" in classes:
            self.errors.append("papermill's error marker (a cell raised)")
        if tag in _BLOCK_TAGS:
            self._flush()
        if tag in _VOID_TAGS:
            return
        flags = {
            "skip": int(tag in _SKIP_TAGS),
            "code": int(tag in _CODE_TAGS or "math" in classes),
            "output": int("cell_output" in classes),
            "traceback": int("traceback" in classes),
        }
        if flags["traceback"] and not self.depth["traceback"]:
            self.traceback_text = []
        self.stack.append((tag, flags))
        for key, n in flags.items():
            self.depth[key] += n

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS or not any(t[0] == tag for t in self.stack):
            return
        while self.stack:
            name, flags = self.stack.pop()
            had_traceback = self.depth["traceback"]
            for key, n in flags.items():
                self.depth[key] -= n
            if had_traceback and not self.depth["traceback"]:
                lines = [ln for ln in "".join(self.traceback_text).splitlines() if ln.strip()]
                self.errors.append(f"an error output: {lines[-1].strip() if lines else ''}")
            if name == tag:
                break
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.depth["skip"]:
            return
        self.text.append(data)
        if not self.depth["code"]:
            self.prose.append(data)
        if self.depth["traceback"]:
            self.traceback_text.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def _excerpt(text: str, start: int, end: int, width: int = 30) -> str:
    left = text[max(0, start - width) : start].split("\n")[-1]
    right = text[end : end + width].split("\n")[0]
    return (left + text[start:end] + right).strip()


def _find_paths(text: str, roots: Sequence[str], anywhere: bool) -> list[tuple[int, int]]:
    """Spans of the build machine's absolute paths in ``text``.

    ``roots`` (the repository, the build folder, ...) and the
    :data:`MACHINE_PREFIXES` count everywhere, as do Windows drive paths and
    ``file:`` URLs; with ``anywhere`` (a cell output, which the build machine
    wrote), any absolute path counts.
    """
    spans = [m.span() for m in _FILE_URL.finditer(text)]
    spans += [m.span() for m in _WINDOWS_PATH.finditer(text)]
    for m in _ABS_PATH.finditer(text):
        path = m.group()
        if path.startswith(PLACEHOLDER_PREFIXES):
            continue
        if (
            anywhere
            or path.startswith(MACHINE_PREFIXES)
            or any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
        ):
            spans.append(m.span())
    return sorted(spans)


def check_html(html_dir: str | Path, roots: Iterable[str | Path] = ()) -> list[str]:
    """Problems a reader would see in the built book; an empty list when there are none.

    Scans every page of ``html_dir`` (not ``_static``) and reports, one entry
    per problem (``page: what: excerpt``):

    - a markdown table that did not render: lines like ``| a | b |`` or a
      separator row ``| --- |`` (also with the typographer's dashes) in the
      text outside code and maths;
    - an absolute path of the build machine anywhere in the text, code cells
      included: under ``roots``, the repository, the home folder or the
      :data:`MACHINE_PREFIXES` (``/tmp/``, ``/home/``, ...), a Windows drive
      path or a ``file:`` URL, and in a cell output any absolute path at all
      (URLs, relative paths and ``/path/to/`` placeholders are fine); also a
      link or image that points at such a path;
    - a notebook error output (a traceback as myst-nb renders it, papermill's
      error marker, or a printed ``Traceback (most recent call last)``).

    Parameters
    ----------
    html_dir : path
        The built site (``_build/html``).
    roots : iterable of path
        More folders of the build machine (the staging and build folders).

    Returns
    -------
    list of str
        The problems, page by page.

    Examples
    --------
    >>> import tempfile
    >>> site = Path(tempfile.mkdtemp())
    >>> _ = (site / "page.html").write_text("<p>| a | b |</p><p>see /tmp/x/y.json</p>")
    >>> for problem in check_html(site):
    ...     print(problem)
    page.html: raw markdown table (not rendered): '| a | b |'
    page.html: absolute path of the build machine: 'see /tmp/x/y.json'
    """
    html_dir = Path(html_dir)
    root_list = [str(REPO_ROOT), str(Path.home()), *(str(r) for r in roots)]
    root_list = [r for r in dict.fromkeys(root_list) if len(Path(r).parts) > 2]
    problems: list[str] = []
    for page in sorted(html_dir.rglob("*.html")):
        rel = page.relative_to(html_dir).as_posix()
        if rel.split("/")[0] in ("_static", "_sources", "_images"):
            continue
        scanner = _PageScanner()
        scanner.feed(page.read_text(encoding="utf-8", errors="replace"))
        scanner.close()
        found: dict[str, None] = {}  # ordered, without repeats
        for prose, text, in_output, in_error in scanner.blocks:
            for line in prose.splitlines():
                if _PIPE_ROW.match(line) or _PIPE_SEPARATOR.search(line):
                    found[f"raw markdown table (not rendered): {line.strip()[:80]!r}"] = None
                    break
            for start, end in _find_paths(text, root_list, anywhere=in_output):
                found[
                    f"absolute path of the build machine: {_excerpt(text, start, end)[:120]!r}"
                ] = None
            if in_output and not in_error and _TRACEBACK in text:
                last = [ln.strip() for ln in text.splitlines() if ln.strip()][-1]
                found[f"a printed traceback: {last[:120]!r}"] = None
        for link in scanner.links:
            if link.startswith("file:") or _find_paths(link, root_list, anywhere=False):
                found[f"a link to the build machine's files: {link[:120]!r}"] = None
        for error in scanner.errors:
            found[error] = None
        problems += [f"{rel}: {what}" for what in found]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m leukolib.book {build,execute,sync}``."""
    p = argparse.ArgumentParser(prog="python -m leukolib.book", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("build", "execute"):
        s = sub.add_parser(name, help=f"{name} the book" if name == "build" else "run notebooks")
        s.add_argument("--profile", default="cpu")
        s.add_argument("--dataset", default="synthetic")
        s.add_argument("--data-root", default="")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--build-dir", default=str(REPO_ROOT / "_build"))
        s.add_argument("--notebooks", nargs="*", help="only these notebooks (paths)")
    s = sub.add_parser("sync", help="stamp the install cells from _config.yml")
    s.add_argument("--check", action="store_true", help="only report stale notebooks")
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
    executed = build / "executed"
    if not args.notebooks and executed.exists():
        shutil.rmtree(executed)  # a full run: no executed copy of an earlier run may be staged
    params = {
        "profile": args.profile,
        "dataset": args.dataset,
        "data_root": str(Path(args.data_root).resolve()) if args.data_root else "",
        "output_dir": str(build / "outputs"),
        "seed": args.seed,
    }
    notebooks = [Path(n).resolve() for n in args.notebooks] if args.notebooks else None
    t0 = time.perf_counter()
    try:
        report = execute_notebooks(executed, params, notebooks)
    except RuntimeError as exc:
        print(f"[book] {exc}", file=sys.stderr)
        return 1
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
        print(f"[book] built {html} in {time.perf_counter() - t0:.0f} s; its pages are clean")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
