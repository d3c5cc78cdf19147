"""The numbers reported by Diaz Resendiz et al. (2023), kept once as data.

Everything the library, the tests and the book compare against the paper is
read from this module, so that a number is transcribed in one place only.

Conventions
-----------
* Metrics the paper gives in percent are stored as fractions in [0, 1]
  (99.9 % is stored as ``0.999``); metrics it gives as fractions are stored
  unchanged.
* ``table`` is the paper's own numbering (``"2"``, ``"A1"`` ...). Numbers that
  the paper states outside a table are filed under ``"abstract"`` or under the
  section they come from (``"2.1"``).
* ``dataset`` uses the leukolib dataset names where one exists (``jtsc``,
  ``cellavision``, ``all_idb2``, ``bloodseg``, ``leukemia_fab``, ``raabin``);
  ``method`` is ``"HM"`` (handcrafted), ``"DEEP"`` (U-Net), ``"ENSEMBLE"`` or a
  classifier configuration such as ``"resnet50-medium-mish-segmented"``.

Provenance
----------
Only the openings of the article's web pages could be read from the reference
corpus available when this module was written (``search``, corpus ``pages``):

* https://www.mdpi.com/2072-6694/15/13/3376, its mirrors
  https://www2.mdpi.com/2072-6694/15/13/3376 and
  https://cricutcom-setup.com/2072-6694/15/13/3376 (query: "Explainable CAD
  System Acute Lymphoblastic Leukemia robust white blood cell segmentation"):
  title, authors, dates, Simple Summary (truncated);
* the abstract, as indexed by https://katalog.lib.cas.cz (OpenAIRE record) and
  https://discovery.researcher.life (same queries): the two headline numbers
  in :data:`RESULTS`;
* a text-only rendering of the cricutcom mirror that starts at Section 2.1
  (query: "Explainable CAD System Classification Acute Lymphoblastic Leukemia
  Table A2 hyperparameters U-Net each database"): the dataset sizes in
  :data:`DATASETS` (the image dimensions were lost in that rendering, and it
  stops before the ALL-IDB2 entry).

Missing
-------
About thirty queries on the table contents (segmentation metrics per
dataset and method, competitor comparison, classifier heads and activations,
hold-out and k-fold protocols, Table A1/A2/A3 parameters, logit-PCA cluster
analysis, motion-blur and noise robustness) in the ``pages``, ``code`` and
``docs`` corpora, and ``find_string`` on distinctive strings, returned no text
from the body of the article. Nothing below was filled in from memory or from
a brief, except the few numbers quoted by the project's issues, each
marked as such in its ``note``; what was not seen is absent. Listed in :data:`MISSING`:

* Tables 2-4 (segmentation: Acc, Pre, Rec, Spec, DSC, IoU per dataset for HM,
  DEEP and ENSEMBLE; comparison with published methods): every cell, except
  the overall IoU of 0.91 quoted in the abstract;
* Tables 5-8 (classification of the FAB set with ResNet-50: Linear or Medium
  head, ReLU or Mish, segmented or raw images, hold-out and k-fold): every
  cell, except the test accuracy of 99.9 % quoted in the abstract;
* the logit-PCA cluster analysis (centroid distances, spreads, Dist/SD ratio)
  and any robustness (motion blur, noise) numbers;
* Table A1 itself: :data:`HANDCRAFTED_PARAMS` holds its values as quoted
  by the project's issue #3;
* Table A2 (per-dataset U-Net hyper-parameters: lambda, delta, gamma of the
  Unified Focal Loss, learning rate, dropout, weight decay):
  :data:`UNET_HPARAMS` is empty;
* Table A3 (contents unknown);
* the learning rates and the rest of the protocol: :data:`TRAINING_PROTOCOL`
  holds only what the project's issues quote (folds, epochs, batch, size);
* the image dimensions of every dataset and the whole ALL-IDB2 description
  (Section 2.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from leukolib.errors import LeukolibError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "beside_paper",
    "CITATION",
    "DATASETS",
    "DOI",
    "HANDCRAFTED_PARAMS",
    "MISSING",
    "NotReportedError",
    "RESULTS",
    "Reported",
    "SOURCES",
    "TRAINING_PROTOCOL",
    "UNET_HPARAMS",
    "UNET_HPARAM_KEYS",
    "URL",
    "reported",
    "reported_wide",
]

CITATION = (
    "J. L. Diaz Resendiz, V. Ponomaryov, R. Reyes Reyes, S. Sadovnychiy, "
    '"Explainable CAD System for Classification of Acute Lymphoblastic Leukemia '
    'Based on a Robust White Blood Cell Segmentation", Cancers 15(13), 3376 (2023), '
    "doi:10.3390/cancers15133376"
)
DOI = "10.3390/cancers15133376"
URL = "https://www.mdpi.com/2072-6694/15/13/3376"


class NotReportedError(LeukolibError, LookupError):
    """A table (or a filter) that has no transcribed number in this module."""


@dataclass(frozen=True)
class Reported:
    """One number reported by the paper.

    Attributes
    ----------
    table : str
        The paper's table number (``"2"``, ``"A1"``), or ``"abstract"`` /
        a section number for numbers stated in the text.
    dataset : str
        Lowercase dataset name (leukolib's names where they exist).
    method : str
        ``"HM"``, ``"DEEP"``, ``"ENSEMBLE"``, a competitor's short name or a
        classifier configuration.
    metric : str
        Lowercase metric name (``"acc"``, ``"iou"``, ``"f1"`` ...).
    value : float
        The mean, as a fraction in [0, 1] where the paper reports percent.
    std : float or None
        The standard deviation when the paper reports one.
    note : str
        Protocol, reference or any caveat needed to read the number.
    """

    table: str
    dataset: str
    method: str
    metric: str
    value: float
    std: float | None = None
    note: str = ""


RESULTS: tuple[Reported, ...] = (
    Reported(
        table="abstract",
        dataset="six_databases",
        method="ENSEMBLE",
        metric="iou",
        value=0.91,
        note=(
            "Nucleus IoU of the proposed segmentation (image processing combined with "
            "U-Net) 'in six databases', as stated in the abstract; the per-dataset "
            "values (Tables 2-3) were not recovered."
        ),
    ),
    Reported(
        table="abstract",
        dataset="leukemia_fab",
        method="resnet50",
        metric="acc",
        value=0.999,
        note=(
            "Test accuracy of the modified ResNet-50 classifier on ALL subtypes (FAB "
            "L1/L2/L3), 99.9 % in the abstract; which head, activation and protocol it "
            "belongs to is given only in the tables, which were not recovered."
        ),
    ),
    Reported(
        table="2",
        dataset="jtsc",
        method="ENSEMBLE",
        metric="iou",
        value=0.926,
        note="Mean nucleus IoU of the ensemble on JTSC, as quoted in the project's issue #5.",
    ),
    Reported(
        table="2-4",
        dataset="six_databases",
        method="ENSEMBLE",
        metric="iou",
        value=0.917,
        note="Mean IoU of the ensemble over six datasets, as quoted in the project's issue #5.",
    ),
)
"""Every reported number transcribed so far (see the module docstring)."""

DATASETS: dict[str, dict[str, Any]] = {
    "leukemia_fab": {
        "images": 651,
        "classes": {"ALL1": 217, "ALL2": 217, "ALL3": 217},
        "task": "classification (FAB), labels confirmed by cytogenetic tests",
    },
    "cellavision": {"images": 100, "bit_depth": 24, "task": "segmentation"},
    "jtsc": {"images": 300, "task": "segmentation (nucleus and cytoplasm GT)"},
    "bloodseg": {"images": 367, "task": "segmentation (nucleus GT); SMC_IDB / Blood_Seg"},
    "raabin": {
        "images": 1145,
        "classes": {
            "lymphocyte": 242,
            "monocyte": 242,
            "neutrophil": 242,
            "eosinophil": 201,
            "basophil": 218,
        },
        "task": "segmentation (whole-cell and nucleus GT)",
    },
}
"""Dataset sizes stated in Section 2.1 (ALL-IDB2's entry was not recovered)."""

HANDCRAFTED_PARAMS: dict[str, Any] = {
    "bilateral_diameter": 9,
    "bilateral_sigma_color": 50.0,
    "bilateral_sigma_space": 50.0,
    "closing_kernel": 3,
    "min_area": 150,
    "dilation": 2,
    "dilation_basophil": 4,
}
"""Table A1 / Algorithm 1 parameters, as quoted in the project's issue #3 (the table
itself was not read): bilateral filter kernel 9 with colour and spatial sigma 50,
closing kernel 3, objects under 150 px removed, dilation 2 (4 for basophils)."""

UNET_HPARAMS: dict[str, dict[str, float]] = {}
"""Table A2, per-dataset U-Net hyper-parameters: not recovered (empty).

When filled, keyed by leukolib dataset name, each entry with the keys of
:data:`UNET_HPARAM_KEYS`.
"""

UNET_HPARAM_KEYS: tuple[str, ...] = ("lam", "delta", "gamma", "lr", "dropout", "weight_decay")
"""The keys every :data:`UNET_HPARAMS` entry must have."""

TRAINING_PROTOCOL: dict[str, Any] = {
    "folds": 10,
    "epochs": 30,
    "batch_size": 8,
    "image_size": 256,
    "optimizer": "Adam",
    "scheduler": "ReduceLROnPlateau",
}
"""The protocol as quoted in the project's issues #2 and #4 (10 folds, 30 epochs,
batch size 8, images resized to 256, Adam with ReduceLROnPlateau for the U-Net);
the learning rates (Table A2 and the classifier's) were not recovered."""

MISSING: tuple[str, ...] = (
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "A2",
    "A3",
    "cluster-analysis",
    "robustness",
    "training-protocol",
    "dataset-dimensions",
)
"""Tables and text items of the paper that could not be transcribed."""

SOURCES: dict[str, tuple[str, str]] = {
    "abstract": (
        "https://katalog.lib.cas.cz/KNAV/EdsRecord/edsair,edsair.multidiscipl.."
        "e7eb366133929a7ed9688c2c3c43d3e2",
        "Explainable CAD System Acute Lymphoblastic Leukemia robust white blood cell segmentation",
    ),
    "2.1": (
        "https://cricutcom-setup.com/2072-6694/15/13/3376",
        "Explainable CAD System Classification Acute Lymphoblastic Leukemia Table A2 "
        "hyperparameters U-Net each database",
    ),
}
"""Where each transcribed item was read: (URL, search query)."""

_COLUMNS = ("table", "dataset", "method", "metric", "value", "std", "note")


def reported(
    table: str | None = None,
    dataset: str | None = None,
    method: str | None = None,
) -> pd.DataFrame:
    """Tidy DataFrame of the reported numbers, filtered.

    Parameters
    ----------
    table, dataset, method : str, optional
        Keep only the rows equal to these (case-insensitive for ``dataset``;
        ``None`` keeps all).

    Returns
    -------
    pandas.DataFrame
        One row per number, columns ``table, dataset, method, metric, value,
        std, note``; possibly empty.

    Examples
    --------
    >>> reported(table="abstract", dataset="leukemia_fab")["value"].item()
    0.999
    """
    import pandas as pd

    rows = [
        asdict(r)
        for r in RESULTS
        if (table is None or r.table == str(table))
        and (dataset is None or r.dataset == dataset.lower())
        and (method is None or r.method == method)
    ]
    return pd.DataFrame(rows, columns=list(_COLUMNS))


def reported_wide(table: str, dataset: str | None = None) -> pd.DataFrame:
    """Rows = (dataset, method), columns = metrics, values = means.

    This is the paper's own layout of a results table.

    Parameters
    ----------
    table : str
        The paper's table number (or ``"abstract"``).
    dataset : str, optional
        Keep one dataset only.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(dataset, method)``, one column per metric.

    Raises
    ------
    NotReportedError
        When nothing is transcribed for that table (and dataset); the message
        says whether the table is one of :data:`MISSING`.
    """
    tidy = reported(table=table, dataset=dataset)
    if tidy.empty:
        why = (
            "it could not be recovered from the sources (see leukolib.paper.MISSING)"
            if str(table) in MISSING
            else "no such table or dataset in leukolib.paper.RESULTS"
        )
        where = f"Table {table}" + (f", dataset {dataset!r}" if dataset else "")
        raise NotReportedError(f"{where} has no transcribed numbers: {why}.")
    wide = tidy.pivot_table(
        index=["dataset", "method"], columns="metric", values="value", aggfunc="first"
    )
    wide.columns.name = None
    return wide


def beside_paper(
    ours: Mapping[str, Mapping[str, float]],
    dataset: str,
    method: str,
    metrics: Sequence[str] = ("acc", "pre", "rec", "spec", "dsc", "iou"),
) -> pd.DataFrame:
    """Our summary beside the paper's numbers for the same dataset and method.

    Parameters
    ----------
    ours : mapping
        ``{metric: {"mean": m, "std": s}}``, as returned by
        :func:`leukolib.metrics.summarize`.
    dataset, method : str
        What to look up in :data:`RESULTS` (e.g. ``"jtsc"``, ``"HM"``).
    metrics : sequence of str
        The columns, in order.

    Returns
    -------
    pandas.DataFrame
        Rows ``leukolib`` and ``paper (Table N)`` (one per table reporting the
        pair), cells ``"mean ± std"`` strings; a paper cell that was not
        transcribed is ``"n/a"``.

    Examples
    --------
    >>> t = beside_paper({"iou": {"mean": 0.9, "std": 0.1}}, "jtsc", "ENSEMBLE", ["iou"])
    >>> t.loc["paper (Table 2)", "iou"]
    '0.926'
    """
    import pandas as pd

    def cell(mean: float | None, std: float | None) -> str:
        if mean is None:
            return "n/a"
        return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"

    rows = {
        "leukolib": {
            m: cell(ours[m]["mean"], ours[m]["std"]) if m in ours else "n/a" for m in metrics
        }
    }
    theirs = reported(dataset=dataset, method=method)
    for table, group in theirs.groupby("table"):
        by_metric = {r.metric: r for r in group.itertuples()}
        rows[f"paper (Table {table})"] = {
            m: cell(by_metric[m].value, by_metric[m].std) if m in by_metric else "n/a"
            for m in metrics
        }
    if len(rows) == 1:
        rows["paper"] = dict.fromkeys(metrics, "n/a")
    return pd.DataFrame.from_dict(rows, orient="index")[list(metrics)]
