"""The numbers reported by Diaz Resendiz et al. (2023), kept once, as data.

Every table of the article's results and appendix ships with the package as
a CSV file in ``leukolib/paper/data`` (transcribed number for number, with
percentages as printed and IoU as a fraction; an empty cell is a "-" in the
article). This module reads them and gives two views:

* :func:`table` returns one table as printed (``table("2")``, ``table("A1")``);
* :func:`reported` returns every number as one tidy table, with leukolib's
  dataset names and metric keys, percentages converted to fractions, so that
  any results table can put the paper's numbers beside ours.

Names
-----
Datasets are leukolib's names (:data:`DATASET_NAMES`): the paper's SMC_IDB is
``bloodseg``, its own FAB set ``leukemia_fab``. The paper's own segmentation
methods are ``HM`` (handcrafted), ``DEEP`` (U-Net) and ``ENSEMBLE`` (their
logical AND followed by an area opening); a competitor keeps its printed
name and the article's reference number (``ref``). A classifier is named
``"<input>-<activation>-<head>"`` (:func:`classifier_key`), e.g.
``"segmented-mish-medium"``.

What the arithmetic of the tables shows
---------------------------------------
Table 8 (logit-space PCA cluster analysis): ``dist_total`` is the sum of the
three centroid distances; ``sd_total`` is ``sqrt(sd_l1^2 + sd_l2^2 + sd_l3^2)``
(recomputed from the printed SDs, every row agrees within rounding: row 2
gives 1.915 for the printed 1.92); the ratio is ``3 * dist_total / sd_total``
(the text's "weighted ratio of 3-1"), computed before rounding. How the SD
of one cluster combines its spread along the two principal components is not
stated. Table 7 prints F1 equal to recall for every model, which
suggests weighted averaging over classes. Table 2's average IoU is 0.917, which
the abstract rounds to 0.91.

Examples
--------
>>> row = table("2").iloc[2]
>>> row["dataset"], float(row["iou"])
('JTSC', 0.926)
>>> float(reported(table="2", dataset="jtsc", metric="iou")["value"].item())
0.926
>>> HANDCRAFTED_PARAMS["min_area"], UNET_HPARAMS["jtsc"]["delta"]
(150, 0.8)
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CITATION",
    "DATASET_NAMES",
    "DOI",
    "HANDCRAFTED_PARAMS",
    "PAPER_METHODS",
    "TABLES",
    "UNET_HPARAMS",
    "URL",
    "classifier_key",
    "reported",
    "table",
]

CITATION = (
    "J. L. Diaz Resendiz, V. Ponomaryov, R. Reyes Reyes, S. Sadovnychiy, "
    '"Explainable CAD System for Classification of Acute Lymphoblastic Leukemia '
    'Based on a Robust White Blood Cell Segmentation", Cancers 15(13), 3376 (2023), '
    "doi:10.3390/cancers15133376"
)
DOI = "10.3390/cancers15133376"
URL = "https://www.mdpi.com/2072-6694/15/13/3376"

#: The paper's table numbers and the files that hold them, with what each holds.
TABLES: dict[str, tuple[str, str]] = {
    "2": ("table2_ensemble.csv", "the ensemble on six datasets, and their average"),
    "3": ("table3_leukemia_dataset.csv", "HM, DEEP and the ensemble on the Leukemia Dataset"),
    "4": (
        "table4_segmentation_comparison.csv",
        "the ensemble against published methods, per dataset, with their test-set sizes",
    ),
    "5": ("table5_kfold_best.csv", "best validation accuracy over 10 folds, four classifiers"),
    "6": (
        "table6_classification_comparison.csv",
        "validation accuracy against Ochoa-Montiel et al.'s classifiers",
    ),
    "7": (
        "table7_test_robustness.csv",
        "the 10 % test split with blur and noise added: best and worst two classifiers",
    ),
    "8": ("table8_cluster_analysis.csv", "logit-space PCA cluster analysis on that test split"),
    "A1": ("tableA1_handcrafted.csv", "handcrafted segmentation parameters"),
    "A2": ("tableA2_unet.csv", "U-Net hyperparameters per dataset"),
    "A3": (
        "tableA3_probabilities.csv",
        "predicted-class probability of nine correctly classified images, four classifiers",
    ),
}

#: The paper's dataset names -> leukolib's.
DATASET_NAMES: dict[str, str] = {
    "Leukemia Dataset": "leukemia_fab",
    "CellaVision": "cellavision",
    "JTSC": "jtsc",
    "SMC_IDB": "bloodseg",
    "Raabin_WBC": "raabin",
    "ALL_IDB2": "all_idb2",
    "AVERAGE": "average",
}

#: The paper's own segmentation methods, as its tables name them -> leukolib's.
PAPER_METHODS: dict[str, str] = {
    "Proposed HM": "HM",
    "Proposed DEEP": "DEEP",
    "Proposed Ensemble": "ENSEMBLE",
}

_SEGMENTATION_METRICS = ("acc", "pre", "rec", "spec", "dsc", "iou")
_PERCENT = {"acc_pct": "acc", "pre_pct": "pre", "rec_pct": "rec", "spec_pct": "spec",
            "dsc_pct": "dsc", "f1_pct": "f1", "validation_acc_pct": "val_acc"}
_COLUMNS = ("table", "dataset", "method", "metric", "value", "ref", "n_test_images", "note")


@cache
def _read(name: str) -> pd.DataFrame:
    import pandas as pd

    key = str(name).upper()
    if key not in TABLES:
        raise KeyError(f"the paper has no table {name!r}; known: {', '.join(TABLES)}")
    with files(__name__).joinpath("data", TABLES[key][0]).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, dtype={"image": str, "ref": "Int64"}, keep_default_na=True)


def table(name: str) -> pd.DataFrame:
    """One of the paper's tables as printed (a fresh copy).

    Parameters
    ----------
    name : str
        The paper's numbering: ``"2"`` ... ``"8"``, ``"A1"``, ``"A2"``, ``"A3"``.

    Returns
    -------
    pandas.DataFrame
        The CSV as transcribed: percentages in percent, IoU as a fraction,
        a "-" of the article as a missing value.
    """
    return _read(name).copy()


def classifier_key(text: str) -> str:
    """Leukolib's name of one of the paper's classifiers.

    Examples
    --------
    >>> classifier_key("NoSegmented ReLU Linear"), classifier_key("mish_medium_s")
    ('raw-relu-linear', 'segmented-mish-medium')
    """
    words = text.replace("_", " ").lower().split()
    if words and words[-1] in ("s", "ns"):  # Table A3's column names: mish_linear_s
        words = [("segmented" if words[-1] == "s" else "nosegmented"), *words[:-1]]
    source = "raw" if words[0] == "nosegmented" else words[0]
    if source not in ("segmented", "raw") or len(words) != 3:
        raise ValueError(f"not one of the paper's classifier names: {text!r}")
    return f"{source}-{words[1]}-{words[2]}"


def _tidy_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def add(tab, dataset, method, metric, value, ref=None, n=None, note=""):
        if value is None or value != value:  # a "-" of the article
            return
        rows.append({"table": tab, "dataset": dataset, "method": method, "metric": metric,
                     "value": float(value), "ref": ref, "n_test_images": n, "note": note})

    def segmentation_row(tab, r, dataset, method, ref=None, n=None):
        for col, metric in _PERCENT.items():
            if col in r and metric in _SEGMENTATION_METRICS:
                add(tab, dataset, method, metric, None if r[col] != r[col] else r[col] / 100,
                    ref, n)
        add(tab, dataset, method, "iou", r["iou"], ref, n)

    for r in _read("2").to_dict("records"):
        segmentation_row("2", r, DATASET_NAMES[r["dataset"]], "ENSEMBLE")
    for r in _read("3").to_dict("records"):
        segmentation_row("3", r, "leukemia_fab", PAPER_METHODS[r["method"]])
    for r in _read("4").to_dict("records"):
        method = PAPER_METHODS.get(r["method"], r["method"])
        ref = None if r["ref"] is None or r["ref"] != r["ref"] else int(r["ref"])
        segmentation_row("4", r, DATASET_NAMES[r["dataset"]], method, ref, int(r["n_test_images"]))
    for r in _read("5").to_dict("records"):
        add("5", "leukemia_fab", classifier_key(r["model"]), "val_acc_best_fold",
            r["acc_pct"] / 100, note="best validation accuracy over the 10 folds")
    for r in _read("6").to_dict("records"):
        ref = None if r["ref"] is None or r["ref"] != r["ref"] else int(r["ref"])
        method = "segmented-mish-medium" if r["method"] == "Proposed Method" else r["method"]
        add("6", "leukemia_fab", method, "val_acc", r["validation_acc_pct"] / 100, ref)
    for r in _read("7").to_dict("records"):
        for col in ("acc_pct", "pre_pct", "rec_pct", "f1_pct"):
            add("7", "leukemia_fab", classifier_key(r["model"]), _PERCENT[col], r[col] / 100,
                note="test split with motion blur and noise")
    for r in _read("8").to_dict("records"):
        for col, value in r.items():
            if col != "model":
                add("8", "leukemia_fab", classifier_key(r["model"]), col, value)
    a3 = _read("A3")
    for r in a3.to_dict("records"):
        for col in a3.columns[2:]:
            image = r["image"] if isinstance(r["image"], str) else "average"
            add("A3", "leukemia_fab", classifier_key(col), f"proba:{image}", r[col],
                note=f"class {r['class']}")
    return rows


def reported(
    table: str | None = None,
    dataset: str | None = None,
    method: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Every number of the paper's results tables as one tidy table, filtered.

    Parameters
    ----------
    table, dataset, method, metric : str, optional
        Keep only the rows equal to these (``None`` keeps all). ``table`` is
        the paper's numbering (``"2"``), ``dataset`` leukolib's name.

    Returns
    -------
    pandas.DataFrame
        Columns ``table, dataset, method, metric, value, ref, n_test_images,
        note``: percentages as fractions in [0, 1], Table 8's distances and
        SDs as printed. The parameter tables (A1, A2) are in
        :data:`HANDCRAFTED_PARAMS` and :data:`UNET_HPARAMS`.

    Examples
    --------
    >>> r = reported(table="4", dataset="bloodseg", metric="iou")
    >>> r[["method", "value"]].values.tolist()[-1]
    ['ENSEMBLE', 0.92]
    """
    import pandas as pd

    frame = pd.DataFrame(_tidy_rows(), columns=list(_COLUMNS))
    for key, value in (("table", table), ("dataset", dataset), ("method", method),
                       ("metric", metric)):
        if value is not None:
            frame = frame[frame[key] == str(value)]
    return frame.reset_index(drop=True)


