"""environment.yml and pyproject.toml list the same dependencies, as ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, req
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def pyproject_requirements() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(data["dependencies"])
    for extra in data["optional-dependencies"].values():
        reqs += extra
    return dict(_split(r) for r in reqs)


def environment_requirements() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.split(">")[0].split("=")[0] in ("python", "pip"):
                continue
            name, spec = _split(item)
            out[CONDA_NAMES.get(name, name)] = spec
    return out


def test_same_dependencies_and_ranges():
    assert environment_requirements() == pyproject_requirements()


def test_ranges_not_pins():
    for name, spec in pyproject_requirements().items():
        assert spec.startswith(">="), f"{name}: depend on a range, not {spec!r}"
        assert "==" not in spec


def test_headless_opencv_only():
    reqs = pyproject_requirements()
    assert "opencv-python-headless" in reqs and "opencv-python" not in reqs
