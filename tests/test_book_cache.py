"""The book's execution cache (leukolib.book_cache) and the shared run folders (run_cache)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from leukolib.book import execute_notebooks, list_notebooks
from leukolib.book_cache import (
    DEPENDS_ON,
    ExecutionCache,
    data_fingerprint,
    library_fingerprint,
    merge_outputs,
    notebook_keys,
)
from leukolib.classification import classifier_runs
from leukolib.data import load_dataset
from leukolib.explain.shortcut import shortcut_folder
from leukolib.notebook import setup
from leukolib.profiles import get_profile
from leukolib.run_cache import ENV_VAR, run_folder

PARAMS = {"profile": "smoke", "dataset": "synthetic", "data_root": "", "seed": 0}


def tiny_notebook(name: str, value: int = 1, prose: str = "Some prose.") -> nbformat.NotebookNode:
    """A notebook of the book's shape: parameters, prose, code that saves its numbers."""
    params = nbformat.v4.new_code_cell(
        'profile = "cpu"\ndataset = "synthetic"\ndata_root = ""\noutput_dir = "outputs"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    code = nbformat.v4.new_code_cell(
        "import json, os, pathlib\n"
        f"numbers = {{'value': {value}, 'runs': os.environ.get('{ENV_VAR}')}}\n"
        f"pathlib.Path(output_dir).mkdir(parents=True, exist_ok=True)\n"
        f"pathlib.Path(output_dir, '{name}.json').write_text(json.dumps(numbers))\n"
        "print('value', numbers['value'])")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}"), params,
                                         nbformat.v4.new_markdown_cell(prose), code])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def write_book(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        nbformat.write(tiny_notebook(name), folder / f"{name}.ipynb")
    return [folder / f"{name}.ipynb" for name in names]


def edit(path: Path, cell: int, text: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.cells[cell].source = text
    nbformat.write(nb, path)


def changed_keys(before: dict, after: dict) -> set[str]:
    return {n for n in before if before[n]["key"] != after[n]["key"]}


# ----------------------------------------------------------------------- dependency order


def test_depends_on_names_the_books_notebooks_in_order():
    order = [nb.stem for nb in list_notebooks()]
    assert list(DEPENDS_ON) == order
    for name, ups in DEPENDS_ON.items():
        assert all(order.index(u) < order.index(name) for u in ups), name


def test_depends_on_matches_what_the_notebooks_read():
    """A notebook reading chapter 3's U-Net or chapter 5's runs must list that chapter."""
    readers = {"03_deep_segmentation": ("unet_run_dir",),
               "05_classification": ("classifier_grid(", "classifier_runs(", "shortcut_grid(")}
    for path in list_notebooks():
        nb = nbformat.read(path, as_version=4)
        code = "".join(c.source for c in nb.cells if c.cell_type == "code")
        for upstream, calls in readers.items():
            if path.stem != upstream and any(call in code for call in calls):
                assert upstream in DEPENDS_ON[path.stem], f"{path.stem} reads {upstream}"


def test_no_notebook_imports_the_modules_left_out_of_the_key():
    for path in list_notebooks():
        code = "".join(c.source for c in nbformat.read(path, as_version=4).cells
                       if c.cell_type == "code")
        assert "book_results" not in code and "book_checks" not in code, path.stem


# ----------------------------------------------------------------------- the keys


@pytest.fixture
def book(tmp_path) -> tuple[list[Path], dict]:
    """The seven notebooks' names as tiny notebooks, and a context."""
    paths = write_book(tmp_path / "notebooks", list(DEPENDS_ON))
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "mod.py").write_text("X = 1\n")
    context = {"parameters": PARAMS, "library": library_fingerprint(package),
               "versions": {"torch": "1"}, "data": data_fingerprint(PARAMS)}
    return paths, context


def test_markdown_and_display_tags_leave_every_key_alone(book):
    paths, context = book
    before = notebook_keys(paths, context)
    edit(paths[5], 2, "Another sentence, a fixed label, a new reference.")
    nb = nbformat.read(paths[3], as_version=4)
    nb.cells[3].metadata["tags"] = ["hide-input"]
    nbformat.write(nb, paths[3])
    assert changed_keys(before, notebook_keys(paths, context)) == set()


@pytest.mark.parametrize("changed, expected", [
    ("01_datasets", {"01_datasets"}),
    ("03_deep_segmentation",
     {"03_deep_segmentation", "04_ensemble_evaluation", "07_clusters_robustness"}),
    ("04_ensemble_evaluation", {"04_ensemble_evaluation"}),
    ("05_classification", {"05_classification", "06_explanations", "07_clusters_robustness"}),
    ("06_explanations", {"06_explanations"}),
])
def test_a_code_change_changes_exactly_the_dependent_keys(book, changed, expected):
    paths, context = book
    before = notebook_keys(paths, context)
    edit(next(p for p in paths if p.stem == changed), 3, "print('changed')")
    assert changed_keys(before, notebook_keys(paths, context)) == expected


def test_the_parameters_cell_tag_is_part_of_the_key(book):
    paths, context = book
    before = notebook_keys(paths, context)
    nb = nbformat.read(paths[0], as_version=4)
    nb.cells[1].metadata["tags"] = []
    nbformat.write(nb, paths[0])
    assert changed_keys(before, notebook_keys(paths, context)) == {"01_datasets"}


@pytest.mark.parametrize("part", ["parameters", "library", "versions", "data"])
def test_a_shared_change_changes_every_key(book, tmp_path, part):
    paths, context = book
    before = notebook_keys(paths, context)
    if part == "library":
        (tmp_path / "pkg" / "mod.py").write_text("X = 2\n")
        context = {**context, "library": library_fingerprint(tmp_path / "pkg")}
    else:
        new = {"parameters": {**PARAMS, "seed": 1}, "versions": {"torch": "2"},
               "data": data_fingerprint({**PARAMS, "profile": "cpu"})}
        context = {**context, part: new[part]}
    assert changed_keys(before, notebook_keys(paths, context)) == set(DEPENDS_ON)


def test_library_fingerprint_ignores_caches_and_the_book_helpers(tmp_path):
    (tmp_path / "a.py").write_text("A = 1\n")
    before = library_fingerprint(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "book_results.py").write_text("# the front page\n")
    assert library_fingerprint(tmp_path) == before
    (tmp_path / "data.json").write_text("{}")
    assert library_fingerprint(tmp_path) != before


def test_data_fingerprint_of_a_folder_sees_contents(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"12345")
    params = {**PARAMS, "dataset": "imagefolder", "data_root": str(tmp_path)}
    before = data_fingerprint(params)
    assert before["files"] == 1 and before["bytes"] == 5
    (tmp_path / "img" / "a.png").write_bytes(b"54321")  # same size, other pixels
    assert data_fingerprint(params) != before
    assert data_fingerprint({**PARAMS, "dataset": "jtsc"})["fetched"].endswith(".zip")
    assert data_fingerprint(PARAMS) != data_fingerprint({**PARAMS, "seed": 1})


# ----------------------------------------------------------------------- merging


def test_merge_keeps_the_current_prose_and_the_cached_outputs():
    source = tiny_notebook("01_a", prose="The new sentence.")
    executed = tiny_notebook("01_a", prose="The old sentence.")
    injected = nbformat.v4.new_code_cell("# Parameters\nseed = 0")
    injected.metadata["tags"] = ["injected-parameters", "hide-cell"]
    executed.cells.insert(2, injected)
    executed.cells[4].outputs = [nbformat.v4.new_output("stream", text="value 1\n")]
    executed.cells[4].execution_count = 2
    source.cells[3].metadata["tags"] = ["hide-input"]
    merged = merge_outputs(source, executed)
    assert [c.cell_type for c in merged.cells] == ["markdown", "code", "code", "markdown", "code"]
    assert "injected-parameters" in merged.cells[2].metadata["tags"]  # after the parameters cell
    assert merged.cells[3].source == "The new sentence."
    assert merged.cells[4].outputs[0]["text"] == "value 1\n"
    assert merged.cells[4].metadata["tags"] == ["hide-input"]  # display tags: the current ones
    nbformat.validate(merged)
    with pytest.raises(ValueError, match="other code cells"):
        merge_outputs(tiny_notebook("01_a", value=2), executed)


# ----------------------------------------------------------------------- end to end


@pytest.mark.notebooks
def test_execute_with_cache_reruns_only_what_changed(tmp_path):
    """Cold: all executed; prose edit: none, new text shown; code edit: it and what follows."""
    paths = write_book(tmp_path / "notebooks", ["01_a", "02_b", "03_c"])
    out = tmp_path / "_build" / "outputs"
    params = {**PARAMS, "output_dir": str(out)}
    cache = tmp_path / "_build" / "cache"

    reports = {}

    def run(name: str) -> dict[str, str]:
        reports[name] = execute_notebooks(tmp_path / "_build" / name, params, paths, cache=cache)
        return {Path(r["notebook"]).stem: r["status"] for r in reports[name]}

    assert run("cold") == {"01_a": "executed", "02_b": "executed", "03_c": "executed"}
    record = json.loads((out / "02_b.json").read_text())
    assert record["runs"] == str((cache / "runs").resolve())  # the kernels share the runs
    assert ExecutionCache(cache).runs_dir.is_dir()

    edit(paths[1], 2, "A sentence written after the build.")
    shutil.rmtree(out)
    assert set(run("prose").values()) == {"cached"}
    executed = nbformat.read(tmp_path / "_build" / "prose" / "02_b.ipynb", as_version=4)
    assert "A sentence written after the build." in executed.cells[3].source
    assert executed.cells[4].outputs and "injected-parameters" in executed.cells[2].metadata.tags
    assert json.loads((out / "02_b.json").read_text())["value"] == 1  # put back from the cache

    edit(paths[1], 3, "print('the code changed')")  # unlisted notebooks read all earlier ones
    assert run("code") == {"01_a": "cached", "02_b": "executed", "03_c": "executed"}
    assert [r.get("changed") for r in reports["code"]] == [None, ["code"], ["upstream 02_b"]]
    report = execute_notebooks(tmp_path / "_build" / "fresh", params, paths)  # no cache
    assert {r["status"] for r in report} == {"executed"}
    assert json.loads((out / "01_a.json").read_text())["runs"] is None


# ----------------------------------------------------------------------- run folders


def test_run_folders_are_plain_without_shared_runs(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    ds = load_dataset("synthetic", n_images=6, size=64, seed=0)
    plain = tmp_path / "classifiers_synthetic_smoke_seed0"
    assert classifier_runs(tmp_path, ds, "smoke", 0) == plain
    assert shortcut_folder(tmp_path, "smoke", 0) == tmp_path / "shortcut_smoke_seed0"


def test_shared_run_folders_are_keyed_by_configuration_and_data(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "runs"))
    ds = load_dataset("synthetic", n_images=6, size=64, seed=0)
    folder = classifier_runs(tmp_path / "out", ds, "smoke", 0)
    assert folder.parent == tmp_path / "runs"
    assert folder.name.startswith("classifiers_synthetic_smoke_seed0-")
    assert classifier_runs(tmp_path / "elsewhere", ds, "smoke", 0) == folder  # every chapter
    other_data = load_dataset("synthetic", n_images=6, size=64, seed=1)
    assert classifier_runs(tmp_path / "out", other_data, "smoke", 0) != folder
    assert classifier_runs(tmp_path / "out", ds, "smoke", 1) != folder
    smoke = get_profile("smoke")
    more = replace(smoke.classification, epochs=smoke.classification.epochs + 1)
    changed = replace(smoke, classification=more)  # a profile edited under the same name
    assert classifier_runs(tmp_path / "out", ds, changed, 0).name.startswith(
        "classifiers_synthetic_smoke_seed0-")
    assert classifier_runs(tmp_path / "out", ds, changed, 0) != folder  # beside, never reused
    assert shortcut_folder(tmp_path / "out", "smoke", 0).parent == tmp_path / "runs"
    assert run_folder("x", "n", {"a": 1}) == run_folder("y", "n", {"a": 1})


def test_notebook_run_shows_a_shared_run_folder_relative(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache" / "runs"))
    run = setup("00_test", "smoke", "synthetic", None, tmp_path / "outputs", seed=0)
    folder = run.unet_run_dir
    assert folder.parent == tmp_path / "cache" / "runs"
    assert run.relative(folder) == f"../cache/runs/{folder.name}"
    assert run.relative(tmp_path / "outputs" / "x.json") == "x.json"


def test_book_key_is_one_hash_independent_of_where_the_build_is(tmp_path, capsys):
    """What the Pages workflow keys actions/cache with: the same on every checkout."""
    from leukolib.book import main

    keys = []
    for where in ("a", "b"):
        build = str(tmp_path / where / "_build")
        assert main(["key", "--profile", "smoke", "--build-dir", build]) == 0
        keys.append(capsys.readouterr().out.strip())
    assert keys[0] == keys[1] and len(keys[0]) == 64
    assert main(["key", "--profile", "cpu", "--build-dir", str(tmp_path / "a" / "_build")]) == 0
    assert capsys.readouterr().out.strip() != keys[0]