def _handcrafted_params() -> dict[str, Any]:
    a1 = dict(_read("A1").itertuples(index=False, name=None))
    return {
        "bilateral_diameter": int(a1["bilateral filter kernel size"]),
        "bilateral_sigma_color": float(a1["bilateral filter sigma (color and spatial)"]),
        "bilateral_sigma_space": float(a1["bilateral filter sigma (color and spatial)"]),
        "closing_kernel": int(a1["closing kernel"]),
        "min_area": int(a1["area filter"]),
        "dilation": int(a1["dilation"]),
        "dilation_basophil": int(a1["dilation (Raabin basophil)"]),
    }


def _unet_hparams() -> dict[str, dict[str, float]]:
    out = {}
    for r in _read("A2").to_dict("records"):
        out[DATASET_NAMES[r["dataset"]]] = {
            "lam": float(r["lambda"]),
            "delta": float(r["delta"]),
            "gamma": float(r["gamma"]),
            "lr": float(r["learning_rate"]),
            "dropout": float(r["dropout"]),
            "weight_decay": float(r["weight_decay"]),
        }
    return out


#: Table A1: bilateral filter kernel 9, colour and spatial sigma 50, closing 3,
#: area filter 150 px, dilation 2 (4 for Raabin's basophils), as keyword names.
HANDCRAFTED_PARAMS: dict[str, Any] = _handcrafted_params()

#: Table A2: per dataset (leukolib's names) ``lam, delta, gamma, lr, dropout, weight_decay``.
UNET_HPARAMS: dict[str, dict[str, float]] = _unet_hparams()
