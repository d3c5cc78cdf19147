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
    del shipped["before_budget"]  # no record of 8 epochs to carry the time to
    assert variants._shipped_like(shipped, "jtsc", 8) is None
    del shipped["unet_runs"]["jtsc"]["epochs"]  # a report that did not record its epochs
    assert variants._shipped_like(shipped, "jtsc", 8) == ("unet_runs", 5000.0)


def test_a_longer_run_continues_the_incumbent_only_when_every_fold_replays_it(variants):
    base = [[0.5, 0.6], [0.4, 0.7]]
    assert variants._continues(base, [[0.5, 0.6, 0.65], [0.4, 0.7, 0.72]])
    assert not variants._continues(base, [[0.5, 0.6, 0.65], [0.4, 0.69, 0.72]])
    assert not variants._continues(base, [[0.5, 0.6, 0.65]])  # another number of folds
    assert not variants._continues(base, [[0.5], [0.4]])  # shorter than the incumbent


class _Run:
    def __init__(self, epochs: int, iou: float = 0.91):
        self.record = {"config": {"epochs": epochs}}
        self.summary = {"iou": {"mean": iou}}


def test_the_table_a2_comparison_is_kept_and_marked_when_the_epochs_change(monkeypatch):
    from leukolib import reference

    report = _script("segmentation_report")
    comparison = {"dataset": "jtsc", "comparison": {"mean_diff": 0.01}, "defaults_oof_iou": 0.91}
    shipped = {"provenance": {"command": "python benchmarks/segmentation_report.py A"},
               "results": {"unet_hparams": comparison, "unet_runs": {"jtsc": {"epochs": 8}}}}
    monkeypatch.setattr(reference, "available", lambda name: True)
    monkeypatch.setattr(reference, "load", lambda name: shipped)
    same = report._carried_table_a2(_Run(8))
    assert same == {**comparison, "epochs": 8}
    kept = report._carried_table_a2(_Run(26, 0.93))
    assert kept["comparison"] == comparison["comparison"] and kept["epochs"] == 8
    assert kept["made_by"] == "python benchmarks/segmentation_report.py A"
    assert kept["note"].startswith("both U-Nets trained for 8 epochs; the report's own run is "
                                   "another one (26 epochs)")
    assert report._carried_table_a2(_Run(8, 0.92))["note"]  # the same length, another run
    shipped["results"] = {"unet_hparams": kept, "unet_runs": {"jtsc": {"epochs": 26}}}
    assert report._carried_table_a2(_Run(26, 0.93)) == kept  # carried again, unchanged
    again = report._carried_table_a2(_Run(30, 0.94))  # the note follows the newest run
    assert "(30 epochs)" in again["note"] and again["made_by"] == kept["made_by"]
    shipped["results"]["unet_hparams"] = {"dataset": "jtsc", "skipped": "run with --no-table-a2"}
    assert report._carried_table_a2(_Run(26)) is None
    assert report._carried_table_a2(None) is None


def test_the_8_epoch_runs_are_kept_only_by_a_full_report_that_changed_their_epochs():
    report = _script("segmentation_report")
    prev = {"scale": {}, "unet_runs": {d: {"epochs": 8} for d in ("jtsc", "all_idb2")}}
    both = {"jtsc": {"epochs": 26}, "all_idb2": {"epochs": 29}}
    assert report._before_budget(prev, both, 8)
    assert not report._before_budget(prev, {"jtsc": {"epochs": 26}}, 8)  # a partial rerun
    assert not report._before_budget(prev, {d: {"epochs": 8} for d in both}, 8)  # unchanged
    assert not report._before_budget({**prev, "unet_runs": both}, both, 8)  # already budget
    assert not report._before_budget({"unet_runs": prev["unet_runs"]}, both, 8)  # square
