"""The shipped results' intervals: exact for proportions, never of zero width; the reanalysis."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*(ROOT / "leukolib" / "reference").glob("*.json"),
                  *(ROOT / "benchmarks" / "results").glob("*.json")])


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "reanalyse_intervals", ROOT / "benchmarks" / "reanalyse_intervals.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_perfect_score_of_26_reads_from_0_868(script):
    from leukolib.classification.report import committed, committed_tables

    r = committed("classification_all_idb2_cpu.json")
    assert r["grid"]["n_test"] == 26
    for b in r["baselines"].values():  # exact intervals, never of zero width
        assert b["test_acc_ci"][0] < b["test_acc"] <= b["test_acc_ci"][1]
    tables = committed_tables(r)["tables"]
    models = tables["the eight models"]
    assert (models["CI low"] < models["CI high"]).all()
    perfect = models[models["test acc"] == 1.0]
    assert len(perfect)  # raw-relu-linear: 26 of 26 right
    assert perfect["CI low"].round(3).eq(0.868).all() and perfect["CI high"].eq(1.0).all()
    assert perfect["CI low"].iloc[0] == pytest.approx(0.025 ** (1 / 26))
    # the verdicts of McNemar's tests are decided on Holm-adjusted p-values, and say so
    twins = tables["segmented against raw (McNemar)"]
    assert (twins["Holm p"] >= twins["McNemar p"]).all()
    assert "Holm-adjusted over the 4 tests" in twins.attrs["note"]
    # a report made before the exact intervals says they were recomputed from its counts
    for name in ("classification_all_idb2_cpu.json", "classification_jtsc_cpu.json"):
        shipped = committed(name)
        said = "reanalyse_intervals.py" in committed_tables(shipped)["source"]
        assert said == bool(shipped.get("reanalysis")), name


def test_the_front_page_shows_the_exact_interval():
    from leukolib.book_results import classification_glance

    glance = classification_glance()
    assert glance.loc["ALL-IDB2", "test accuracy [95 % CI]"] == "1.000 [0.868, 1.000]"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_no_shipped_interval_has_zero_width(script, path):
    assert script.zero_width(json.loads(path.read_text())) == []


def test_the_shipped_intervals_are_up_to_date(script, capsys):
    assert script.main(["--check"]) == 0, capsys.readouterr().out


def test_the_reanalysis_rewrites_intervals_only_and_says_so(script, tmp_path, capsys):
    report = {"command": "python benchmarks/classification_report.py", "date": "2026-11-29",
              "grid": {"n_test": 26, "table": [
                  {"model": "raw-relu-linear", "test acc": 1.0, "CI low": 1.0, "CI high": 1.0},
                  {"model": "odd", "test acc": 0.5012, "CI low": 0.3, "CI high": 0.7}]},
              "baselines": {"color": {"test_acc": 1.0, "test_acc_ci": [1.0, 1.0]}}}
    explain = {"provenance": {"command": "python benchmarks/explain_report.py"}, "results": {
        "localization": [
            {"model": "m", "method": "gradcam", "metric": "pointing_nucleus", "mean": 0.5,
             "ci_low": 0.3, "ci_high": 0.7, "n": 26},
            {"model": "m", "method": "gradcam", "metric": "energy_nucleus", "mean": 0.5,
             "ci_low": 0.3, "ci_high": 0.7, "n": 26}],
        "degradation": [{"mean_diff": 0.0, "ci_low": 0.0, "ci_high": 0.0, "wilcoxon_p": 1.0}]}}
    a, b = tmp_path / "report.json", tmp_path / "explain.json"
    a.write_text(json.dumps(report, indent=1) + "\n")
    b.write_text(json.dumps(explain, indent=2) + "\n")
    assert script.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "grid.table[0].CI low/CI high: [1.000, 1.000] -> [0.868, 1.000]" in out
    assert "baselines.color.test_acc_ci: [1.000, 1.000] -> [0.868, 1.000]" in out
    assert "0.5012 of 26 is no whole count" in out  # left as stored, and reported
    assert "still of zero width" not in out
    r, e = json.loads(a.read_text()), json.loads(b.read_text())
    assert r["grid"]["table"][1]["CI low"] == 0.3
    assert r["reanalysis"]["command"] == "python benchmarks/reanalyse_intervals.py"
    assert r["reanalysis"]["intervals_changed"] == 2
    loc = e["results"]["localization"]
    assert loc[0]["ci_low"] == pytest.approx(0.2993, abs=1e-4) and loc[1]["ci_low"] == 0.3
    assert e["results"]["degradation"][0]["ci_low"] is None
    assert e["results"]["degradation"][0]["degenerate"] is True
    assert e["provenance"]["reanalysis"]["intervals_changed"] == 2
    assert b.read_text().startswith('{\n  "provenance"')  # the file's own layout
    # a second run changes nothing
    before = a.read_text(), b.read_text()
    assert script.main([str(a), str(b), "--check"]) == 0
    assert (a.read_text(), b.read_text()) == before
    assert np.isclose(loc[0]["ci_high"], 1 - loc[0]["ci_low"])  # 13 of 26: symmetric
