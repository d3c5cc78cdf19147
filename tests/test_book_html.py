"""The built book's HTML hygiene checks (leukolib.book.check_html) on hand-written pages."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from leukolib.book import _collapse_injected, _display_paths, check_html

PAGE = """<!DOCTYPE html>
<html><head><title>A page</title>
<script>var DOCUMENTATION_OPTIONS = {{ root: "/tmp/not/text/but/script" }};</script>
<style>p {{ background: url(/home/x/y.png); }}</style>
</head><body><div class="bd-content"><article>{body}</article></div></body></html>
"""

# How myst-nb renders a code cell, its stream output and its error output.
CELL = """<div class="cell docutils container">
<div class="cell_input docutils container"><div class="highlight-ipython3 notranslate">
<div class="highlight"><pre><span></span><span class="n">x</span> <span class="o">=</span> {source}
</pre></div></div></div>
<div class="cell_output docutils container">{output}</div></div>
"""
STREAM = """<div class="output stream highlight-myst-ansi notranslate"><div class="highlight">
<pre><span></span>{text}
</pre></div></div>"""
ERROR = """<div class="output traceback highlight-ipythontb notranslate"><div class="highlight">
<pre><span></span><span class="gt">-----------------------------------------------------</span>
<span class="ne">ValueError</span>                                Traceback (most recent call last)
Cell <span class="nn">In[3], line 1</span>
<span class="ne">----&gt; 1</span> <span class="k">raise</span> <span class="ne">ValueError</span>(
    <span class="s2">"boom"</span>)

