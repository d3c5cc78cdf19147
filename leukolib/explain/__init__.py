"""Explanations that are measured: class activation maps, their place, faithfulness, calibration.

The paper calls its system explainable on the strength of pictures: four
class activation maps that, for the segmented models, sit on the nucleus,
and per-image probabilities read as reliability. This stage turns each
picture into a number a reader can check:

* :mod:`~leukolib.explain.cams`: Grad-CAM, Grad-CAM++, HiResCAM and
  XGrad-CAM (pytorch-grad-cam) from one pass per batch (:func:`compute_cams`);
* :mod:`~leukolib.explain.localization`: the share of each map's energy on
  the nucleus (and the cell), the pointing game, and the best share a map
  of the grid can reach;
* :mod:`~leukolib.explain.faithfulness`: ROAD, deletion and insertion
  curves, against random maps on the CAMs' grid (several draws averaged);
* :mod:`~leukolib.explain.sanity`: the model-randomization check of Adebayo
  et al. (2018);
* :mod:`~leukolib.explain.calibration`: expected calibration error,
  reliability, temperature scaling fold by fold on the out-of-fold logits
  (before the fold models' probabilities are averaged), and the ECE a
  perfectly calibrated model would show on as many images (its floor);
* :mod:`~leukolib.explain.probabilities`: the paper's Table A3 layout;
* :mod:`~leukolib.explain.summary`: means with intervals, segmented against
  raw, the recommended method;
* :mod:`~leukolib.explain.run_explanation` and :mod:`~leukolib.explain.report`:
  the layer over trained classifier runs (:func:`explain_run` for one,
  :func:`explain_runs` for a grid, with the book's tables and figures);
* :mod:`~leukolib.explain.figures` and :mod:`~leukolib.explain.page`: the
  figures of the book and the one-page PNG of ``leukolib explain``;
* :mod:`~leukolib.explain.clusters`: the logit cluster analysis (Table 8).

Every measure takes plain things (a model, normalised inputs, masks at the
network's input resolution, logits); :mod:`~leukolib.explain.report` feeds
them from a :class:`~leukolib.classification.ClassifierRun`.
"""

from leukolib.explain.calibration import (
    calibration_summary,
    ece_floor,
    expected_calibration_error,
    fit_temperature,
    fold_probabilities,
    fold_temperatures,
    reliability_table,
)
from leukolib.explain.cams import METHOD_LABELS, METHODS, CamBatch, compute_cams, target_layer
from leukolib.explain.faithfulness import deletion_insertion, faithfulness_scores, road_scores
from leukolib.explain.localization import (
    area_fraction,
    energy_share,
    grid_best_share,
    localization_scores,
    pointing_game,
)
from leukolib.explain.page import explain_batch, explain_page
from leukolib.explain.probabilities import paper_table_a3, pick_images, probability_table
from leukolib.explain.report import (
    ExplanationReport,
    best_by_validation,
    calibrate_run,
    explain_runs,
)
from leukolib.explain.run_explanation import ModelExplanation, explain_run
from leukolib.explain.sanity import SANITY_MAX_RHO, randomized_copy, sanity_check, sanity_summary

__all__ = [
    "METHODS",
    "METHOD_LABELS",
    "SANITY_MAX_RHO",
    "CamBatch",
    "ExplanationReport",
    "ModelExplanation",
    "area_fraction",
    "best_by_validation",
    "calibrate_run",
    "calibration_summary",
    "ece_floor",
    "compute_cams",
    "deletion_insertion",
    "energy_share",
    "expected_calibration_error",
    "explain_batch",
    "explain_page",
    "explain_run",
    "explain_runs",
    "faithfulness_scores",
    "fit_temperature",
    "fold_probabilities",
    "fold_temperatures",
    "grid_best_share",
    "localization_scores",
    "paper_table_a3",
    "pick_images",
    "pointing_game",
    "probability_table",
    "randomized_copy",
    "reliability_table",
    "road_scores",
    "sanity_check",
    "sanity_summary",
    "target_layer",
]
