"""What every notebook of the book does first and last.

A notebook's first code cell (tagged ``parameters``) sets ``profile``,
``dataset``, ``data_root``, ``output_dir`` and ``seed``; it then calls
:func:`setup`, which seeds every generator, picks the device, creates the
output folder and loads the dataset under the profile's size limits. At the
end :func:`save_results` writes the notebook's key numbers to
``output_dir/<notebook>.json``, which papermill runs, tests and the book's
tables read back.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from leukolib.data import Dataset, profile_dataset
from leukolib.device import seed_everything, select_device
from leukolib.profiles import Profile, get_profile
from leukolib.run_cache import run_folder
from leukolib.runs import library_versions, write_json

if TYPE_CHECKING:
    from IPython.display import HTML

__all__ = ["Run", "claim_box", "committed_banner", "glue", "measured", "real_data_findings",
           "save_results", "sentence", "setup"]


@dataclass
class Run:
    """The context of one notebook run.

    Attributes
    ----------
    name : str
        Notebook name (the JSON file is ``output_dir/<name>.json``).
    profile : Profile
    dataset : Dataset
        Loaded and limited to the profile's size.
    output_dir : Path
    seed : int
    device : str
    params : dict
        The parameters as given (recorded in the JSON).
    """

    name: str
    profile: Profile
    dataset: Dataset
    output_dir: Path
    seed: int
    device: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def unet_run_dir(self) -> Path:
        """Where this run's U-Net is trained (notebook 03) and found (notebooks 04 and 07).

        ``output_dir/unet_<dataset>_<profile>_seed<seed>``, or under ``$LEUKOLIB_RUNS``
        keyed by the profile's segmentation settings and the data
        (:func:`leukolib.run_cache.run_folder`).
        """
        name = f"unet_{self.dataset.name}_{self.profile.name}_seed{self.seed}"
        settings = {"segmentation": self.profile.segmentation, "seed": self.seed}
        return run_folder(self.output_dir, name, settings, self.dataset)

    def banner(self, classifiers: Dataset | None = None) -> HTML:
        """What this page ran on: profile, dataset, number of images, seed (an HTML box).

        Shown at the top of every chapter, so that a reader never takes a live
        number of a smoke or synthetic build for a measurement on real data:
        those are committed results, shown in :func:`measured` boxes.

        Parameters
        ----------
        classifiers : Dataset, optional
            The classifiers' own view of the data, when the page uses it beside
            the run's dataset (the segmentation's): both sizes are then named.
        """
        from leukolib.data.datasets import display_name

        if classifiers is None:
            data = f"{escape(display_name(self.dataset.name))} ({len(self.dataset)} images)"
        else:
            data = (f"{escape(display_name(classifiers.name))} ({len(classifiers)} images for "
                    f"the classifiers, {len(self.dataset)} for the segmentation)")
        device = "the CPU" if self.device == "cpu" else f"device <code>{escape(self.device)}</code>"
        what = (f"the <code>{escape(self.profile.name)}</code> profile, {data}, "
                f"seed {self.seed}, on {device}")
        body = (f"This page ran on {what}. Its live numbers, tables and figures are for that data "
                f"only. Results measured on real data are committed results: they are shown in "
                f"boxes titled <em>Measured on ...</em>, with the commit that made them.")
        return _box("What this page ran on", body, "note")

    def path(self, filename: str) -> Path:
        """A file inside this run's output folder."""
        return self.output_dir / filename

    def save(self, results: dict[str, Any]) -> str:
        """Write ``results`` (plus parameters and versions) to ``<name>.json``.

        Returns the file's name relative to ``output_dir`` (what a notebook
        prints: never a path of the machine that ran it).
        """
        path = save_results(self.output_dir, self.name, results, params=self.params)
        return self.relative(path)

    def relative(self, path: str | os.PathLike) -> str:
        """``path`` relative to ``output_dir``: ``../`` for a shared run folder beside it.

        Unchanged when the two have no relative path (another drive).
        """
        try:
            return os.path.relpath(Path(path).resolve(), self.output_dir.resolve())
        except ValueError:
            return str(path)