<span class="ne">ValueError</span>: boom
</pre></div></div>"""


#: A chapter's banner as Run.banner() renders it.
BANNER = ('<div class="admonition note leukolib-box"><p class="admonition-title">What this '
          'page ran on</p><p>This page ran on the smoke profile.</p></div>')


def check(tmp_path: Path, body: str, name: str = "page.html", **kw) -> list[str]:
    site = tmp_path / "html"
    (site / name).parent.mkdir(parents=True, exist_ok=True)
    (site / name).write_text(PAGE.format(body=body))
    return check_html(site, **kw)


def cell(source: str = "1", output: str = "") -> str:
    return CELL.format(source=source, output=output)


# --- tables ---------------------------------------------------------------------------------------

TABLE = """<div class="pst-scrollable-table-container"><table class="table">
<thead><tr class="row-odd"><th class="head"><p>a</p></th><th class="head"><p>b</p></th></tr></thead>
<tbody><tr class="row-even"><td><p>1</p></td><td><p>2</p></td></tr></tbody></table></div>"""


def test_a_rendered_table_passes(tmp_path):
    assert check(tmp_path, "<h1>Results</h1>" + TABLE + "<p>A sentence | with a pipe.</p>") == []


def test_a_table_as_pipe_text_fails(tmp_path):
    problems = check(tmp_path, "<p>| a | b |\n| --- | --- |\n| 1 | 2 |</p>")
    assert len(problems) == 1, problems  # one table, one problem
    assert problems[0].startswith("page.html: raw markdown table")
    assert "| a | b |" in problems[0]


@pytest.mark.parametrize(
    "text",
    [
        "| a | b |",
        "| metric | ours | paper |",
        "|---|---|",
        "| :--- | ---: |",
        "| \u2014 | \u2014 |",  # the typographer's em dashes
        "| \u2013 | \u2013 |",  # en dashes
        "Dice | IoU\n\u2014 | \u2014",  # no outer pipes: the separator row gives it away
        "a table flattened | --- | --- | onto one line",
    ],
)
def test_pipe_table_variants_fail(tmp_path, text):
    assert len(check(tmp_path, f"<p>{text}</p>")) == 1


def test_pipe_text_in_code_or_maths_passes(tmp_path):
    body = (
        "<pre>| a | b |\n| --- | --- |</pre>"
        '<p>Write <code class="docutils literal">| a | b |</code> in markdown.</p>'
        '<div class="math notranslate nohighlight">\\[|x - y|\\]</div>'
        '<p><span class="math notranslate nohighlight">\\(|a|\\)</span> and p(y | x).</p>'
    )
    assert check(tmp_path, body) == []


def test_a_pipe_table_in_a_markdown_output_fails(tmp_path):
    output = '<div class="output text_markdown"><p>| a | b |\n| \u2014 | \u2014 |</p></div>'
    assert len(check(tmp_path, cell(output=output))) == 1


# --- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/tmp/x/_build/outputs/foo.json",
        "/work/main/_build/outputs/01_datasets.json",
        "/home/alice/leukolib/runs",
        "/root/.cache/torch/hub",
        "/Users/alice/data/jtsc",
        "/var/folders/xy/T/tmpab12/out",
        "C:\\Users\\alice\\data",
        "C:\\\\Users\\\\alice",  # as a repr prints it
        "D:/data/jtsc",
        "file:///srv/book/index.html",
    ],
)
def test_machine_paths_fail_in_text(tmp_path, path):
    problems = check(tmp_path, f"<p>Saved to {path} (see there).</p>")
    assert len(problems) == 1, problems
    assert "absolute path of the build machine" in problems[0]


def test_the_tmp_path_of_the_issue_fails_in_an_output(tmp_path):
    output = STREAM.format(text="saved /tmp/x/_build/outputs/foo.json")
    problems = check(tmp_path, BANNER + cell(output=output), name="notebooks/01_datasets.html")
    assert problems == [
        "notebooks/01_datasets.html: absolute path of the build machine: "
        "'saved /tmp/x/_build/outputs/foo.json'"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "https://example.org/a/b",
        "See https://doi.org/10.3390/cancers15133376 and http://localhost:8888/lab/tree/x.",
        "git+https://github.com/leukolib/leukolib and //cdn.example.org/a/b.js",
        "s3://bucket/a/b",
        "../shared/data/segmentation_WBC and ./runs/jtsc/fold0",
        "_build/outputs/01_datasets.json",
        "~/data/jtsc",
        "2023/06/01, km/h, TP/(TP+FP), Grad-CAM/Grad-CAM++/Score-CAM, AND / OR, 1/2/3",
        "ALL-IDB2/im/Im001_1.tif",
    ],
)
def test_urls_and_relative_paths_pass(tmp_path, text):
    assert check(tmp_path, f"<p>{text}</p>" + cell(output=STREAM.format(text=text))) == []


def test_any_absolute_path_in_an_output_fails_but_placeholders_in_prose_pass(tmp_path):
    prose = "<p>Run <code>papermill ... -p data_root /path/to/my_data</code> or /data/jtsc.</p>"
    assert check(tmp_path, prose + cell('"/content/drive/MyDrive"')) == []
    output = STREAM.format(text="reading /data/jtsc/images")
    problems = check(tmp_path, cell(output=output))
    assert len(problems) == 1 and "/data/jtsc/images" in problems[0]


def test_paths_in_the_injected_parameters_cell_fail(tmp_path):
    source = '<span class="s2">"/tmp/pytest-of-me/pytest-1/book0/_build/outputs"</span>'
    problems = check(tmp_path, cell(source=source))
    assert len(problems) == 1 and "/tmp/pytest-of-me" in problems[0]


def test_given_roots_fail(tmp_path):
    body = "<p>staged in /srv2/ci/build/_build/src/notebooks</p>"
    assert check(tmp_path, body) == []
    assert len(check(tmp_path, body, roots=["/srv2/ci/build"])) == 1


def test_links_and_images_to_the_machine_fail(tmp_path):
    body = '<p><img src="/tmp/x/fig.png" alt=""/><a href="file:///work/x.html">x</a></p>'
    assert len(check(tmp_path, body)) == 2
    assert (
        check(tmp_path, '<p><img src="../_images/fig.png"/><a href="/abs/x.html">x</a></p>') == []
    )


def test_script_and_style_are_not_text(tmp_path):
    assert check(tmp_path, "<p>nothing here</p>") == []


def test_static_files_are_not_pages(tmp_path):
    assert check(tmp_path, "<p>| a | b |</p>", name="_static/vendor.html") == []


# --- errors ---------------------------------------------------------------------------------------


def test_an_error_cell_fails(tmp_path):
    problems = check(tmp_path, cell("1", ERROR))
    assert problems == ["page.html: an error output: ValueError: boom"]


def test_papermill_error_marker_and_printed_traceback_fail(tmp_path):
    marker = (
        '<p><span id="papermill-error-cell" style="color:red">An Exception was encountered at '
        '<a href="#papermill-error-cell">In [3]</a>.</span></p>'
    )
    assert len(check(tmp_path, marker)) == 1
    printed = STREAM.format(text="Traceback (most recent call last):\n  ...\nKeyError: 'x'")
    assert len(check(tmp_path, cell(output=printed))) == 1


def test_a_clean_notebook_page_passes(tmp_path):
    output = STREAM.format(text="12 images, 3 classes; saved 01_datasets.json")
    output += '<img alt="../_images/a.png" src="../_images/a.png" />'
    assert check(tmp_path, "<h1>Datasets</h1>" + TABLE + cell(output=output)) == []


def test_several_pages_are_reported_page_by_page(tmp_path):
    site = tmp_path / "html"
    (site / "notebooks").mkdir(parents=True)
    (site / "index.html").write_text(PAGE.format(body="<p>fine</p>"))
    (site / "notebooks" / "a.html").write_text(PAGE.format(body=BANNER + "<p>| a | b |</p>"))
    (site / "notebooks" / "b.html").write_text(PAGE.format(body=BANNER + cell("1", ERROR)))
    problems = check_html(site)
    assert [p.split(":")[0] for p in problems] == ["notebooks/a.html", "notebooks/b.html"]


# --- intervals of zero width ---------------------------------------------------------------------


def styler_table(low: float, high: float) -> str:
    """A table as the notebooks show it (pandas' Styler), a two-level index spanning rows."""
    import pandas as pd

    from leukolib.tables import styled

    index = pd.MultiIndex.from_tuples([("relu", "linear"), ("relu", "medium")], names=["a", "h"])
    frame = pd.DataFrame({"test acc": [0.846, high], "CI low": [0.651, low],
                          "CI high": [0.956, high]}, index=index)
    return cell(output=f'<div class="output text_html">{styled(frame).to_html()}</div>')


@pytest.mark.parametrize(
    "text",
    [
        "1.000 [1.000, 1.000]",  # the front page's and chapter 5's 26 of 26, issue 22
        "test accuracy 1.00 [1.00, 1.00]",
        "+0.000 [+0.000, +0.000]",  # a paired difference, every image tied
        "−0.020 [−0.020, −0.020]",  # the typographer's minus
        "(95 % interval 1.000 to 1.000)",
        "95 % CI [0.5, 0.5]",
        "(95 % CI 40 to 40)",
    ],
)
def test_an_interval_of_zero_width_fails(tmp_path, text):
    for body in (f"<p>{text}</p>", cell(output=STREAM.format(text=text)),
                 f"<table><tr><td><p>{text}</p></td></tr></table>"):
        problems = check(tmp_path, body)
        assert len(problems) == 1 and "an interval of zero width" in problems[0], (body, problems)


@pytest.mark.parametrize(
    "text",
    [
        "1.000 [0.868, 1.000]",
        "0.500 (no interval)",
        "the model scored 1.000 to 1.000 on its test splits",  # a range, not an interval
        "probabilities [0.5, 0.5]",  # a list, no estimate before it
        "0.912 ± 0.000",
    ],
)
def test_intervals_of_some_width_and_other_numbers_pass(tmp_path, text):
    assert check(tmp_path, f"<p>{text}</p>" + cell(output=STREAM.format(text=text))) == []


def test_zero_width_in_code_passes(tmp_path):
    source = "bootstrap_ci([0.5, 0.5]) == (0.5, 0.5)  # 0.5 [0.5, 0.5]"
    assert check(tmp_path, cell(source=source)) == []


def test_a_table_whose_low_and_high_columns_agree_fails(tmp_path):
    assert check(tmp_path, styler_table(0.8, 0.9)) == []
    problems = check(tmp_path, styler_table(1.0, 1.0))
    assert len(problems) == 1, problems
    assert problems[0] == ("page.html: an interval of zero width in a table: "
                           "'relu medium: CI low = 1.000, 1.000'")


# --- the executed copies show the parameters' paths relative --------------------------------------


def test_injected_parameters_show_relative_paths(tmp_path):
    build = tmp_path / "_build"
    params = {
        "profile": "smoke",
        "output_dir": str(build / "outputs"),
        "data_root": "",
        "seed": 0,
    }
    shown = _display_paths(params, tmp_path)
    assert shown == {str(build / "outputs"): "_build/outputs"}
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "input_path": str(tmp_path / "notebooks" / "01.ipynb"),
        "output_path": str(build / "executed" / "01.ipynb"),
        "parameters": params,
    }
    source = f'# Parameters\nprofile = "smoke"\noutput_dir = "{build / "outputs"}"\n'
    nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    path = tmp_path / "01.ipynb"
    nbformat.write(nb, path)
    _collapse_injected(path, shown)
    out = nbformat.read(path, as_version=4)
    assert "hide-cell" in out.cells[0].metadata["tags"]
    assert 'output_dir = "_build/outputs"' in out.cells[0].source
    assert str(tmp_path) not in out.cells[0].source
    assert out.metadata["papermill"]["parameters"]["output_dir"] == "_build/outputs"


