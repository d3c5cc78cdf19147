"""The built book as a reader gets it: checks of its HTML pages.

:func:`check_html` scans every page of a jupyter-book build and reports what
a reader must not see: markdown tables that did not render (raw ``| a | b |``
text), absolute paths of the machine that built the book, notebook error
outputs, and confidence intervals of zero width (``1.000 [1.000, 1.000]``, a
table whose ``CI low`` equals its ``CI high``): a finite sample never gives
one, so it is a wrong interval or a degenerate bootstrap printed as if it
were one; tables whose cells run together, and chapters whose main text is
over :data:`CHAPTER_LIMITS`. ``python -m leukolib.book build`` runs it after jupyter-book and
fails when it finds anything; the test suite runs it on the smoke build.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["CHAPTER_LIMITS", "check_html", "page_lengths"]

#: A chapter's banner (:meth:`leukolib.notebook.Run.banner`, or the committed-only one).
BANNERS = ("What this page ran on", "What this page shows")
#: The length a chapter's main text should keep to (folded blocks excluded): words, tables.
CHAPTER_LIMITS = {"words": 3000, "tables": 10}
#: Reading speed of the "Time to learn" estimate, and the minutes a figure adds.
WORDS_PER_MINUTE = 200
MINUTES_PER_FIGURE = 0.5
_TIME_TO_LEARN = re.compile(r"Time to learn\s*:\s*(?:about\s+)?(\d+)\s*min")
# "nan" printed where a number should be (a glued NaN, a formatted missing value)
_NAN = re.compile(r"(?<![\w.])nan(?![\w])")

REPO_ROOT = Path(__file__).resolve().parents[1]


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

# An interval as the book prints it, its two bounds captured: "0.81 [0.75, 0.86]" (an
# estimate, then its bounds in brackets), or after the words "interval", "CI" or
# "confidence": "[0.75, 0.86]", "(0.75, 0.86)", "0.75 to 0.86".
_NUMBER = r"[+\-\u2212]?\d+(?:\.\d+)?"
_DECIMAL = r"[+\-\u2212]?\d+\.\d+"
_BRACKETED = re.compile(rf"{_DECIMAL}\s*\[\s*({_DECIMAL})\s*,\s*({_DECIMAL})\s*\]")
_NAMED = re.compile(
    rf"(?:\binterval|\bCI|\bconfidence)\b[^.;:\n\[\]()]{{0,30}}?"
    rf"(?:\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]|\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)"
    rf"|\b({_NUMBER})\s+to\s+({_NUMBER})\b)",
    re.IGNORECASE,
)
# Table columns holding an interval's bounds: "CI low" / "CI high", "ci_low" / "ci_high",
# "iou_low" / "iou_high", "gray CI low" / "gray CI high" ...
_LOW_HEADER = re.compile(r"(?<![a-z])low(?![a-z])", re.IGNORECASE)
# Two numbers of a table cell printed without a separator ("0.9230.915"): a decimal with
# three or more digits glued to the next one. Version numbers ("1.26.4") do not match.
_GLUED = re.compile(r"(?<![\d.])[+\-\u2212]?\d\.\d{3,}[+\-\u2212]?\d\.\d")
# A data frame printed as text: pandas' footer, or a header wrapped with a trailing "\".
_TEXT_FRAME = re.compile(r"\[\d+ rows x \d+ columns\]|^\s*\S+(?:\s{2,}\S+)+\s+\\$", re.M)


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


def _value(text: str) -> float | None:
    """A number as printed (a sign, the typographer's minus), else None."""
    try:
        return float(text.strip().replace("\u2212", "-"))
    except ValueError:
        return None


def _zero_width(text: str) -> list[str]:
    """The intervals of zero width printed in ``text``, as excerpts."""
    found = []
    for pattern in (_BRACKETED, _NAMED):
        for m in pattern.finditer(text):
            bounds = [g for g in m.groups() if g is not None]
            low, high = (_value(b) for b in bounds)
            if low is not None and low == high:
                found.append(_excerpt(text, *m.span()))
    return found


class _TableScanner(HTMLParser):
    """Every table of a page as a grid of cell texts (row and column spans expanded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.rows: list[list[str]] | None = None
        self.spans: dict[int, tuple[int, str]] = {}  # column -> (rows left, text) of a rowspan
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.colspan = self.rowspan = 1
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "table":
            self.rows, self.spans = [], {}
        elif tag == "tr" and self.rows is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
            self.colspan = int(a.get("colspan") or 1)
            self.rowspan = int(a.get("rowspan") or 1)

    def _place(self, text: str, colspan: int, rowspan: int) -> None:
        assert self.row is not None
        while len(self.row) in self.spans:  # a cell of a row above spans down to here
            self._carry()
        for _ in range(colspan):
            if rowspan > 1:
                self.spans[len(self.row)] = (rowspan - 1, text)
            self.row.append(text)

    def _carry(self) -> None:
        assert self.row is not None
        left, text = self.spans.pop(len(self.row))
        if left > 1:
            self.spans[len(self.row)] = (left - 1, text)
        self.row.append(text)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in ("td", "th") and self.cell is not None:
            self._place(" ".join("".join(self.cell).split()), self.colspan, self.rowspan)
            self.cell = None
        elif tag == "tr" and self.row is not None and self.rows is not None:
            while len(self.row) in self.spans:
                self._carry()
            self.rows.append(self.row)
            self.row = None
        elif tag == "table" and self.rows is not None:
            self.tables.append(self.rows)
            self.rows = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None and not self.skip:
            self.cell.append(data)


def _zero_width_rows(table: list[list[str]]) -> list[str]:
    """Rows of a table whose interval columns (``... low`` beside ``... high``) are equal."""
    found: list[str] = []
    pairs: list[tuple[int, int, str]] = []
    for header in table:
        names = {text: i for i, text in enumerate(header)}
        for text, i in names.items():
            match = _LOW_HEADER.search(text)
            if match:
                high = text[:match.start()] + "high" + text[match.end():]
                j = next((k for t, k in names.items() if t.lower() == high.lower()), None)
                if j is not None:
                    pairs.append((i, j, text))
    for row in table:
        for i, j, name in pairs:
            if max(i, j) < len(row):
                low, high = _value(row[i]), _value(row[j])
                if low is not None and low == high:
                    label = " ".join(t for t in row[:2] if _value(t) is None)
                    found.append(f"{label}: {name} = {row[i]}, {row[j]}".strip())
    return found


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
      error marker, or a printed ``Traceback (most recent call last)``);
    - a chapter (a page under ``notebooks/``) without its banner saying
      what the page ran on, whose "Time to learn" is off by more than half
      the reading time of its main text (:func:`page_lengths`) and 3 minutes,
      or whose main text (folded blocks and code excluded) is over
      :data:`CHAPTER_LIMITS` (3,000 words, 10 tables);
    - a table whose cells run together: a cell holding two numbers without
      a separator (``0.9230.915``), or a data frame printed as text in an
      output (pandas' ``[5 rows x 9 columns]`` footer, or its header wrapped
      with a trailing backslash);
    - ``nan`` in the text outside code (a missing number glued or formatted
      into a sentence or a table);
    - a confidence interval of zero width, in the text (prose and cell
      outputs, not code): an estimate followed by equal bounds
      (``1.000 [1.000, 1.000]``, ``+0.000 [+0.000, +0.000]``), or equal bounds
      after "interval", "CI" or "confidence" (``95 % interval 1.000 to
      1.000``, ``CI [0.5, 0.5]``); or in a table, a row whose ``... low``
      and ``... high`` columns (``CI low`` and ``CI high``, ``ci_low`` and
      ``ci_high`` ...) show the same number. An exact interval of a
      proportion is never of zero width, and a degenerate bootstrap is shown
      as no interval (:func:`leukolib.tables.format_interval`).

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
    >>> _ = (site / "page.html").write_text("<p>| a | b |</p><p>see /tmp/x/y.json</p>"
    ...                                     "<p>accuracy 1.000 [1.000, 1.000]</p>")
    >>> for problem in check_html(site):
    ...     print(problem)
    page.html: raw markdown table (not rendered): '| a | b |'
    page.html: absolute path of the build machine: 'see /tmp/x/y.json'
    page.html: an interval of zero width: 'accuracy 1.000 [1.000, 1.000]'
    >>> _ = (site / "page.html").write_text("<p>between nan and 0.5</p><pre>x = nan</pre>")
    >>> check_html(site)
    ["page.html: 'nan' where a number should be: 'between nan and 0.5'"]
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
        html = page.read_text(encoding="utf-8", errors="replace")
        scanner.feed(html)
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
            m = _TEXT_FRAME.search(text) if in_output else None
            if m:
                found["a table printed as text (its columns run together or wrap): "
                      f"{_excerpt(text, *m.span())[:80]!r}; display the DataFrame"] = None
            for excerpt in _zero_width(text if in_output else prose):
                found[f"an interval of zero width: {excerpt[:120]!r}"] = None
            m = _NAN.search(prose)  # once per block: the excerpt shows its neighbours
            if m:
                excerpt = _excerpt(prose, *m.span())[:120]
                found[f"'nan' where a number should be: {excerpt!r}"] = None
        tables = _TableScanner()
        tables.feed(html)
        tables.close()
        for table in tables.tables:
            for row in _zero_width_rows(table):
                found[f"an interval of zero width in a table: {row[:120]!r}"] = None
            for cell in _glued_cells(table):
                found[f"a table whose cells run together: {cell[:120]!r}"] = None
        for link in scanner.links:
            if link.startswith("file:") or _find_paths(link, root_list, anywhere=False):
                found[f"a link to the build machine's files: {link[:120]!r}"] = None
        for error in scanner.errors:
            found[error] = None
        if rel.startswith("notebooks/"):
            length = _LengthScanner()
            length.feed(html)
            length.close()
            said = _TIME_TO_LEARN.search(" ".join(text for _, text, _, _ in scanner.blocks))
            measured = _minutes(length)
            if said and abs(int(said.group(1)) - measured) > max(3.0, 0.5 * measured):
                found[f"'Time to learn' says {said.group(1)} minutes; the page reads in about "
                      f"{measured:.0f} ({WORDS_PER_MINUTE} words a minute, "
                      f"{MINUTES_PER_FIGURE} per figure)"] = None
            over = _over_limits(length)
            if over:
                counts = _counts(length)
                said_over = ", ".join(f"{counts[k]} {k} (at most {CHAPTER_LIMITS[k]})"
                                      for k in over)
                found[f"main text over the chapter's limits: {said_over}; fold the details "
                      "({dropdown}, a hide-output cell) or move them to an appendix page"] = None
        if rel.startswith("notebooks/") and not any(
                banner in text for _, text, _, _ in scanner.blocks for banner in BANNERS):
            found["no banner saying what the page ran on (Run.banner() after setup)"] = None
        problems += [f"{rel}: {what}" for what in found]
    return problems




class _LengthScanner(HTMLParser):
    """A page's main text: words outside code and folded blocks, tables, figures."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words = self.tables = self.figures = 0
        self.depth = {"skip": 0, "code": 0, "folded": 0, "main": 0}
        self.stack: list[tuple[str, dict[str, int]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            if tag == "img" and self.depth["main"] and not self.depth["folded"]:
                self.figures += 1
            return
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        flags = {
            "skip": int(tag in _SKIP_TAGS),
            "code": int(tag in _CODE_TAGS or "math" in classes or "cell_input" in classes),
            # a dropdown, a <details> or a cell folded by its tags
            "folded": int(tag == "details" or "dropdown" in classes or "toggle" in classes
                          or "tag_hide-output" in classes or "tag_hide-cell" in classes),
            "main": int(tag == "article" or a.get("role") == "main"),
        }
        self.stack.append((tag, flags))
        for key, n in flags.items():
            self.depth[key] += n
        if tag == "table" and self.depth["main"] and not self.depth["folded"]:
            self.tables += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID_TAGS or not any(t[0] == tag for t in self.stack):
            return
        while self.stack:
            name, flags = self.stack.pop()
            for key, n in flags.items():
                self.depth[key] -= n
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        d = self.depth
        if d["main"] and not (d["skip"] or d["code"] or d["folded"]):
            self.words += len(re.findall(r"[A-Za-z][A-Za-z'\-]*", data))


def _counts(scanner: _LengthScanner) -> dict[str, int]:
    return {"words": scanner.words, "tables": scanner.tables}


def _over_limits(scanner: _LengthScanner) -> list[str]:
    """The limits of :data:`CHAPTER_LIMITS` a page's main text exceeds."""
    counts = _counts(scanner)
    return [k for k, limit in CHAPTER_LIMITS.items() if counts[k] > limit]


def _glued_cells(table: list[list[str]]) -> list[str]:
    """Cells of a table that hold two numbers printed without a separator."""
    return [text for row in table for text in row if _GLUED.search(text)]


def _minutes(scanner: _LengthScanner) -> float:
    """Reading time of a page's main text: its words, and a little per figure."""
    return scanner.words / WORDS_PER_MINUTE + scanner.figures * MINUTES_PER_FIGURE


def page_lengths(html_dir: str | Path, pattern: str = "notebooks/*.html") -> dict[str, dict]:
    """Words, tables and figures of each chapter's main text, and an honest reading time.

    Folded blocks (dropdowns, ``<details>``, cells hidden by their tags) and
    code are not main text. The reading time is :data:`WORDS_PER_MINUTE`
    words a minute plus :data:`MINUTES_PER_FIGURE` per figure; ``over``
    names the limits of :data:`CHAPTER_LIMITS` a page exceeds.

    Examples
    --------
    >>> import tempfile
    >>> site = Path(tempfile.mkdtemp()); (site / "notebooks").mkdir()
    >>> _ = (site / "notebooks" / "a.html").write_text(
    ...     "<article><p>one two three</p><table></table><details><p>four</p></details></article>")
    >>> a = page_lengths(site)["notebooks/a.html"]
    >>> a["words"], a["tables"], a["over"]
    (3, 1, [])
    """
    html_dir = Path(html_dir)
    out = {}
    for page in sorted(html_dir.glob(pattern)):
        scanner = _LengthScanner()
        scanner.feed(page.read_text(encoding="utf-8", errors="replace"))
        scanner.close()
        minutes = _minutes(scanner)
        over = _over_limits(scanner)
        out[page.relative_to(html_dir).as_posix()] = {
            "words": scanner.words, "tables": scanner.tables, "figures": scanner.figures,
            "minutes": round(minutes), "over": over}
    return out