def setup(
    name: str,
    profile: str | Profile = "cpu",
    dataset: str = "synthetic",
    data_root: str | os.PathLike | None = None,
    output_dir: str | os.PathLike = "outputs",
    seed: int = 0,
    device: str | None = None,
    **dataset_kwargs: Any,
) -> Run:
    """Prepare a notebook run: seeds, device, output folder and dataset.

    Parameters
    ----------
    name : str
        The notebook's name, e.g. ``"01_datasets"``.
    profile : str or Profile
        ``"smoke"``, ``"cpu"`` or ``"paper"``.
    dataset : str
        A name known to :func:`leukolib.data.load_dataset`.
    data_root : path, optional
        The dataset folder (not needed for ``"synthetic"``; for ``"jtsc"`` and
        ``"cellavision"`` an empty one means the cached copy, fetched when
        missing: :func:`leukolib.data.fetch`).
    output_dir : path
        Where the notebook writes its JSON and figures (created).
    seed : int
        Seed of every random generator.
    device : str, optional
        Force ``"cpu"`` or ``"cuda"``; default: CUDA when present.
    **dataset_kwargs
        Extra loader arguments (e.g. ``shortcut`` for synthetic smears).

    Returns
    -------
    Run
    """
    prof = get_profile(profile)
    seed_everything(seed)
    out = Path(output_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    ds = profile_dataset(dataset, data_root, prof, seed, **dataset_kwargs)
    params = {
        "profile": prof.name,
        "dataset": dataset,
        "data_root": None if data_root is None else str(data_root),
        "output_dir": str(out),
        "seed": seed,
        **{k: v for k, v in dataset_kwargs.items() if isinstance(v, int | float | str | bool)},
    }
    return Run(name, prof, ds, out, seed, select_device(device), params)


def save_results(
    output_dir: str | os.PathLike,
    name: str,
    results: dict[str, Any],
    params: dict[str, Any] | None = None,
) -> Path:
    """Write a notebook's key numbers to ``output_dir/<name>.json``.

    The file is the notebook's own record and is replaced on every run of
    the notebook. NumPy scalars and arrays are converted to JSON types.

    Returns
    -------
    Path
        The JSON file written.
    """
    payload = {
        "notebook": name,
        "params": params or {},
        "versions": library_versions(),
        "results": results,
    }
    return write_json(Path(output_dir) / f"{name}.json", payload)


def _inline(text: str) -> str:
    """Plain text to HTML, with ``code`` spans kept (provenance lines quote commands)."""
    parts = escape(str(text)).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


_BLOCK_START = re.compile(r"\s*<(p|ul|ol|dl|div|details|table|pre|img|figure|h\d)\b", re.IGNORECASE)


def _box(title: str, body: str, kind: str = "note") -> HTML:
    from IPython.display import HTML

    # bare text and inline tags become one paragraph (the theme lays an admonition's loose
    # children apart); a body of block elements is kept as it is
    if not _BLOCK_START.match(body):
        body = f"<p>{body}</p>"
    return HTML(f'<div class="admonition {kind} leukolib-box"><p class="admonition-title">'
                f"{escape(title)}</p>{body}</div>")


def committed_banner() -> HTML:
    """The banner of a page that shows committed results only (nothing ran on the build's data)."""
    return _box("What this page shows",
                "Only committed results, measured on real data by the benchmarks; nothing on this "
                "page ran on this build's data, whatever its profile.", "note")


def measured(
    dataset: str,
    items: Sequence[Any],
    source: str = "",
    profile: str = "cpu",
    commit: str | None = None,
    alt: str = "a figure of committed results",
) -> HTML:
    """Committed real-data results in one titled box: "Measured on ALL-IDB2 with the cpu profile".

    Parameters
    ----------
    dataset : str
        The dataset's name (shown by its display name).
    items : sequence
        What the box holds, in order: DataFrames or Stylers (tables), PNG
        bytes (a figure, described by ``alt``), or strings (a sentence;
        backticks mark code).
    source : str
        Where the numbers come from (command, date, commit): the box's last line.
    profile : str
        The profile the benchmark ran under.
    commit : str, optional
        Named in the title when given.
    alt : str
        The text of a figure for a reader who cannot see it.

    Returns
    -------
    IPython.display.HTML
    """
    from leukolib.data.datasets import display_name
    from leukolib.tables import readable

    parts = []
    for item in items:
        if isinstance(item, pd.DataFrame):  # labels in words, missing values as tables show them
            parts.append(readable(item).to_html(na_rep="n/a"))
        elif hasattr(item, "to_html"):  # a Styler (styled: numbers formatted, none missing)
            parts.append(item.to_html())
        elif isinstance(item, bytes):  # a PNG figure, inlined
            data = base64.b64encode(item).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}" '
                         'style="max-width: 100%">')
        else:
            parts.append(f"<p>{_inline(item)}</p>")
    if source:
        parts.append(f'<p class="leukolib-source">{_inline(source)}</p>')
    title = f"Measured on {display_name(dataset)} with the {profile} profile"
    if commit:
        title += f", commit {commit}"
    return _box(title, "".join(parts), "tip")