# --- banners and missing numbers -----------------------------------------------------------------


def test_a_chapter_without_its_banner_fails(tmp_path):
    problems = check(tmp_path, "<p>fine</p>", name="notebooks/02_x.html")
    assert problems == ["notebooks/02_x.html: no banner saying what the page ran on "
                        "(Run.banner() after setup)"]
    assert check(tmp_path, BANNER + "<p>fine</p>", name="notebooks/02_x.html") == []
    assert check(tmp_path, "<p>fine</p>", name="book/intro.html") == []  # not a chapter


def test_nan_in_prose_fails_but_not_in_code_or_words(tmp_path):
    problems = check(tmp_path, "<p>Segmented models put between nan and nan of it.</p>")
    assert problems == ["page.html: 'nan' where a number should be: "
                        "'Segmented models put between nan and nan of it.'"]
    assert check(tmp_path, cell("float('nan')") + "<p>a nanometre, NaN-safe code</p>") == []


def test_a_time_to_learn_far_from_the_reading_time_fails(tmp_path):
    words = "<p>" + "word " * 2000 + "</p>"  # ten minutes at 200 words a minute
    page = BANNER + "<p>Time to learn: about {} minutes of reading.</p>" + words
    assert check(tmp_path, page.format(10), name="notebooks/02_x.html") == []
    problems = check(tmp_path, page.format(40), name="notebooks/02_x.html")
    assert len(problems) == 1 and "'Time to learn' says 40 minutes" in problems[0]


