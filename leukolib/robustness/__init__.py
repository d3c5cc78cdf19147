"""Robustness of the classifiers and the segmentations to corrupted microscope images.

The paper's Table 7 adds motion blur and noise to its test split and reports
how the eight classifiers hold. This package reproduces that setting and
carries it further:

* :mod:`~leukolib.robustness.corruptions`: the paper's blur and noise
  (albumentations 1.x mapped onto 2.x), six microscope faults at five
  severities, seeded per image, and a dataset view that corrupts on reading;
* :mod:`~leukolib.robustness.sweeps`: the classifiers (and the segmentation
  methods) under every corruption and severity, the corruption applied to
  the microscope image **before** segmentation (the realistic pipeline) or
  **after** it (the clean nucleus mask over the corrupted image), so that the
  two effects separate;
* :mod:`~leukolib.robustness.report`: Table 7 beside the paper, accuracy
  curves with intervals, and paired tests of who degrades less;
* :mod:`~leukolib.robustness.figures`: the corruptions shown on an image,
  and the sweep curves.
"""
