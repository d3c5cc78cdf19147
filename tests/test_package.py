"""The package as its users get it: the wheel, and a Colab-like run of chapter 1 from it.

The wheel is built from a copy of the sources, installed (not editable) into a fresh virtual
environment, and chapter 1 runs there with papermill from a folder outside the repository, so a
module or a data file that the wheel lacks fails here rather than in Colab.

Installing torch and friends into a fresh environment would take minutes and gigabytes: the fresh
environment borrows the running environment's third-party packages through a ``.pth`` file that
names their ``site-packages`` folder. A path line in a ``.pth`` file only extends ``sys.path``; the
``.pth`` files inside that folder are not processed, so the editable install of leukolib that
lives there (a ``.pth`` hook) stays invisible: the test checks that too.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# What a build needs besides the package itself (README: readme, LICENSE: license-files).
BUILD_FILES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.py", "setup.cfg")
PROBE = "LEUKOLIB_PROBE "


def _package_files(root: Path = ROOT) -> list[str]:
    """Every file of the package in the sources (modules and data), as wheel paths."""
    out = []
    for path in sorted((root / "leukolib").rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        out.append(rel.as_posix())
    return out


def _can_build_without_isolation() -> bool:
    """Whether this environment has the build requirements (then no network is needed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        from packaging.requirements import Requirement
    except ImportError:
        return False

    for req in map(Requirement, PYPROJECT["build-system"]["requires"]):
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                return False
        except PackageNotFoundError:
            return False
    return True


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment for the fresh venv's processes: nothing may point back at the repo."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "JUPYTER_PATH")
    }
    env.update(PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _run(cmd: list[str | Path], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert res.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n"
        f"{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    )
    return res


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (the repository gets no build/ folder)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(
        ROOT / "leukolib",
        src / "leukolib",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"),
    )
    for name in BUILD_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    # With the build requirements at hand, build offline; else pip fetches them.
    flags = ["--no-build-isolation"] if _can_build_without_isolation() else []
    _run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "-w", tmp / "dist", *flags])
    (whl,) = (tmp / "dist").glob("leukolib-*.whl")
    return whl


