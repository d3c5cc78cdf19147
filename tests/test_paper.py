"""The paper's tables, as data: read from the package, checked against the CSV files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from leukolib import paper

SHARED_PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper"


def test_citation_and_doi():
    assert paper.DOI == "10.3390/cancers15133376"
    assert "Cancers 15(13), 3376 (2023)" in paper.CITATION


def test_every_table_reads_and_the_tidy_view_is_fractions():
    for name in paper.TABLES:
        assert len(paper.table(name)) > 0, name
    r = paper.reported()
    pct = r[r["metric"].isin(["acc", "pre", "rec", "spec", "dsc", "iou", "f1", "val_acc"])]
    assert pct["value"].between(0, 1).all()
    assert set(r["table"]) == {"2", "3", "4", "5", "6", "7", "8", "A3"}


def test_spot_cells():
    def one(**kw):
        return float(paper.reported(**kw)["value"].item())

    assert one(table="2", dataset="bloodseg", metric="iou") == 0.920
    assert one(table="2", dataset="average", metric="dsc") == pytest.approx(0.9569)
    assert one(table="3", method="DEEP", metric="iou") == 0.823
    assert one(table="4", dataset="cellavision", method="LDAS-NET", metric="pre") == \
        pytest.approx(0.9909)
    assert one(table="5", method="segmented-mish-medium") == pytest.approx(0.9999)
    assert one(table="7", method="raw-mish-medium", metric="acc") == pytest.approx(0.803)
    assert one(table="A3", method="segmented-mish-linear", metric="proba:1_1_7") == 0.998
    t4 = paper.reported(table="4", dataset="jtsc", method="LDS-NET")
    assert set(t4["n_test_images"]) == {60} and set(t4["ref"]) == {17}
    assert paper.reported(table="4", method="Makem & Tiedeu", metric="spec").empty  # a "-"


def test_parameter_tables():
    assert paper.HANDCRAFTED_PARAMS == {
        "bilateral_diameter": 9, "bilateral_sigma_color": 50.0, "bilateral_sigma_space": 50.0,
        "closing_kernel": 3, "min_area": 150, "dilation": 2, "dilation_basophil": 4}
    assert paper.UNET_HPARAMS["jtsc"] == {"lam": 0.5, "delta": 0.8, "gamma": 1.0, "lr": 1e-4,
                                          "dropout": 0.05, "weight_decay": 1e-4}
    assert all(v["gamma"] == 1.0 for v in paper.UNET_HPARAMS.values())


def test_table8_arithmetic_as_the_readme_describes():
    """dist_total = sum of the three distances; sd_total = root of the summed squares;
    ratio = 3 * dist / sd, within the rounding of the printed cells (all four rows)."""
    t8 = paper.table("8")
    for _, row in t8.iterrows():
        dist = row["dist_l1_l2"] + row["dist_l2_l3"] + row["dist_l1_l3"]
        assert dist == pytest.approx(row["dist_total"], abs=0.011)
        sd = math.sqrt(row["sd_l1"] ** 2 + row["sd_l2"] ** 2 + row["sd_l3"] ** 2)
        assert sd == pytest.approx(row["sd_total"], abs=0.006)
        # the ratio was computed before the SD was rounded: within the rounding of the cells
        assert 3 * dist / sd == pytest.approx(row["ratio_dist_sd"], abs=0.04)


def test_classifier_keys():
    assert paper.classifier_key("Segmented Mish Medium") == "segmented-mish-medium"
    assert paper.classifier_key("mish_linear_ns") == "raw-mish-linear"
    with pytest.raises(ValueError):
        paper.classifier_key("ResNet")


@pytest.mark.shared
def test_the_package_data_are_the_shared_csv_files(shared_data):
    folder = shared_data.parent / "paper"
    if not folder.is_dir():
        pytest.fail(f"{folder} missing")
    for name, (filename, _) in paper.TABLES.items():
        with open(folder / filename, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert len(rows) - 1 == len(paper.table(name)), filename
        packaged = (Path(paper.__file__).parent / "data" / filename).read_text()
        assert packaged == (folder / filename).read_text(), filename
