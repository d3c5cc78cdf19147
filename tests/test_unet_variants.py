"""The helpers of ``benchmarks/unet_variants.py`` and the report's carried Table A2 comparison."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def variants():
    return _script("unet_variants")


def test_a_variants_time_is_carried_to_the_shipped_record_of_the_incumbents_length(variants):
    shipped = {"unet_runs": {"jtsc": {"epochs": 26, "total_seconds": 5000.0}},
               "before_budget": {"unet_runs": {"jtsc": {"epochs": 8, "total_seconds": 1500.0}}}}
    assert variants._shipped_like(shipped, "jtsc", 8) == ("before_budget", 1500.0)
    assert variants._shipped_like(shipped, "jtsc", 26) == ("unet_runs", 5000.0)
    del shipped["before_budget"]  # a report before the budget rule: its own runs
    assert variants._shipped_like(shipped, "jtsc", 8) == ("unet_runs", 5000.0)


def test_a_longer_run_continues_the_incumbent_only_when_every_fold_replays_it(variants):
    base = [[0.5, 0.6], [0.4, 0.7]]
    assert variants._continues(base, [[0.5, 0.6, 0.65], [0.4, 0.7, 0.72]])
    assert not variants._continues(base, [[0.5, 0.6, 0.65], [0.4, 0.69, 0.72]])
    assert not variants._continues(base, [[0.5, 0.6, 0.65]])  # another number of folds
    assert not variants._continues(base, [[0.5], [0.4]])  # shorter than the incumbent


class _Run:
    def __init__(self, epochs: int):
        self.record = {"config": {"epochs": epochs}}


def test_the_table_a2_comparison_is_kept_and_marked_when_the_epochs_change(monkeypatch):
    from leukolib import reference

    report = _script("segmentation_report")
    comparison = {"dataset": "jtsc", "comparison": {"mean_diff": 0.01}}
    shipped = {"provenance": {"command": "python benchmarks/segmentation_report.py A"},
               "results": {"unet_hparams": comparison, "unet_runs": {"jtsc": {"epochs": 8}}}}
    monkeypatch.setattr(reference, "available", lambda name: True)
    monkeypatch.setattr(reference, "load", lambda name: shipped)
    same = report._carried_table_a2(_Run(8))
    assert same == {**comparison, "epochs": 8}
    kept = report._carried_table_a2(_Run(26))
    assert kept["comparison"] == comparison["comparison"] and kept["epochs"] == 8
    assert kept["made_by"] == "python benchmarks/segmentation_report.py A"
    assert "trained for 8 epochs; the profile's run now trains for 26" in kept["note"]
    shipped["results"] = {"unet_hparams": kept, "unet_runs": {"jtsc": {"epochs": 26}}}
    assert report._carried_table_a2(_Run(26)) == kept  # carried again, unchanged
    shipped["results"]["unet_hparams"] = {"dataset": "jtsc", "skipped": "run with --no-table-a2"}
    assert report._carried_table_a2(_Run(26)) is None
    assert report._carried_table_a2(None) is None