@pytest.mark.package
def test_the_wheel_carries_every_module_and_data_file(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in _package_files() if f not in names]
    assert not missing, (
        f"not in {wheel.name}: {missing}. Modules: see [tool.setuptools.packages.find], data "
        "files: add a pattern to [tool.setuptools.package-data] (pyproject.toml)."
    )
    info = f"leukolib-{PYPROJECT['project']['version']}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory):
    """A fresh venv with the wheel installed, its kernel ``python3``; (python, work, env, venv)."""
    tmp_path = tmp_path_factory.mktemp("fresh")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    purelib = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            env=_clean_env(),
        ).stdout.strip()
    )
    # Borrow this environment's third-party packages (torch, papermill, ...), not its leukolib.
    borrowed = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "_borrowed_site_packages.pth").write_text("\n".join(borrowed) + "\n")
    work = tmp_path / "work"  # outside the repository: its leukolib/ cannot be imported
    work.mkdir()
    env = _clean_env(
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),  # no user kernelspec may win
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_PREFER_ENV_PATH="1",
    )
    hidden = _run(
        [python, "-c", "import importlib.util as u, torch; print(u.find_spec('leukolib'))"],
        cwd=work,
        env=env,
    )
    assert hidden.stdout.strip() == "None", "the editable leukolib leaks into the fresh venv"

    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "--ignore-installed", "--no-compile", "--quiet", wheel],
        cwd=work,
    )  # fmt: skip
    # The kernel `python3` is this venv's interpreter.
    _run([python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"], env=env)
    spec = json.loads((venv / "share/jupyter/kernels/python3/kernel.json").read_text())
    assert Path(spec["argv"][0]).parent == python.parent
    _run([venv / "bin" / "leukolib", "--help"], cwd=work, env=env)
    return python, work, env, venv, purelib


@pytest.mark.package
def test_chapter_1_runs_from_the_wheel_in_a_fresh_venv(fresh_venv, tmp_path: Path):
    python, work, env, venv, purelib = fresh_venv
    # Chapter 1 as it is, plus a last cell that reports where leukolib came from.
    nb = nbformat.read(ROOT / "notebooks" / "01_datasets.ipynb", as_version=4)
    probe_cell = f"""import json, sys, leukolib
modules = [m for n, m in list(sys.modules.items()) if n.split(".")[0] == "leukolib"]
print({PROBE!r} + json.dumps({{
    "prefix": sys.prefix,
    "leukolib": leukolib.__file__,
    "modules": sorted(m.__file__ for m in modules if getattr(m, "__file__", None)),
}}))"""
    nb.cells.append(nbformat.v4.new_code_cell(probe_cell))
    notebook = tmp_path / "01_datasets.ipynb"
    nbformat.write(nb, notebook)
    out = tmp_path / "out"
    _run(
        [python, "-m", "papermill", notebook, tmp_path / "executed.ipynb",
         "-k", "python3", "--cwd", work, "--no-progress-bar",
         "-p", "profile", "smoke", "-p", "dataset", "synthetic", "-p", "output_dir", out],
        cwd=work, env=env, timeout=900,
    )  # fmt: skip

    record = json.loads((out / "01_datasets.json").read_text())
    assert record["notebook"] == "01_datasets"
    assert record["params"]["profile"] == "smoke"
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    probe = json.loads(text.split(PROBE, 1)[1])
    assert Path(probe["prefix"]).resolve() == venv.resolve(), "the kernel is not the fresh venv"
    assert Path(probe["leukolib"]).resolve().is_relative_to(purelib.resolve()), probe["leukolib"]
    outside = [m for m in probe["modules"] if not Path(m).resolve().is_relative_to(venv.resolve())]
    assert not outside, f"leukolib modules imported from outside the fresh venv: {outside}"


def test_citation_matches_the_project():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    project = PYPROJECT["project"]
    assert cff["cff-version"] == "1.2.0"
    for key in ("authors", "message", "title"):
        assert cff[key], key
    assert cff["version"] == project["version"], "bump CITATION.cff's version with pyproject's"
    assert cff["license"] == project["license"] == "MIT"
    assert cff["repository-code"] == config["repository"]["url"]
    (paper,) = [r for r in cff["references"] if r.get("doi") == "10.3390/cancers15133376"]
    assert paper["type"] == "article" and paper["year"] == 2023
    assert [a["family-names"] for a in paper["authors"]] == [
        "Diaz Resendiz",
        "Ponomaryov",
        "Reyes Reyes",
        "Sadovnychiy",
    ]


def test_license_file():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "2026 The leukolib developers" in text
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


@pytest.mark.package
def test_jtsc_by_name_from_the_cache_and_one_line_offline(fresh_venv, jtsc_root: Path,
                                                          tmp_path: Path):
    """Colab-like: ``dataset = "jtsc"`` with no ``data_root`` reads leukolib's cache."""
    python, work, env, _, _ = fresh_venv
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "segmentation_WBC").symlink_to(jtsc_root)  # a cache prepared offline
    out = tmp_path / "out"
    run = [python, "-m", "papermill", ROOT / "notebooks" / "01_datasets.ipynb",
           tmp_path / "executed.ipynb", "-k", "python3", "--cwd", work, "--no-progress-bar",
           "-p", "profile", "smoke", "-p", "dataset", "jtsc", "-p", "output_dir", out]
    _run(run, cwd=work, env={**env, "LEUKOLIB_DATA": str(cache)}, timeout=900)
    record = json.loads((out / "01_datasets.json").read_text())
    assert record["params"]["dataset"] == "jtsc"

    empty = tmp_path / "empty"  # offline with an empty cache: one clear line
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    failed = subprocess.run([str(a) for a in run], cwd=work, capture_output=True, text=True,
                            env={**env, **offline, "LEUKOLIB_DATA": str(empty)}, timeout=900)
    assert failed.returncode != 0
    assert "cannot download 'jtsc'" in failed.stderr and str(empty) in failed.stderr
