"""Tables as a reader reads them: labels in words, dataset display names, intervals, wrapping."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from leukolib.tables import format_interval, readable, reader_label, styled


def text_of(html: str) -> str:
    """The words of an HTML table, tags and styles dropped."""
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def paired_frame() -> pd.DataFrame:
    return pd.DataFrame({"dataset": ["bloodseg", "jtsc"], "trained_on": ["all_idb2", "jtsc"],
                         "mean_diff": [0.017, -0.002], "ci_low": [0.013, -0.004],
                         "wilcoxon_p_holm": [3e-28, 0.4]}).set_index(["dataset", "trained_on"])


def test_styled_shows_display_names_and_words_never_code_names():
    words = text_of(styled(paired_frame(), caption="paired").to_html())
    for shown in ("SMC_IDB (BloodSeg)", "ALL-IDB2", "JTSC", "trained on", "mean difference",
                  "CI low", "Wilcoxon p (Holm)"):
        assert shown in words
    for code in ("bloodseg", "all_idb2", "trained_on", "mean_diff", "ci_low", "wilcoxon"):
        assert code not in words


def test_styled_still_finds_the_best_column_by_its_code_name():
    html = styled(paired_frame(), best=["mean_diff"]).to_html()
    bold = re.findall(r"#(T_\w+_row\d+_col\d+)[^{]*\{\s*font-weight: bold", html)
    assert len(bold) == 1 and bold[0].endswith("row0_col0")  # 0.017, the higher difference


@pytest.mark.parametrize("label, shown", [
    ("jtsc -> all_idb2", "JTSC -> ALL-IDB2"),
    ("sd_total", "total SD"),
    ("road_morf", "ROAD MoRF"),
    ("val_acc", "validation accuracy"),
    ("motion_blur", "motion blur"),
    ("iou<0.3 or entropy>0.35", "iou<0.3 or entropy>0.35"),  # a rule's name is kept as it is
    ("classification_all_idb2_cpu.json", "classification_all_idb2_cpu.json"),  # a file name
    ("raw-mish-linear", "raw-mish-linear"),
    ("trained on jtsc.", "trained on JTSC."),
    ("BloodImage_00384", "BloodImage_00384"),  # an image id keeps its underscore
    ("python benchmarks/classification_report.py --datasets all_idb2",  # a command, as typed
     "python benchmarks/classification_report.py --datasets all_idb2"),
    (0, 0),
])
def test_reader_label(label, shown):
    assert reader_label(label) == shown


def test_readable_renames_labels_and_text_cells_and_keeps_the_numbers():
    frame = pd.DataFrame({"unit": ["bloodseg -> jtsc"], "n_images": [300],
                          "oof_iou": [0.87]}).set_index("unit")
    frame.attrs["note"] = "a note"
    out = readable(frame)
    assert list(out.index) == ["SMC_IDB (BloodSeg) -> JTSC"]
    assert list(out.columns) == ["images", "out-of-fold IoU"]
    assert out.iloc[0].tolist() == [300, 0.87] and out.attrs["note"] == "a note"
    assert list(frame.columns) == ["n_images", "oof_iou"]  # the input is not modified


def test_an_interval_bound_within_rounding_error_of_zero_prints_as_zero():
    assert format_interval(-0.032, -0.10787, 1.3e-17, 3, signed=True) == "-0.032 [-0.108, +0.000]"
    assert format_interval(0.03, -1e-17, 0.1, 3) == "0.030 [0.000, 0.100]"  # no "-0.000"
    # a genuinely small bound still keeps its digits
    assert format_interval(-0.006, -0.014, -0.0003, 3) == "-0.0060 [-0.0140, -0.0003]"


def test_a_long_text_column_wraps_and_a_number_column_does_not():
    frame = pd.DataFrame({"commit": ["1013a75"], "command": [
        "python benchmarks/classification_report.py --reports "
        "leukolib/reference/classification_all_idb2_cpu.json"]}, index=["x.json"])
    html = styled(frame, best=[]).to_html()
    wrapped = re.findall(r"#T_\w+_row0_(col\d)\s*\{[^}]*overflow-wrap: anywhere", html)
    assert wrapped == ["col1"]


def test_a_measured_box_shows_display_names():
    from leukolib.notebook import measured

    box = measured("bloodseg", [pd.DataFrame({"trained_on": ["bloodseg"], "oof_iou": [0.871]})])
    words = text_of(box.data)
    assert "Measured on SMC_IDB (BloodSeg)" in words
    assert "trained on" in words and "out-of-fold IoU" in words and "bloodseg" not in words


def test_paired_view_of_a_table_without_means_adjusts_and_keeps_a_small_mean_visible():
    from leukolib.tables import paired_view

    table = pd.DataFrame({"mean_diff": [-0.00013, 0.017], "ci_low": [-0.004, 0.013],
                          "ci_high": [0.002, 0.022], "wilcoxon_p": [0.03, 0.02],
                          "wins": [1, 40], "losses": [2, 2], "ties": [0, 1]},
                         index=["ENSEMBLE - HM", "ENSEMBLE - DEEP"])
    view = paired_view(table, ("ENSEMBLE", "HM"))
    assert list(view.columns) == ["difference [95 % CI]", "Wilcoxon p", "Holm p",
                                  "wins / losses / ties", "verdict"]
    assert view["difference [95 % CI]"].iloc[0] == "-0.0001 [-0.0040, +0.0020]"
    assert view["Holm p"].tolist() == ["0.04", "0.04"]  # Holm over the table's two tests
    assert "Holm" in view.attrs["note"]


def test_paired_view_says_when_every_pair_ties():
    from leukolib.tables import TIED, paired_view

    table = pd.DataFrame({"mean_diff": [0.0, 0.017], "ci_low": [np.nan, 0.013],
                          "ci_high": [np.nan, 0.022], "wilcoxon_p": [1.0, 0.02],
                          "wins": [0, 40], "losses": [0, 2], "ties": [300, 1],
                          "verdict": ["no significant difference", "ENSEMBLE better"]},
                         index=["ENSEMBLE - HM", "ENSEMBLE - DEEP"])
    view = paired_view(table, ("ENSEMBLE", "HM"))
    assert view["verdict"].tolist() == [TIED, "ENSEMBLE better"]
    assert view["difference [95 % CI]"].iloc[0] == "+0.000 (no interval)"


def test_a_cell_keeps_a_single_word_that_a_header_would_spell_out():
    frame = pd.DataFrame({"metric": ["pre", "color baseline"], "acc": [0.9, 0.8]})
    words = text_of(styled(frame, best=[]).to_html())
    assert "pre" in words.split() and "colour baseline" in words and "accuracy" in words