def real_data_findings(chapter: int) -> HTML:
    """A chapter's "What we found on real data": sentences computed from the committed results.

    See :func:`leukolib.findings.chapter_findings`; the box names the files
    and commits the sentences come from.
    """
    from leukolib import findings

    data = findings.shipped(findings.CHAPTER_SOURCES[chapter])
    main, details = (findings.chapter_main(chapter, data),
                     findings.chapter_details(chapter, data))
    if not main + details:
        return _box("What we found on real data",
                    "<p>No committed real-data results are shipped with this copy of leukolib "
                    "(run the scripts of <code>benchmarks/</code>).</p>", "note")

    def listed(sentences: list[str]) -> str:
        return "<ul>" + "".join(f"<li>{_inline(s)}</li>" for s in sentences) + "</ul>"

    # how the defaults were chosen and what bounds them: folded, the main text stays short
    n = f"{len(details)} finding{'s' if len(details) != 1 else ''}"
    folded = (f"<details><summary>How the defaults were chosen, and what bounds them ({n}, "
              f"folded)</summary>{listed(details)}</details>" if details else "")
    source = findings.source_line(findings.CHAPTER_SOURCES[chapter], data)
    return _box("What we found on real data (committed results)",
                f'{listed(main) if main else ""}{folded}'
                f'<p class="leukolib-source">{_inline(source)}</p>', "tip")


def claim_box(number: int, claim: Any) -> HTML:
    """One claim of the paper (:class:`leukolib.findings.Claim`), a titled box with its verdict.

    The box is green for *supported*, yellow for *cannot tell*, red for *not supported*.
    """
    kind = {"supported": "tip", "cannot tell": "warning"}.get(claim.verdict, "danger")
    rows = [("The paper", claim.paper), ("Our evidence on real data", claim.evidence),
            ("Verdict", f"{claim.verdict}: {claim.why}"),
            ("What would change it", claim.would_change), ("Source", claim.source)]
    body = "".join(f"<p><strong>{escape(k)}</strong>: {_inline(v)}</p>" for k, v in rows)
    return _box(f"Claim {number}: {claim.claim}", body, kind)


def sentence(template: str, missing: str, **values: Any) -> str:
    """``template`` filled with ``values``, or ``missing`` when one of them is not a number.

    What a chapter glues into its prose where a number may not exist on the
    page's data (a constant map on a one-cell grid, a degenerate bootstrap):
    the reader gets a sentence saying why, never "nan".

    Examples
    --------
    >>> sentence("it covers {a:.2f}.", "not measured here.", a=0.5)
    'it covers 0.50.'
    >>> sentence("it covers {a:.2f}.", "not measured here.", a=float("nan"))
    'not measured here.'
    """
    def number(v: Any) -> bool:
        return isinstance(v, int | float | np.number) and bool(np.isfinite(v))

    return template.format(**values) if all(number(v) for v in values.values()) else missing


def glue(name: str, value: Any, display: bool = False) -> Any:
    """Make ``value`` available to the notebook's markdown as ``{glue:}`name```.

    With myst-nb (the book build) this is :func:`myst_nb.glue`; elsewhere
    (Colab, JupyterLab without myst-nb) the value is only displayed when
    ``display`` is true. Used so that no number is typed into prose. NumPy
    scalars are glued as Python numbers (their repr, ``np.float64(0.5)``,
    cannot be formatted by ``{glue:text}`name:.2f```).
    """
    if isinstance(value, np.generic):
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # outside the book: nothing to glue into
        if display:
            from IPython.display import display as show

            show(value)
        return value
    _glue(name, value, display=display)
    return value
