import math

import pytest

from leukolib import paper
from leukolib.errors import LeukolibError

FRACTION_METRICS = {"acc", "pre", "rec", "spec", "dsc", "iou", "f1", "auc"}


def test_citation_and_doi():
    assert paper.DOI == "10.3390/cancers15133376"
    assert paper.DOI in paper.CITATION
    assert "Diaz Resendiz" in paper.CITATION


def test_results_are_well_formed():
    assert paper.RESULTS
    for r in paper.RESULTS:
        assert r.dataset == r.dataset.lower()
        assert r.metric == r.metric.lower()
        assert math.isfinite(r.value)
        if r.metric in FRACTION_METRICS:
            assert 0.0 <= r.value <= 1.0, r
        if r.std is not None:
            assert r.std >= 0.0


def test_no_duplicate_cells():
    keys = [(r.table, r.dataset, r.method, r.metric) for r in paper.RESULTS]
    assert len(keys) == len(set(keys))


def test_spot_values_from_the_abstract():
    iou = paper.reported(table="abstract", method="ENSEMBLE")
    assert iou["metric"].tolist() == ["iou"]
    assert iou["value"].item() == pytest.approx(0.91)
    acc = paper.reported(table="abstract", dataset="LEUKEMIA_FAB")
    assert acc["value"].item() == pytest.approx(0.999)


def test_reported_is_tidy_and_filters():
    df = paper.reported()
    assert list(df.columns) == ["table", "dataset", "method", "metric", "value", "std", "note"]
    assert len(df) == len(paper.RESULTS)
    assert paper.reported(table="no-such-table").empty


def test_reported_wide_layout():
    wide = paper.reported_wide("abstract")
    assert wide.index.names == ["dataset", "method"]
    assert wide.shape == (2, 2)
    assert set(wide.columns) == {"acc", "iou"}
    assert wide.loc[("six_databases", "ENSEMBLE"), "iou"] == pytest.approx(0.91)
    assert wide.loc[("leukemia_fab", "resnet50"), "acc"] == pytest.approx(0.999)
    assert paper.reported_wide("abstract", dataset="leukemia_fab").shape == (1, 1)


def test_missing_table_raises_a_clear_error():
    with pytest.raises(paper.NotReportedError, match="could not be recovered"):
        paper.reported_wide("5")
    with pytest.raises(LookupError, match="no such table"):
        paper.reported_wide("99")
    assert issubclass(paper.NotReportedError, LeukolibError)


def test_partially_recovered_tables_are_listed_as_missing():
    # Table 2 has only the JTSC ensemble IoU (quoted in issue #5): still incomplete.
    assert paper.reported_wide("2", dataset="jtsc").loc[("jtsc", "ENSEMBLE"), "iou"] == 0.926
    for item in ("2", "5", "A2"):
        assert item in paper.MISSING


def test_parameter_tables_are_empty_or_complete():
    # Tables A1/A2 and the protocol were not recovered: nothing may be guessed in.
    assert ("A2" in paper.MISSING) == (not paper.UNET_HPARAMS)
    assert ("A1" in paper.MISSING) == (not paper.HANDCRAFTED_PARAMS)
    assert paper.TRAINING_PROTOCOL["folds"] == 10 and paper.TRAINING_PROTOCOL["epochs"] == 30
    for name, hp in paper.UNET_HPARAMS.items():
        assert name == name.lower()
        assert set(hp) == set(paper.UNET_HPARAM_KEYS)


def test_dataset_sizes_add_up():
    fab = paper.DATASETS["leukemia_fab"]
    assert sum(fab["classes"].values()) == fab["images"] == 651
    raabin = paper.DATASETS["raabin"]
    assert sum(raabin["classes"].values()) == raabin["images"] == 1145
    assert paper.DATASETS["jtsc"]["images"] == 300
    assert paper.DATASETS["cellavision"]["images"] == 100
    assert paper.DATASETS["bloodseg"]["images"] == 367


def test_every_source_names_a_url_and_a_query():
    assert paper.SOURCES
    for url, query in paper.SOURCES.values():
        assert url.startswith("https://")
        assert query
