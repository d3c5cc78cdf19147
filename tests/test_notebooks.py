"""The notebooks: conventions, execution under the smoke profile, and a smoke book build."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from leukolib.book import (
    build_book,
    check_html,
    execute_notebooks,
    list_notebooks,
    stage_book,
    sync_install_cells,
)

NOTEBOOKS = list_notebooks()
PARAMETERS = {"profile", "dataset", "data_root", "output_dir", "seed"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_conventions(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), "first code cell must be tagged"
    names = {t.id for node in ast.parse(first.source).body for t in getattr(node, "targets", [])}
    assert PARAMETERS <= names, f"parameters cell lacks {PARAMETERS - names}"
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), "outputs committed"
    headings = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for section in ("## Overview", "## Prerequisites", "## Summary", "## What's next"):
        assert section in headings, f"missing section {section!r}"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    source = "".join(c.source for c in code)
    assert ".save(" in source or "save_results(" in source, "the notebook must save its numbers"


def test_install_cells_match_config():
    assert sync_install_cells(check=True) == [], "run `make sync`"


def smoke_parameters(build: Path) -> dict:
    return {
        "profile": "smoke",
        "dataset": "synthetic",
        "data_root": "",
        "output_dir": str(build / "outputs"),
        "seed": 0,
    }


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """Every notebook executed once under the smoke profile (synthetic data), into a cache."""
    build = tmp_path_factory.mktemp("book") / "_build"
    report = execute_notebooks(build / "executed", smoke_parameters(build), cache=build / "cache")
    assert {r["status"] for r in report} == {"executed"}
    return build


#: A sentence added to chapter 6's prose after its execution (the author's loop).
PROSE_EDIT = "This sentence was written after the notebooks were executed."


@pytest.fixture(scope="session")
def smoke_rerun(smoke_run: Path) -> tuple[Path, list[dict]]:
    """The smoke build's notebooks again, after a prose edit: from the cache (executed copies)."""
    edited = smoke_run.parent / "edited"
    shutil.copytree(NOTEBOOKS[0].parent, edited, ignore=shutil.ignore_patterns("*.json", ".*"))
    path = edited / "06_explanations.ipynb"
    nb = nbformat.read(path, as_version=4)
    last = [c for c in nb.cells if c.cell_type == "markdown"][-1]
    last.source += f"\n\n{PROSE_EDIT}"
    nbformat.write(nb, path)
    report = execute_notebooks(smoke_run / "rerun", smoke_parameters(smoke_run),
                               list_notebooks(edited), cache=smoke_run / "cache")
    return smoke_run / "rerun", report


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_writes_its_numbers(smoke_run: Path, path: Path):
    record = json.loads((smoke_run / "outputs" / f"{path.stem}.json").read_text())
    assert record["notebook"] == path.stem
    assert record["params"]["profile"] == "smoke"
    assert record["results"]
    executed = nbformat.read(smoke_run / "executed" / path.name, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "hide-cell" in injected[0].metadata["tags"]


@pytest.fixture(scope="session")
def smoke_book(smoke_run: Path, smoke_rerun: tuple[Path, list[dict]]) -> Path:
    """The book built from the smoke run's cache after a prose edit (``_build/html``)."""
    return build_book(stage_book(smoke_rerun[0], smoke_run / "src"), smoke_run.parent)


@pytest.mark.notebooks
def test_smoke_rebuild_after_a_prose_edit_executes_nothing(smoke_rerun, smoke_book: Path):
    """The second build of the same book takes every notebook from the cache, new prose shown."""
    _, report = smoke_rerun
    assert [r["status"] for r in report] == ["cached"] * len(NOTEBOOKS)
    page = (smoke_book / "notebooks" / "06_explanations.html").read_text()
    assert PROSE_EDIT in page


@pytest.mark.notebooks
def test_smoke_book_builds_with_figures(smoke_book: Path):
    html = smoke_book
    for path in NOTEBOOKS:
        page = (html / "notebooks" / f"{path.stem}.html").read_text()
        assert "<img" in page, f"{path.stem}: no figure rendered"
        assert "colab.research.google.com" in page, f"{path.stem}: no Colab button"
    intro = (html / "book" / "intro.html").read_text()
    for image in ("pipeline.svg", "package.svg"):
        assert image in intro, f"intro: no {image}"
        assert (html / "_images" / image).exists(), f"{image} not copied into the site"


@pytest.mark.notebooks
def test_front_page_shows_the_shipped_results(smoke_book: Path):
    """"Results at a glance" is rendered from leukolib.reference, as HTML tables."""
    from leukolib import reference

    intro = (smoke_book / "book" / "intro.html").read_text()
    section = intro.split('id="results-at-a-glance"', 1)[1].split('id="the-stages"', 1)[0]
    if reference.available("segmentation"):
        assert "Nucleus segmentation" in section and "<table" in section
        assert "results_at_a_glance.svg" in section
        assert "chosen without it" in section  # the numbers of the data that chose nothing
    if reference.available("classification_all_idb2_cpu"):
        assert "Classification" in section and "ALL-IDB2" in section


@pytest.mark.notebooks
def test_paper_protocol_page_renders_the_gpu_measurements(smoke_book: Path):
    """The page "Run the paper's protocol": the profile and the shipped GPU check, as tables."""
    from leukolib import reference
    from leukolib.profiles import get_profile

    page = (smoke_book / "book" / "paper_protocol.html").read_text()
    assert page.count("<table") >= (4 if reference.available("gpu_check") else 1)
    paper = get_profile("paper")
    assert f"{paper.segmentation.folds} folds x {paper.segmentation.epochs} epochs" in page
    if reference.available("gpu_check"):
        r = reference.load("gpu_check")["results"]
        assert f"{r['resnet50']['train_images_per_second']:.0f}" in page
        assert r["environment"]["gpu"] in page
    intro = (smoke_book / "book" / "intro.html").read_text()
    assert "paper_protocol.html" in intro  # the front page links it


@pytest.mark.notebooks
def test_smoke_book_pages_are_clean(smoke_run: Path, smoke_book: Path):
    """What `make book` checks: no raw pipe tables, no machine paths, no error outputs."""
    problems = check_html(smoke_book, roots=[smoke_run, smoke_run / "src"])
    assert problems == [], "\n".join(problems)


@pytest.mark.notebooks
@pytest.mark.shared
def test_datasets_notebook_on_jtsc(jtsc_root: Path, tmp_path: Path):
    params = {
        "profile": "smoke",
        "dataset": "jtsc",
        "data_root": str(jtsc_root),
        "output_dir": str(tmp_path / "out"),
        "seed": 0,
    }
    execute_notebooks(tmp_path / "executed", params, [NOTEBOOKS[0]])
    record = json.loads((tmp_path / "out" / "01_datasets.json").read_text())
    assert record["results"]["n_images"] == 12  # the smoke profile's cap
    assert len(record["results"]["class_names"]) == 5
