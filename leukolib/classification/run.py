"""A trained classifier run, loaded from its directory: models, inputs, logits.

:func:`load_classifier_run` opens a directory written by
:func:`~leukolib.classification.training.train_classifier` and returns a
:class:`ClassifierRun`, the object the later chapters (explanations,
clusters, robustness) and ``leukolib classify`` work with::

    run = load_classifier_run(run_dir)
    prep = run.prepare(images)          # segmented runs segment with their own segmenter
    logits = run.logits(prep.x)         # the average of all folds' logits
    model = run.model(run.best_fold)    # the fold's network: model.layer4[-1] is the CAM layer
    fast = run.inference_model(0)       # the same with batch norms folded (predictions, CAMs)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from leukolib.classification.inputs import InputSpec, network_view, to_tensor
from leukolib.classification.masks import MaskSource, SegmenterSpec
from leukolib.classification.models import build_classifier, fold_batchnorm
from leukolib.classification.results import LOGITS
from leukolib.classification.training import RUN_FORMAT, predict_logits
from leukolib.device import select_device
from leukolib.runs import RunDirectory, RunError, load_torch

__all__ = ["ClassifierRun", "Prepared", "load_classifier_run"]


@dataclass
class Prepared:
    """Images made ready for a run's networks (:meth:`ClassifierRun.prepare`).

    Attributes
    ----------
    x : torch.Tensor
        ``(N, 3, S, S)`` normalised network input.
    images : list of ndarray
        ``(S, S, 3)`` ``uint8``: what the network sees, before normalisation.
    masks : list of ndarray or None
        ``(S, S)`` bool nucleus masks at input resolution (``None`` for a raw
        run given no masks).
    warp : list of callable
        ``warp[i](mask)`` maps any ``(H, W)`` mask of original image ``i``
        through the same crop, resize and centre crop to ``(S, S)`` bool.
    """

    x: torch.Tensor
    images: list[np.ndarray]
    masks: list[np.ndarray] | None
    warp: list[Callable[[np.ndarray], np.ndarray]]


class ClassifierRun:
    """A trained k-fold classifier (use :func:`load_classifier_run`).

    Attributes
    ----------
    run_dir : Path
    record : dict
        The content of ``run.json``.
    config : dict
        ``input``, ``head``, ``act``, ``image_size``, ``resize``, ``crop``,
        ``color``, ``segmenter``, ``weights``, ``lr`` ... (the run's config).
    class_names : tuple of str
    key : str
        ``"segmented-mish-medium"`` etc. (:func:`leukolib.paper.classifier_key`).
    n_folds : int
    best_fold : int
        The fold with the best validation accuracy (the first, on ties).
    device : str
    """

    def __init__(self, run_dir: str | Path, record: dict[str, Any], device: str = "cpu") -> None:
        self.run_dir = Path(run_dir)
        self.record = record
        self.config: dict[str, Any] = dict(record["config"])
        self.class_names = tuple(self.config["class_names"])
        self.key = str(self.config["key"])
        self.n_folds = int(self.config["folds"])
        self.device = device
        self.spec = InputSpec(self.config["input"], int(self.config["image_size"]),
                              int(self.config["resize"]), self.config.get("crop"),
                              self.config.get("color", "rgb"), self.config.get("crop_min", 0.0))
        self._models: dict[int, nn.Module] = {}
        self._fused: dict[int, nn.Module] = {}
        self._masks: MaskSource | None = None

    @property
    def best_fold(self) -> int:
        """The fold with the best validation accuracy."""
        summary = self.record.get("summary") or {}
        if "best_fold" in summary:
            return int(summary["best_fold"])
        val = [f["best_val_acc"] for f in self.record["folds"]]
        return int(self.record["folds"][int(np.argmax(val))]["fold"])

    # ------------------------------------------------------------------ models

    def model(self, fold: int) -> nn.Module:
        """The network of one fold (eval mode, on :attr:`device`)."""
        fold = self._check(fold)
        if fold not in self._models:
            self._models[fold] = self._load(fold)
        return self._models[fold]

    def _check(self, fold: int) -> int:
        fold = int(fold)
        if not 0 <= fold < self.n_folds:
            raise ValueError(f"fold {fold} out of range: the run has {self.n_folds} folds")
        return fold

    @torch.inference_mode(False)  # a model first loaded by a prediction must still give CAMs
    def _load(self, fold: int) -> nn.Module:
        with torch.device("meta"):  # no random initialisation of weights about to be replaced
            net = build_classifier(len(self.class_names), self.config["head"], self.config["act"],
                                   arch=self.config.get("arch", "resnet50"))
        net.load_state_dict(load_torch(RunDirectory(self.run_dir, RUN_FORMAT).weights(fold),
                                       self.device), assign=True)
        return net.to(self.device).eval()

    def inference_model(self, fold: int) -> nn.Module:
        """The network of one fold with its batch norms folded (:func:`fold_batchnorm`).

        The same function as :meth:`model`'s without the batch norms' work
        (13 % of ``leukolib classify``'s time under cProfile): for
        predictions, class activation maps and faithfulness scores. A separate
        copy: :meth:`model`'s network keeps its batch norms for the
        randomisation check, which resets them with the other layers (a folded
        convolution carries the batch statistics in its weights).
        """
        fold = self._check(fold)
        if fold not in self._fused:
            with torch.inference_mode(False):
                self._fused[fold] = fold_batchnorm(self._load(fold))
        return self._fused[fold]

    def _folds(self, folds: int | Sequence[int] | None) -> list[int]:
        if folds is None:
            return list(range(self.n_folds))
        if isinstance(folds, int | np.integer):
            return [int(folds)]
        return [int(k) for k in folds]

    # ------------------------------------------------------------------ inputs

    @property
    def mask_source(self) -> MaskSource | None:
        """The run's own segmenter (segmented or cropped runs), built on first use."""
        if self._masks is None and self.config.get("segmenter"):
            s = self.config["segmenter"]
            self._masks = MaskSource(SegmenterSpec(s["name"], s.get("model"),
                                                   dict(s.get("options") or {})),
                                     device=self.device)
        return self._masks

    def prepare(self, images: Sequence[np.ndarray],
                masks: Sequence[np.ndarray] | None = None) -> Prepared:
        """Turn RGB ``uint8`` images (any size) into the run's network input.

        Parameters
        ----------
        images : sequence of ndarray (H, W, 3)
        masks : sequence of bool ndarray (H, W), optional
            Nucleus masks; ``None``: a segmented (or cropped) run segments
            with its recorded segmenter, a raw run goes without.

        Returns
        -------
        Prepared
        """
        images = [np.asarray(im) for im in images]
        if masks is not None and len(masks) != len(images):
            raise ValueError(f"{len(masks)} masks for {len(images)} images")
        views = []
        for i, im in enumerate(images):
            m = masks[i] if masks is not None else None
            if m is None and self.spec.needs_mask:
                if self.mask_source is None:  # pragma: no cover - config always has one
                    raise RunError(f"{self.run_dir}: a {self.spec.input} run without segmenter")
                m = self.mask_source.mask(im)
            views.append(network_view(im, m, self.spec))
        x = to_tensor([v.image for v in views]) if views else torch.zeros(
            0, 3, self.spec.image_size, self.spec.image_size)
        have = all(v.mask is not None for v in views) and views
        return Prepared(x, [v.image for v in views], [v.mask for v in views] if have else None,
                        [v.warp for v in views])

    # ----------------------------------------------------------------- predict

    def logits(self, x: torch.Tensor, folds: int | Sequence[int] | None = None,
               batch_size: int = 32) -> np.ndarray:
        """Logits ``(N, C)``: the average over ``folds`` (``None``: all) of each fold's logits."""
        ks = self._folds(folds)
        return np.mean([predict_logits(self.inference_model(k), x, self.device, batch_size)
                        for k in ks], axis=0)

    def predict_images(self, images: Sequence[np.ndarray],
                       masks: Sequence[np.ndarray] | None = None,
                       folds: int | Sequence[int] | None = None) -> np.ndarray:
        """:meth:`prepare` then :meth:`logits`: logits ``(N, C)`` of raw images."""
        return self.logits(self.prepare(images, masks).x, folds)

    def saved_logits(self) -> dict[str, np.ndarray]:
        """The arrays of ``run_dir/logits.npz`` (see :mod:`leukolib.classification.results`).

        ``test_ids``, ``test_labels``, ``test_logits`` (F, N, C), ``oof_ids``,
        ``oof_labels``, ``oof_logits`` (M, C), ``oof_folds`` (M,) and
        ``class_names``: what temperature scaling on the validation folds needs.
        """
        path = self.run_dir / LOGITS
        if not path.is_file():
            raise RunError(f"{path}: not found (the run is incomplete?)")
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    # ------------------------------------------------------------------ record

    def history(self):
        """Per-epoch curves of every fold as a tidy DataFrame (the paper's Figure A2)."""
        import pandas as pd

        rows = [{"fold": f["fold"], **h} for f in self.record["folds"] for h in f["history"]]
        return pd.DataFrame(rows)

    @property
    def summary(self) -> dict[str, Any]:
        """Validation and test accuracies (:func:`~leukolib.classification.results.finish_run`)."""
        return dict(self.record.get("summary") or {})

    def __repr__(self) -> str:
        s = self.record.get("summary") or {}
        tail = f", test acc {s['test_acc']:.3f}" if "test_acc" in s else ""
        return (f"<ClassifierRun {self.key} {self.record['dataset']['name']!r}: {self.n_folds} "
                f"folds, {self.spec.image_size} px, {self.config['weights']} weights{tail}>")


def load_classifier_run(run_dir: str | os.PathLike, device: str | None = None,
                        allow_incomplete: bool = False) -> ClassifierRun:
    """Open a trained classifier run directory.

    Parameters
    ----------
    run_dir : path
        Written by :func:`~leukolib.classification.training.train_classifier`.
    device : str, optional
        Default: CUDA when present.
    allow_incomplete : bool
        Open a run whose training has not finished (only its finished folds
        can predict; no ``logits.npz`` yet).

    Raises
    ------
    RunError
        No run there, or an unfinished one.
    """
    run_dir = Path(run_dir).expanduser()
    record = RunDirectory(run_dir, RUN_FORMAT).read()
    if record is None:
        raise RunError(f"{run_dir}: no run.json (not a classifier run directory)")
    if record.get("status") != "complete" and not allow_incomplete:
        raise RunError(f"{run_dir}: training is not finished ({len(record.get('folds', []))} of "
                       f"{record['config']['folds']} folds); run train_classifier again with "
                       "the same arguments to resume it")
    return ClassifierRun(run_dir, record, select_device(device))
