"""The U-Net of the paper, and inference with a trained k-fold run.

Network
-------
:func:`build_unet` returns MONAI's ``UNet`` (installed MONAI 1.6.1) with the
paper's five levels::

    UNet(spatial_dims=2, in_channels=3, out_channels=1,
         channels=(32, 64, 128, 256, 512), strides=(1, 2, 2, 2),
         norm="instance", act="mish", dropout=p, num_res_units=NUM_RES_UNITS)

MONAI's signature is ``UNet(spatial_dims, in_channels, out_channels,
channels, strides, kernel_size=3, up_kernel_size=3, num_res_units=0,
act=PRELU, norm=INSTANCE, dropout=0.0, bias=True, adn_ordering="NDA")``. With
its default ``num_res_units=0`` every level is a *single* (strided) 3x3
convolution on the way down and a single transposed convolution on the way
up. We keep that default (:data:`NUM_RES_UNITS`): it is the lightest network
(2.6 M parameters; 6.5 M with two residual units per level), about half as
costly per training step on a CPU, and accurate enough
(``benchmarks/bench_unet.py`` measures both). The value is recorded in every
run, so a run trained with another value loads correctly. The paper does not
state this detail.

The strides downsample by 2 three times, so the input side must be a multiple
of 8. How an image reaches the network is the run's :class:`~leukolib.
segmentation.scale.ScaleSpec` (``config["scale"]``):

* ``"diameter"`` (leukolib's default): the image is resampled, its aspect
  ratio kept, so that its nucleus has the run's target diameter, segmented in
  overlapping patches blended with a Gaussian window
  (``monai.inferers.sliding_window_inference``), and the probabilities are
  resampled back (:func:`predict_proba_at_scale`); the diameter is the
  caller's, else the handcrafted mask's, else the run's training median
  (:func:`~leukolib.segmentation.scale.choose_diameter`);
* ``"square"`` (the paper's protocol, and every run written before leukolib
  recorded a scale): the image is resized to ``patch_size`` x ``patch_size``
  and the probabilities mapped back to the original size (:func:`predict_proba`).

Either way the probabilities are thresholded at 0.5 for a mask. A loaded run
also segments each patch in its mirror images and averages them, where the
selection protocol chose to (:mod:`~leukolib.segmentation.tta`; the run's
``tta``); training and its out-of-fold record use one view.

Trained runs
------------
:func:`load_unet_run` opens a run directory written by
:func:`leukolib.segmentation.training.train_unet` and returns a
:class:`UNetRun`: the fold models (``fold_00.pt`` ..., state dicts loaded with
``torch.load(..., weights_only=True)``), the run record (``run.json``) and the
out-of-fold bookkeeping. Every image a fold model trained on (its training
and validation images) is known by its pixels (its fingerprint), so an image
is segmented only by fold models that never saw it, whatever its name or the
dataset it comes in: on the run's own dataset this is the model of the fold
that held the image out (:meth:`UNetRun.folds_for`); an image the run never
saw gets the average of all folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from leukolib.data.base import Dataset
from leukolib.data.duplicates import THUMBNAILS, load_thumbnails, matches_against, thumbnail
from leukolib.data.fingerprint import image_fingerprint
from leukolib.data.sample import Sample
from leukolib.device import select_device
from leukolib.runs import RunDirectory, RunError, load_torch
from leukolib.segmentation.augment import pad_to, resize_image, unet_input
from leukolib.segmentation.scale import (
    DIAMETER_SOURCES,
    ScaleSpec,
    choose_diameter,
    estimate_diameter,
    resample,
)
from leukolib.segmentation.tta import TTA, check_tta, mirrored

if TYPE_CHECKING:  # type hints only: the ensemble imports this module's users
    from leukolib.segmentation.ensemble import EnsembleParams
    from leukolib.segmentation.fold_fusion import FoldFusions

__all__ = [
    "NETWORK",
    "NUM_RES_UNITS",
    "RUN_FORMAT",
    "SegmentationPredictor",
    "UNetRun",
    "build_unet",
    "load_unet_run",
    "predict_proba",
    "predict_proba_at_scale",
]

#: MONAI ``num_res_units`` (see the module docstring for why 0).
NUM_RES_UNITS = 0

#: The architecture, as recorded in every run (``dropout`` comes from the hyper-parameters).
NETWORK: dict[str, Any] = {
    "name": "monai.networks.nets.UNet",
    "spatial_dims": 2,
    "in_channels": 3,
    "out_channels": 1,
    "channels": [32, 64, 128, 256, 512],
    "strides": [1, 2, 2, 2],
    "num_res_units": NUM_RES_UNITS,
    "norm": "instance",
    "act": "mish",
}

RUN_FORMAT = "leukolib.unet-run/2"


def build_unet(dropout: float = 0.2, **overrides: Any) -> nn.Module:
    """The paper's five-level U-Net (MONAI), one output channel of logits.

    Parameters
    ----------
    dropout : float
        Dropout rate of every convolution block.
    **overrides
        Any other ``monai.networks.nets.UNet`` argument, replacing
        :data:`NETWORK` (e.g. ``num_res_units=2``); ``name`` is ignored.

    Returns
    -------
    torch.nn.Module
        Maps ``(N, 3, S, S)`` float images (``S`` a multiple of 8) to
        ``(N, 1, S, S)`` logits.

    Examples
    --------
    >>> import torch
    >>> net = build_unet(dropout=0.0).eval()
    >>> tuple(net(torch.zeros(1, 3, 32, 32)).shape)
    (1, 1, 32, 32)
    """
    from monai.networks.nets import UNet

    cfg = {**NETWORK, **overrides}
    cfg.pop("name", None)
    cfg.pop("dropout", None)
    return UNet(
        spatial_dims=int(cfg["spatial_dims"]),
        in_channels=int(cfg["in_channels"]),
        out_channels=int(cfg["out_channels"]),
        channels=tuple(int(c) for c in cfg["channels"]),
        strides=tuple(int(s) for s in cfg["strides"]),
        num_res_units=int(cfg["num_res_units"]),
        norm=cfg["norm"],
        act=cfg["act"],
        dropout=float(dropout),
    )


def _check_size(size: int) -> int:
    size = int(size)
    if size < 8 or size % 8:
        raise ValueError(f"the U-Net input size must be a positive multiple of 8, got {size}")
    return size


def _as_image(image: np.ndarray | Sample) -> np.ndarray:
    return image.image if isinstance(image, Sample) else np.asarray(image)


@torch.no_grad()
def predict_proba(
    models: Sequence[nn.Module],
    images: Sequence[np.ndarray] | np.ndarray,
    size: int,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    colour: str = "rgb",
    tta: str = "none",
) -> list[np.ndarray]:
    """Nucleus probabilities of images, averaged over ``models``, at original size.

    Each image is resized to ``size`` x ``size``, every model's sigmoid output
    is averaged, and the average is resized back to the image's own height and
    width with bilinear interpolation (threshold it at 0.5 for a mask).

    Parameters
    ----------
    models : sequence of nn.Module
        Networks in eval mode, on ``device``.
    images : sequence of ndarray (H, W, 3) or one such array
        RGB images (any sizes; ``uint8`` or convertible).
    size : int
        Network input side (multiple of 8).
    device : str or torch.device
    batch_size : int
        Images per forward pass (images of different sizes are fine).
    colour : str
        The run's colour handling (:func:`~leukolib.segmentation.augment.unet_input`).
    tta : str
        Test-time augmentation (:func:`~leukolib.segmentation.tta.mirrored`).

    Returns
    -------
    list of ndarray of float32, shape (H, W)
    """
    size = _check_size(size)
    single = isinstance(images, np.ndarray) and images.ndim == 3
    items = [images] if single else list(images)
    out: list[np.ndarray] = []
    for start in range(0, len(items), batch_size):
        chunk = [_as_image(im) for im in items[start : start + batch_size]]
        x = torch.stack([resize_image(unet_input(im, colour), size) for im in chunk]).to(device)
        prob = mirrored(lambda t: sum(torch.sigmoid(m(t).float()) for m in models), tta)(x)
        prob = prob / len(models)
        for p, im in zip(prob, chunk, strict=True):
            h, w = im.shape[:2]
            back = F.interpolate(p[None], size=(h, w), mode="bilinear", align_corners=False)
            out.append(back[0, 0].clamp_(0, 1).cpu().numpy().astype(np.float32))
    return out


@torch.no_grad()
def predict_proba_at_scale(
    models: Sequence[nn.Module],
    image: np.ndarray,
    factor: float,
    spec: ScaleSpec,
    device: str | torch.device = "cpu",
    sw_batch_size: int = 8,
    tta: str = "none",
) -> np.ndarray:
    """Nucleus probability of one image at a nucleus scale, at the image's own size.

    The image is resampled by ``factor`` (its aspect ratio kept), padded by
    reflection to at least one patch, segmented in ``spec.patch_size``
    patches overlapping by ``spec.overlap`` and blended with a Gaussian
    window (``monai.inferers.sliding_window_inference``; every model's
    sigmoid averaged), and resampled back to ``(H, W)`` bilinearly.

    Parameters
    ----------
    models : sequence of nn.Module
        Networks in eval mode, on ``device``.
    image : ndarray (H, W, 3)
    factor : float
        Resampling factor (:meth:`ScaleSpec.factor` of the nucleus diameter).
    spec : ScaleSpec
    device : str or torch.device
    sw_batch_size : int
        Patches per forward pass.
    tta : str
        Test-time augmentation: each patch also seen in its mirrors
        (:func:`~leukolib.segmentation.tta.mirrored`).

    Returns
    -------
    ndarray of float32, shape (H, W)
    """
    from monai.inferers import sliding_window_inference

    im = _as_image(image)
    h, w = im.shape[:2]
    x, cut = pad_to(resample(unet_input(im, spec.colour), factor), spec.patch_size)

    def net(t: torch.Tensor) -> torch.Tensor:
        return sum(torch.sigmoid(m(t).float()) for m in models) / len(models)

    p = sliding_window_inference(x[None].to(device), (spec.patch_size, spec.patch_size),
                                 sw_batch_size, mirrored(net, tta), overlap=spec.overlap,
                                 mode="gaussian")
    p = p[..., cut[0], cut[1]]
    back = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
    return back[0, 0].clamp_(0, 1).cpu().numpy().astype(np.float32)


@dataclass
class SegmentationPredictor:
    """``callable(sample) -> bool mask`` returned by :meth:`UNetRun.predictor_for`.

    Attributes
    ----------
    run : UNetRun
    mode : str
        ``"out-of-fold"``: every sample is segmented by the fold model that
        did not train on it (the dataset is the training dataset);
        ``"fold-average"``: the average of all fold models' probabilities.
    reason : str
        Why this mode was chosen, in words.
    threshold : float
    diameter : float, optional
        The nucleus diameter of the images in pixels: the user's, or the
        estimate for the image set (:meth:`UNetRun.predictor_for`); without
        one, a run in diameter mode estimates it per image.
    diameter_source : str
        Where ``diameter`` came from (one of
        :data:`~leukolib.segmentation.scale.DIAMETER_SOURCES`).
    scale_sources : dict
        How many images took their diameter from each source (what was done).
    dataset : Dataset, optional
        The image set it segments (:meth:`UNetRun.predictor_for`): on the
        run's own images, each fold's validation images choose that fold's
        fusion (:meth:`fold_fusions`).
    """

    run: UNetRun
    mode: str
    reason: str
    threshold: float = 0.5
    diameter: float | None = None
    diameter_source: str = DIAMETER_SOURCES[0]
    scale_sources: dict[str, int] = field(default_factory=dict)
    dataset: Dataset | None = field(default=None, repr=False, compare=False)
    _fold_rules: dict[Any, Any] = field(default_factory=dict, init=False, repr=False,
                                        compare=False)

    def proba(self, sample: Sample, handcrafted_mask: np.ndarray | None = None) -> np.ndarray:
        """Nucleus probability map of a sample, at its own size.

        ``handcrafted_mask``: the sample's handcrafted mask when already
        computed (the ensemble has it), for the diameter estimate.
        """
        p, source = self.run.predict_proba_with_source(
            sample.image, folds=self.run.folds_for(sample.image), diameter=self.diameter,
            handcrafted_mask=handcrafted_mask)
        source = self.diameter_source if source == DIAMETER_SOURCES[0] else source
        self.scale_sources[source] = self.scale_sources.get(source, 0) + 1
        return p

    def __call__(self, sample: Sample) -> np.ndarray:
        """The nucleus mask of a sample (bool, at its own size)."""
        return self.proba(sample) >= self.threshold

    def fold_of(self, sample: Sample) -> int | None:
        """The one fold whose model segments ``sample``, or ``None`` (a fold average)."""
        folds = self.run.folds_for(sample.image)
        return folds[0] if folds is not None and len(folds) == 1 else None

    def fold_fusions(self, base: EnsembleParams,
                     handcrafted: Callable[[np.ndarray], np.ndarray] | None = None,
                     progress: bool = False) -> FoldFusions | None:
        """Each fold's ensemble rule, chosen on its validation images, or ``None``.

        ``None`` where no fold rule can apply: the set is not the run's own
        (``mode`` ``"fold-average"``), the predictor was built without its
        set, or none of the folds' validation images is in it. Chosen once per
        rule, handcrafted method and diameter
        (:func:`~leukolib.segmentation.fold_fusion.choose_fold_fusions`).
        """
        from leukolib.segmentation import fold_fusion
        from leukolib.segmentation.handcrafted import segment_nucleus

        if self.mode == "fold-average" or self.dataset is None:
            return None
        hm = handcrafted or segment_nucleus
        key = (base, hm, self.diameter, self.run.tta)  # rules chosen on the views they use
        if key not in self._fold_rules:
            try:
                self._fold_rules[key] = fold_fusion.choose_fold_fusions(
                    self.run, self.dataset, base, hm, self.diameter, progress=progress)
            except fold_fusion.NoValidationImages:  # none is in the set: the global rule
                self._fold_rules[key] = None
        return self._fold_rules[key]

    def __repr__(self) -> str:
        return f"<SegmentationPredictor mode={self.mode!r}: {self.reason}>"


class UNetRun:
    """A trained k-fold U-Net run, loaded from its directory.

    Use :func:`load_unet_run` to create one. Fold models are loaded on first
    use.

    Attributes
    ----------
    run_dir : Path
    record : dict
        The content of ``run.json``.
    device : str
    image_size : int
        Network input side (the patch side in diameter mode).
    scale : ScaleSpec
        How images reach the network (``config["scale"]``; a run without one
        resized them to a square).
    median_diameter : float or None
        The training images' median nucleus diameter in pixels (diameter mode).
    n_folds : int
    dataset_name : str
    ids : list of str
        The training dataset's sample ids.
    tta : str
        Test-time augmentation at inference (:mod:`~leukolib.segmentation.tta`;
        default: the library's :data:`~leukolib.segmentation.tta.TTA`).
    """

    @property
    def tta(self) -> str:
        """Test-time augmentation at inference (one of :data:`~.tta.VIEW_SETS`), checked."""
        return self._tta

    @tta.setter
    def tta(self, name: str) -> None:
        self._tta = check_tta(name)

    def __init__(self, run_dir: str | Path, record: dict[str, Any], device: str = "cpu",
                 tta: str | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.record = record
        self.device = device
        self.tta = TTA if tta is None else tta
        cfg = record["config"]
        self.image_size = int(cfg["image_size"])
        self.scale = ScaleSpec.from_config(cfg)
        self.median_diameter = record["dataset"].get("median_nucleus_diameter")
        self.n_folds = int(cfg["folds"])
        self.network = dict(cfg["network"])
        self.dropout = float(cfg["hparams"]["dropout"])
        self.dataset_name = str(record["dataset"]["name"])
        self.ids = list(record["dataset"]["ids"])
        # The training images by their pixels: an image is recognised whatever its id or the
        # name of the dataset it comes in, so no model ever segments an image it trained on.
        prints = record["dataset"].get("fingerprints") or {}
        self._seen_by: dict[str, set[int]] = {}
        self._folds_of_id: dict[str, set[int]] = {}
        for f in record["folds"]:
            for sid in [*f["train_ids"], *f["val_ids"]]:
                self._seen_by.setdefault(prints.get(sid, f"id:{sid}"), set()).add(int(f["fold"]))
                self._folds_of_id.setdefault(str(sid), set()).add(int(f["fold"]))
        # ... and their near duplicates (shifted, re-exposed), by the thumbnails kept with the
        # run; a run written before leukolib kept them recognises identical pixels only.
        self._thumbs = load_thumbnails(self.run_dir / THUMBNAILS)
        self._near_seen: dict[str, set[int] | None] = {}  # fingerprint -> folds, once scored
        self._models: dict[int, nn.Module] = {}

    # ------------------------------------------------------------------ models

    def model(self, fold: int) -> nn.Module:
        """The network of one fold (eval mode, on :attr:`device`)."""
        fold = int(fold)
        if not 0 <= fold < self.n_folds:
            raise ValueError(f"fold {fold} out of range: the run has {self.n_folds} folds")
        if fold not in self._models:
            net = build_unet(dropout=self.dropout, **self.network)
            net.load_state_dict(load_torch(RunDirectory(self.run_dir, RUN_FORMAT).weights(fold),
                                           self.device))
            self._models[fold] = net.to(self.device).eval()
        return self._models[fold]

    def models(self, folds: int | Sequence[int] | None = None) -> list[nn.Module]:
        """Some folds' models (a fold or a sequence of folds), or all of them (``None``)."""
        if folds is None:
            folds = range(self.n_folds)
        elif isinstance(folds, int | np.integer):
            folds = [int(folds)]
        return [self.model(k) for k in folds]

    # --------------------------------------------------------------- inference

    def predict_proba(
        self,
        image: np.ndarray | Sample,
        folds: int | Sequence[int] | None = None,
        diameter: float | None = None,
    ) -> np.ndarray:
        """Nucleus probability ``(H, W)`` float32 at the image's own size.

        Parameters
        ----------
        image : ndarray (H, W, 3) or Sample
        folds : int, sequence of int, optional
            Average these folds' models; ``None`` averages all of them.
        diameter : float, optional
            The image's nucleus diameter in pixels (diameter mode); default:
            the handcrafted estimate, else the training median.
        """
        return self.predict_proba_with_source(image, folds, diameter)[0]

    def diameter_for(self, image: np.ndarray, diameter: float | None = None,
                     handcrafted_mask: np.ndarray | None = None) -> tuple[float, str]:
        """The nucleus diameter an image is resampled by, and its source.

        :func:`~leukolib.segmentation.scale.choose_diameter` with the run's
        training median as the last resort.
        """
        hm = None if handcrafted_mask is None else (lambda _im: handcrafted_mask)
        return choose_diameter(_as_image(image), diameter, hm, self.median_diameter)

    def predict_proba_with_source(
        self,
        image: np.ndarray | Sample,
        folds: int | Sequence[int] | None = None,
        diameter: float | None = None,
        handcrafted_mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, str]:
        """:meth:`predict_proba` and where the scale came from.

        The source is one of :data:`~leukolib.segmentation.scale.DIAMETER_SOURCES`,
        or ``"square resize"`` for a run in square mode.
        """
        im = _as_image(image)
        if self.scale.mode == "square":
            return predict_proba(self.models(folds), [im], self.image_size, self.device,
                                 colour=self.scale.colour, tta=self.tta)[0], "square resize"
        d, source = self.diameter_for(im, diameter, handcrafted_mask)
        p = predict_proba_at_scale(self.models(folds), im, self.scale.factor(d), self.scale,
                                   self.device, tta=self.tta)
        return p, source

    def predict(
        self,
        image: np.ndarray | Sample,
        folds: int | Sequence[int] | None = None,
        threshold: float = 0.5,
    ) -> np.ndarray:
        """Nucleus mask ``(H, W)`` bool: :meth:`predict_proba` ``>= threshold``."""
        return self.predict_proba(image, folds) >= threshold

    def predict_many(
        self,
        images: Sequence[np.ndarray],
        folds: int | Sequence[int] | None = None,
        batch_size: int = 16,
        diameter: float | None = None,
        handcrafted_masks: Sequence[np.ndarray | None] | None = None,
        sources: list[str] | None = None,
    ) -> list[np.ndarray]:
        """:meth:`predict_proba` of several images by the same folds.

        Batched in square mode; in diameter mode each image at its own scale
        (``handcrafted_masks``: the images' handcrafted masks when already
        computed, for the estimate). ``sources``, when given, receives where
        each image's scale came from.
        """
        ims = [_as_image(i) for i in images]
        if self.scale.mode == "square":
            out = predict_proba(self.models(folds), ims, self.image_size, self.device,
                                batch_size, colour=self.scale.colour, tta=self.tta)
            got = ["square resize"] * len(ims)
        else:
            hms = list(handcrafted_masks) if handcrafted_masks is not None else [None] * len(ims)
            pairs = [self.predict_proba_with_source(im, folds, diameter, hm)
                     for im, hm in zip(ims, hms, strict=True)]
            out, got = [p for p, _ in pairs], [src for _, src in pairs]
        if sources is not None:
            sources.extend(got)
        return out

    # ------------------------------------------------------------ out of fold

    def folds_for(self, image: np.ndarray | Sample) -> tuple[int, ...] | None:
        """The folds whose models never saw this image, or ``None`` for a new image.

        The image is recognised by its pixels (:func:`~leukolib.data.image_fingerprint`),
        or as a near duplicate of a training image (:meth:`seen_by`), not by
        its id: a training image renamed, shifted or re-exposed, a duplicate
        under another name, or one loaded under another dataset name gets only
        the models that did not train (nor select) on it; on the run's own
        dataset that is the model of the fold that held it out.

        Raises
        ------
        RunError
            If every fold trained on the image (it cannot be predicted out of fold).
        """
        seen = self.seen_by(_as_image(image))
        if seen is None:
            return None
        free = tuple(k for k in range(self.n_folds) if k not in seen)
        if not free:
            raise RunError(f"{self.run_dir}: every fold trained on this image")
        return free

    @property
    def training_thumbnails(self):
        """``(ids, thumbnails, rule)`` of the training images (``None``: a run without them)."""
        return self._thumbs

    def seen_by(self, image: np.ndarray, thumb: np.ndarray | None = None) -> set[int] | None:
        """The folds that trained (or selected) on this image or a near duplicate of it.

        Parameters
        ----------
        image : ndarray
        thumb : ndarray, optional
            Its near-duplicate thumbnail (:func:`leukolib.data.duplicates.thumbnail`),
            when already computed.

        Returns
        -------
        set of int or None
            ``None`` when no training image has its pixels nor is a near duplicate of it.
        """
        return self.seen_by_many([image], None if thumb is None else [thumb])[0]

    def seen_by_many(self, images: Sequence[np.ndarray],
                     thumbs: Sequence[np.ndarray] | None = None) -> list[set[int] | None]:
        """:meth:`seen_by` of several images, their thumbnails scored in one batch."""
        prints = [image_fingerprint(im) for im in images]
        out = [self._seen_by.get(p) for p in prints]
        if self._thumbs is None:
            return out
        # an image matched once is not scored again (a predictor asks image by image)
        todo = [k for k, s in enumerate(out) if s is None and prints[k] not in self._near_seen]
        if todo:
            ids, ref, rule = self._thumbs
            t = np.stack([thumbnail(images[k], rule) if thumbs is None
                          else np.asarray(thumbs[k], np.float32) for k in todo])
            for k, hits in zip(todo, matches_against(t, ref, rule), strict=True):
                self._near_seen[prints[k]] = set().union(
                    *(self._folds_of_id.get(ids[h], set()) for h in hits)) if len(hits) else None
        return [s if s is not None else self._near_seen.get(p) for s, p in zip(out, prints,
                                                                             strict=True)]

    def predictor_for(self, dataset: Dataset, threshold: float = 0.5,
                      diameter: float | None = None) -> SegmentationPredictor:
        """A ``callable(sample) -> bool mask`` suited to ``dataset``.

        Each training image of this run (recognised by its pixels, or as a
        near duplicate of one: :meth:`seen_by`) is
        segmented by its out-of-fold model, so that no image is segmented by
        a model that trained on it; any other image by the average of all
        folds. A run in diameter mode segments the whole set at one scale:
        ``diameter`` when given, else the set's estimate
        (:func:`~leukolib.segmentation.scale.estimate_diameter`).

        Returns
        -------
        SegmentationPredictor
            With ``mode`` ``"out-of-fold"`` (every image was a training
            image), ``"fold-average"`` (none was) or ``"mixed"``, and a
            ``reason``.
        """
        seen = self.seen_by_many([_as_image(s.image) for s in dataset])
        if any(x is not None and len(x) >= self.n_folds for x in seen):
            raise RunError(f"{self.run_dir}: every fold trained on an image of {dataset.name!r}")
        folds = [None if x is None else tuple(k for k in range(self.n_folds) if k not in x)
                 for x in seen]
        known = sum(f is not None for f in folds)
        if known == len(folds):
            mode = "out-of-fold"
        elif known == 0:
            mode = "fold-average"
        else:
            mode = "mixed"
        reason = (
            f"{known} of {len(folds)} images of {dataset.name!r} were trained on by this run: "
            "each gets only the fold models that never saw it, the others the average of all folds"
        )
        source = DIAMETER_SOURCES[0]
        if diameter is None and self.scale.mode == "diameter":
            # one scale for the set, as the training set had one (see leukolib.segmentation.scale)
            diameter, n = estimate_diameter(dataset)
            source = DIAMETER_SOURCES[1]
            if diameter is not None:
                reason += (f"; nucleus diameter {diameter:.1f} px, the median of the handcrafted "
                           f"masks of {n} of its images")
        return SegmentationPredictor(self, mode, reason, threshold, diameter, source,
                                     dataset=dataset)

    # ------------------------------------------------------------------ record

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        """Out-of-fold metric summary ``{metric: {"mean", "std"}}``."""
        return self.record["oof"]["summary"]

    @property
    def per_image(self) -> list[dict[str, Any]]:
        """Out-of-fold metrics of every training image (id, fold, acc ... iou)."""
        return self.record["oof"]["per_image"]

    def history(self):
        """Per-epoch curves of every fold as a tidy DataFrame (the paper's Figure 6)."""
        import pandas as pd

        rows = [{"fold": f["fold"], **h} for f in self.record["folds"] for h in f["history"]]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        iou = (((self.record.get("oof") or {}).get("summary") or {}).get("iou") or {}).get("mean")
        tail = f", OOF IoU {iou:.3f}" if iou is not None else ""
        return (
            f"<UNetRun {self.run_dir} {self.dataset_name!r}: {self.n_folds} folds, "
            f"{self.scale.label()}{tail}>"
        )


def load_unet_run(
    run_dir: str | Path, device: str | None = None, allow_incomplete: bool = False,
    tta: str | None = None,
) -> UNetRun:
    """Open a trained run directory.

    Parameters
    ----------
    run_dir : path
        A directory written by :func:`~leukolib.segmentation.training.train_unet`.
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default: CUDA when present.
    allow_incomplete : bool
        Open a run whose training has not finished (only its completed folds
        can predict).
    tta : str, optional
        Test-time augmentation at inference (one of
        :data:`~leukolib.segmentation.tta.VIEW_SETS`); default: the library's
        :data:`~leukolib.segmentation.tta.TTA`.

    Returns
    -------
    UNetRun

    Raises
    ------
    RunError
        When the directory holds no run, or an unfinished one.
    """
    run_dir = Path(run_dir).expanduser()
    record = RunDirectory(run_dir, RUN_FORMAT).read()
    if record is None:
        raise RunError(f"{run_dir}: no run.json (not a U-Net run directory)")
    if record.get("status") != "complete" and not allow_incomplete:
        done = len(record.get("folds", []))
        raise RunError(
            f"{run_dir}: training is not finished ({done} of {record['config']['folds']} folds); "
            "run train_unet again with the same arguments to resume it"
        )
    return UNetRun(run_dir, record, select_device(device), tta)