# --- length limits and tables that read badly ----------------------------------------------------


def test_a_chapter_over_its_length_limits_fails_unless_folded(tmp_path):
    words = "<p>" + "word " * 3100 + "</p>"
    problems = check(tmp_path, BANNER + words, name="notebooks/02_x.html")
    assert len(problems) == 1 and "words (at most 3000)" in problems[0]
    tables = TABLE * 11
    problems = check(tmp_path, BANNER + tables, name="notebooks/02_x.html")
    assert len(problems) == 1 and "11 tables (at most 10)" in problems[0]
    folded = f"<details><summary>Show</summary>{words}{tables}</details>"
    assert check(tmp_path, BANNER + folded, name="notebooks/02_x.html") == []
    hidden = f'<div class="cell tag_hide-output">{tables}</div>'
    assert check(tmp_path, BANNER + hidden, name="notebooks/02_x.html") == []
    assert check(tmp_path, words + tables, name="book/appendix.html") == []  # not a chapter


@pytest.mark.parametrize("value", ["0.9230.915", "+0.012-0.034", "1.0000.998 [0.9, 1.0]"])
def test_a_table_whose_numbers_run_together_fails(tmp_path, value):
    table = TABLE.replace("<p>2</p>", f"<p>{value}</p>")
    problems = check(tmp_path, table)
    assert problems == [f"page.html: a table whose cells run together: {value!r}"]


@pytest.mark.parametrize("value", ["1.26.4", "0.923 0.915", "2026-12-05", "0.92 [0.90, 0.94]"])
def test_table_cells_with_separated_numbers_pass(tmp_path, value):
    assert check(tmp_path, TABLE.replace("<p>2</p>", f"<p>{value}</p>")) == []


def test_a_data_frame_printed_as_text_fails(tmp_path):
    wrapped = "   dataset  method   acc   pre   rec  \\\n0     jtsc      HM  0.91  0.90  0.89"
    footer = "   a  b\n0  1  2\n\n[1 rows x 2 columns]"
    for text in (wrapped, footer):
        problems = check(tmp_path, cell(output=STREAM.format(text=text)))
        assert len(problems) == 1 and "a table printed as text" in problems[0], text
    assert check(tmp_path, cell(output=STREAM.format(text="a  b\n1  2"))) == []
