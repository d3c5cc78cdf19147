"""ResNet-50 classifiers on segmented or raw images: the paper's eight models and their protocol.

The stage's modules:

* :mod:`~leukolib.classification.models`: ResNet-50 with a Linear or Medium head,
  ReLU or Mish throughout (:func:`build_classifier`), pretrained weights;
* :mod:`~leukolib.classification.inputs`: what the network sees (segmented or
  raw, optional crop around the nucleus, grey ablation, resize and centre crop);
* :mod:`~leukolib.classification.masks`: the nucleus masks (handcrafted,
  ensemble, U-Net, oracle), cached, never from a U-Net that saw a test image;
* :mod:`~leukolib.classification.augment`: the paper's albumentations pipeline;
* :mod:`~leukolib.classification.splits`: the hold-out test split and the k folds;
* :mod:`~leukolib.classification.training`: one model by k-fold into a
  resumable run directory; :mod:`~leukolib.classification.grid`: all eight;
  :mod:`~leukolib.classification.merge`: one run from folds trained apart;
* :mod:`~leukolib.classification.run`: a trained run (:func:`load_classifier_run`);
* :mod:`~leukolib.classification.baselines`: handcrafted-feature and colour-only
  classifiers on the same splits;
* :mod:`~leukolib.classification.report`: tables beside the paper, McNemar,
  the hard-attention and colour experiments; :mod:`~leukolib.classification.figures`.

The interface the later chapters build on::

    model = build_classifier(num_classes, head="linear", act="relu", weights=None)
    run = load_classifier_run(run_dir)          # ClassifierRun
    prep = run.prepare(images)                  # Prepared: x, images, masks, warp
    logits = run.logits(prep.x)                 # fold average
    folder = classifier_runs(output_dir, dataset, profile, seed)
    records = train_grid(dataset, folder, profile=profile, seed=seed)
"""

from leukolib.classification.grid import GRID, classifier_runs, grid_keys, train_grid
from leukolib.classification.inputs import InputSpec, network_view
from leukolib.classification.masks import MaskSource, SegmenterSpec, train_segmenter_for
from leukolib.classification.merge import merge_classifier_runs, merge_grid_runs
from leukolib.classification.models import (
    PretrainedWeightsWarning,
    WeightsError,
    build_classifier,
)
from leukolib.classification.run import ClassifierRun, Prepared, load_classifier_run
from leukolib.classification.training import train_classifier

__all__ = [
    "GRID",
    "ClassifierRun",
    "InputSpec",
    "MaskSource",
    "Prepared",
    "PretrainedWeightsWarning",
    "SegmenterSpec",
    "WeightsError",
    "build_classifier",
    "classifier_runs",
    "grid_keys",
    "load_classifier_run",
    "merge_classifier_runs",
    "merge_grid_runs",
    "network_view",
    "train_classifier",
    "train_grid",
    "train_segmenter_for",
]
