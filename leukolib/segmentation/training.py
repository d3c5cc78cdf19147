"""k-fold training of the U-Net into a run directory that resumes.

Protocol (paper, section 4.1; sizes from the run profile)
---------------------------------------------------------
* ``k``-fold cross-validation **by group** (:func:`leukolib.folds.kfold`):
  images with the same pixels (and, where a dataset has them, the same
  patient or smear) always share a fold, so no image is ever segmented by a
  model that trained on its twin. Every image is in exactly one test fold and
  is predicted once, by the model that did not train on it; these
  out-of-fold predictions, scored at the image's **original** resolution,
  give the dataset's metrics.
* Inside each fold a validation split (``val_fraction`` of the training
  groups, never test images) drives ``ReduceLROnPlateau`` on the validation
  loss and selects the kept model: the epoch with the best validation IoU.
* Adam (learning rate, weight decay), dropout and the Unified Focal Loss
  parameters come from :func:`leukolib.segmentation.hparams.unet_hparams`.
* How images reach the network is the profile's scale
  (:class:`~leukolib.segmentation.scale.ScaleSpec`, recorded in
  ``config["scale"]``). ``"diameter"`` (``smoke`` and ``cpu``): each fold
  measures the median nucleus diameter of its training and validation masks
  (never its test fold's), resamples those images so that it becomes the
  target diameter, and trains on random patches of them
  (:func:`~leukolib.segmentation.augment.patch_transforms`); validation is on
  one patch per image centred on its nucleus; the test fold is segmented at
  the scale estimated for the image set from its handcrafted masks
  (:func:`~leukolib.segmentation.scale.estimate_diameter`), as a new set of
  images would be. ``"square"`` (``paper``, the paper's protocol): images are resized
  once to ``image_size`` x ``image_size``. Both are augmented on the fly
  (:mod:`leukolib.segmentation.augment`); the loop is the shared
  :func:`leukolib.training.fit`.

Run directory
-------------
``run.json`` (config, dataset ids and fingerprints, folds with their training,
validation and test ids, curves, out-of-fold metrics, versions, timings) and
one ``fold_NN.pt`` per fold (:mod:`leukolib.runs`). Calling :func:`train_unet`
again with the same arguments resumes; another configuration in the same
directory is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm

from leukolib.data.base import Dataset, Subset
from leukolib.data.duplicates import (
    DEFAULT_RULE,
    THUMBNAILS,
    grouping_record,
    image_thumbnails,
    save_thumbnails,
    thumbnail_groups,
)
from leukolib.data.fingerprint import split_groups
from leukolib.device import configure_cuda, derive_seed, fork_rng, select_device
from leukolib.folds import Fold, kfold
from leukolib.metrics import SEGMENTATION_METRICS, segmentation_metrics, summarize
from leukolib.profiles import Profile, get_profile
from leukolib.runs import RunDirectory, RunError, library_versions, now, save_torch
from leukolib.segmentation.augment import (
    Augmentation,
    mask_to_tensor,
    pad_to,
    patch_transforms,
    plain_tensor,
    resize_image,
    resize_mask,
    training_transforms,
    unet_input,
)
from leukolib.segmentation.hparams import UNetHParams, unet_hparams
from leukolib.segmentation.losses import UnifiedFocalLoss
from leukolib.segmentation.scale import (
    DIAMETER_SOURCES,
    ScaleSpec,
    choose_diameter,
    estimate_diameter,
    nucleus_diameter,
    resample,
)
from leukolib.segmentation.unet import (
    NETWORK,
    RUN_FORMAT,
    build_unet,
    predict_proba,
    predict_proba_at_scale,
)
from leukolib.training import Task, adam, fit

__all__ = ["SCHEDULER", "segmentation_task", "train_unet"]

#: ReduceLROnPlateau settings (ours; the paper does not give them).
SCHEDULER: dict[str, Any] = {"name": "ReduceLROnPlateau", "mode": "min", "factor": 0.5,
                             "patience": 2}


def _iou_per_image(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of ``logits >= 0`` against ``target >= 0.5``; 1 when both are empty."""
    p, t = (logits >= 0).flatten(1), (target >= 0.5).flatten(1)
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def segmentation_task(hp: UNetHParams) -> Task:
    """The U-Net's :class:`~leukolib.training.Task`: Unified Focal Loss, IoU per image."""
    return Task(UnifiedFocalLoss(hp.lam, hp.delta, hp.gamma), _iou_per_image, "iou")


class _Pairs(TorchDataset):
    """Image / mask tensors (resized, or resampled to the nucleus scale), augmented on access."""

    def __init__(self, images, masks, transform) -> None:
        self.images, self.masks, self.transform = images, masks, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.transform({"image": self.images[i], "mask": self.masks[i]})
        if isinstance(d, list):  # a patch sampler returns a list of one
            d = d[0]
        return plain_tensor(d["image"]).float(), plain_tensor(d["mask"]).float()

    def reseed(self, seed: int) -> None:
        """Restart the augmentation's random stream (each epoch; in each DataLoader worker)."""
        self.transform.set_random_state(seed=int(seed) % (2**32))


@dataclass
class _Data:
    ids: list[str]
    images: list[np.ndarray]  # original uint8 images
    masks: list[np.ndarray]  # original bool nucleus masks
    x: torch.Tensor | None  # square mode: (N, 3, S, S) float in [0, 1]
    y: torch.Tensor | None  # square mode: (N, 1, S, S) float {0, 1}
    fingerprints: list[str]
    thumbnails: np.ndarray  # (N, T, T) near-duplicate thumbnails of the original images
    near_duplicates: np.ndarray  # near-duplicate group of every image
    diameters: list[float | None]  # each ground-truth mask's median nucleus diameter
    set_diameter: float | None = None  # the set's handcrafted estimate (no labels), for inference


def _load_data(dataset: Dataset, spec: ScaleSpec, progress: bool) -> _Data:
    images, masks, xs, ys = [], [], [], []
    for s in tqdm(dataset, total=len(dataset), desc=f"load {dataset.name}", disable=not progress,
                  leave=False):
        if s.nucleus is None:
            raise RunError(f"{dataset.name}: sample {s.id!r} has no nucleus mask")
        images.append(s.image)
        masks.append(np.asarray(s.nucleus, dtype=bool))
        if spec.mode == "square":
            xs.append(resize_image(unet_input(s.image, spec.colour), spec.patch_size))
            ys.append(resize_mask(mask_to_tensor(s.nucleus), spec.patch_size))
    thumbs, prints = image_thumbnails(images)
    near = thumbnail_groups(thumbs, prints)
    square = spec.mode == "square"
    return _Data(list(dataset.ids), images, masks, torch.stack(xs) if square else None,
                 torch.stack(ys) if square else None, prints, thumbs, near,
                 [nucleus_diameter(m) for m in masks],
                 None if square else estimate_diameter(images)[0])


def _fold_median(data: _Data, members: Sequence[int]) -> float:
    """The median nucleus diameter of some images' ground truth (the fold's own)."""
    d = [data.diameters[i] for i in members if data.diameters[i] is not None]
    if not d:
        raise RunError("no nucleus in any training mask of the fold: no scale to train at")
    return float(np.median(d))


def _at_scale(data: _Data, members: Sequence[int], factor: float, colour: str = "rgb"):
    """Images and masks of ``members`` resampled by ``factor`` (lists of tensors)."""
    xs = [resample(unet_input(data.images[i], colour), factor) for i in members]
    ys = [resample(mask_to_tensor(data.masks[i]), factor, mask=True) for i in members]
    return xs, ys


def _centred_patches(xs, ys, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``size`` patch per image, centred on its nucleus (validation, deterministic)."""
    px, py = [], []
    for x, y in zip(xs, ys, strict=True):
        x, _ = pad_to(x, size)
        y, _ = pad_to(y, size)
        h, w = y.shape[-2:]
        rows, cols = np.nonzero(y[0].numpy() >= 0.5)
        cy, cx = (int(rows.mean()), int(cols.mean())) if rows.size else (h // 2, w // 2)
        top = int(np.clip(cy - size // 2, 0, h - size))
        left = int(np.clip(cx - size // 2, 0, w - size))
        px.append(x[:, top:top + size, left:left + size])
        py.append(y[:, top:top + size, left:left + size])
    return torch.stack(px), torch.stack(py)


def _dataset_root(dataset: Dataset) -> str | None:
    """The folder the dataset was loaded from (recorded so that reports can reload it)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    records = getattr(dataset, "records", None)
    if not records:
        return None
    parents = {Path(r.image).parent for r in records}
    return str(parents.pop().parent) if len(parents) == 1 else None


def _train_fold(fold: Fold, data: _Data, cfg: dict[str, Any], hp: UNetHParams, device: str,
                rundir: RunDirectory, progress: bool, num_workers: int,
                on_epoch_end: Callable | None, checkpoint_minutes: float = 0.0
                ) -> dict[str, Any]:
    """Train one fold, predict its test images at their own size; the fold's record entry."""
    k, bs = fold.index, cfg["batch_size"]
    torch.manual_seed(derive_seed(cfg["seed"], k))
    model = build_unet(dropout=hp.dropout, **cfg["network"]).to(device)
    opt = adam(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=SCHEDULER["mode"], factor=SCHEDULER["factor"], patience=SCHEDULER["patience"])
    spec = ScaleSpec.from_config(cfg)
    aug = Augmentation(**_aug_fields(cfg))
    scale: dict[str, Any] = {"mode": spec.mode}
    if spec.mode == "square":
        pairs = _Pairs(data.x[fold.train], data.y[fold.train],
                       training_transforms(seed=None, aug=aug))
        val = (data.x[fold.val], data.y[fold.val])
    else:  # the fold's own scale: its training and validation masks, never its test fold's
        median = _fold_median(data, [*fold.train, *fold.val])
        factor = spec.factor(median)
        scale.update(median_diameter=median, factor=factor, test_diameter=data.set_diameter)
        xs, ys = _at_scale(data, fold.train, factor, spec.colour)
        pairs = _Pairs(xs, ys, patch_transforms(spec.patch_size, spec.zoom, seed=None, aug=aug))
        val = _centred_patches(*_at_scale(data, fold.val, factor, spec.colour), spec.patch_size)
    result = fit(
        model, segmentation_task(hp), pairs,
        val, epochs=cfg["epochs"], batch_size=bs,
        optimizer=opt, scheduler=sched, device=device, seed=derive_seed(cfg["seed"], k),
        checkpoint=rundir.checkpoint(k), reseed=pairs.reseed, num_workers=num_workers,
        checkpoint_every=60.0 * checkpoint_minutes, progress=progress,
        desc=f"fold {k + 1}/{cfg['folds']}",
        on_epoch_end=(lambda row: on_epoch_end(k, row)) if on_epoch_end else None,
    )
    t_test = time.perf_counter()
    save_torch(result.best_state, rundir.weights(k))
    model.load_state_dict(result.best_state)
    model.eval()
    if spec.mode == "square":
        probs = predict_proba([model], [data.images[i] for i in fold.test], cfg["image_size"],
                              device, 2 * bs, colour=spec.colour)
        sources = ["square resize"] * len(fold.test)
    else:  # the test fold at the scale estimated for the image set, as new images would be
        probs, sources = [], []
        for i in fold.test:
            d, src = ((data.set_diameter, DIAMETER_SOURCES[1]) if data.set_diameter else
                      choose_diameter(data.images[i], fallback=scale["median_diameter"]))
            probs.append(predict_proba_at_scale([model], data.images[i], spec.factor(d), spec,
                                                device))
            sources.append(src)
    rows = [{"id": data.ids[i], "fold": k, **segmentation_metrics(p >= 0.5, data.masks[i]),
             "scale_source": src}
            for i, p, src in zip(fold.test, probs, sources, strict=True)]
    train_seconds = float(sum(h["seconds"] for h in result.history))
    return {
        "fold": k,
        "train_ids": [data.ids[i] for i in fold.train],
        "val_ids": [data.ids[i] for i in fold.val],
        "test_ids": [data.ids[i] for i in fold.test],
        "scale": scale,
        "best_epoch": result.best_epoch,
        "best_val_iou": result.best_score,
        "test_iou": float(np.mean([r["iou"] for r in rows])),
        "seconds": train_seconds + time.perf_counter() - t_test,
        "train_seconds": train_seconds,
        "history": result.history,
        "oof": rows,
    }


def _aug_fields(cfg: dict[str, Any]) -> dict[str, Any]:
    a = dict(cfg["augmentation"])
    a.pop("order", None)
    a["gamma_range"] = tuple(a["gamma_range"])
    return a


def _config(dataset: Dataset, prof: Profile, hp: UNetHParams, seed: int, overrides: dict,
            grouped_by: dict[str, Any]) -> dict[str, Any]:
    sp = prof.segmentation
    size = int(overrides.get("image_size") or sp.image_size)
    if size < 8 or size % 8:
        raise ValueError(f"the U-Net image size must be a positive multiple of 8, got {size}")
    spec = ScaleSpec.for_patch(size, overrides.get("scale") or sp.scale,
                               overrides.get("colour") or sp.colour)
    config = {
        "profile": prof.name,
        "image_size": size,
        "scale": spec.to_dict(),
        "folds": int(overrides.get("folds") or sp.folds),
        "epochs": int(overrides.get("epochs") or sp.epochs_for(dataset.name)),
        "batch_size": int(overrides.get("batch_size") or sp.batch_size),
        "val_fraction": float(sp.val_fraction),
        "seed": int(seed),
        "groups": grouped_by,
        "hparams": hp.values(),
        "hparams_source": hp.source,
        "network": {**NETWORK, "num_res_units": int(overrides["res_units"]
                                                    if overrides.get("res_units") is not None
                                                    else NETWORK["num_res_units"])},
        "loss": "UnifiedFocalLoss (asymmetric, Yeung et al. 2022)",
        "optimizer": "Adam",
        "scheduler": dict(SCHEDULER),
        "selection": "best validation IoU",
        "augmentation": Augmentation(stain_sigma=float(overrides.get("stain_sigma") or 0.0))
        .to_dict(),
        "validation": ("the whole image, resized" if spec.mode == "square" else
                       "one patch per image, centred on its nucleus"),
        "dataset": {"name": dataset.name, "ids": [str(i) for i in dataset.ids]},
    }
    return json.loads(json.dumps(config))  # as it reads back from run.json


def train_unet(
    dataset: Dataset,
    out_dir: str | os.PathLike,
    profile: str | Profile = "cpu",
    seed: int = 0,
    hparams: dict[str, float] | UNetHParams | None = None,
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    *,
    groups: Sequence[Hashable] | None = None,
    data_root: str | os.PathLike | None = None,
    epochs: int | None = None,
    folds: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    scale: str | None = None,
    colour: str | None = None,
    stain_sigma: float | None = None,
    res_units: int | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train the U-Net by grouped k-fold cross-validation into a run directory (resumable).

    Parameters
    ----------
    dataset : Dataset
        Images with nucleus masks (e.g. ``load_dataset("jtsc", root)``).
    out_dir : path
        The run directory (created). A run of the same configuration there is
        resumed (or returned at once when finished).
    profile : str or Profile
        Sizes (``profile.segmentation``) and the hyper-parameter source.
    seed : int
        Seed of the folds, the initialisation, the augmentation and dropout.
    hparams : mapping or UNetHParams, optional
        Overrides of :func:`~leukolib.segmentation.hparams.unet_hparams`.
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default: CUDA when present (then mixed precision).
    progress : bool
        Progress bars, and one line per fold.
    overwrite : bool
        Replace a run of another configuration found in ``out_dir``.
    groups : sequence, optional
        Patient or smear identifier of every sample, merged with the
        duplicate groups and the dataset's own groups.
    data_root : path, optional
        The dataset folder, recorded in ``run.json`` (guessed when not given).
    epochs, folds, image_size, batch_size : int, optional
        Override the profile (``image_size`` is the patch side in diameter mode).
    scale : {"diameter", "square"}, optional
        Override the profile's scale mode (:mod:`leukolib.segmentation.scale`):
        ``"square"`` is the paper's resize of every image to one square.
    colour : {"rgb", "gray-world"}, optional
        Override the profile's colour handling of the U-Net's input
        (:func:`~leukolib.segmentation.augment.unet_input`).
    stain_sigma : float, optional
        Add the HED stain jitter of this half-width to the augmentation
        (:class:`~leukolib.segmentation.augment.RandStainJitterd`); default
        none, the paper's augmentation.
    res_units : int, optional
        MONAI's ``num_res_units`` of the network (default
        :data:`~leukolib.segmentation.unet.NUM_RES_UNITS`), recorded in the run.
    on_epoch_end : callable, optional
        ``on_epoch_end(fold, epoch_row)`` after each epoch.

    Returns
    -------
    dict
        The run record, as written to ``out_dir/run.json``.

    Raises
    ------
    RunError
        When ``out_dir`` holds something else and ``overwrite`` is False, a
        sample has no mask, or the folds cannot be made.
    """
    t_call = time.perf_counter()
    prof = get_profile(profile)
    hp = unet_hparams(dataset.name, hparams, source=prof.segmentation.hparams)
    if not dataset.has_masks:
        raise RunError(f"{dataset.name}: the dataset has no nucleus masks to train on")
    ids = [str(i) for i in dataset.ids]
    if len(set(ids)) != len(ids):
        raise RunError(f"{dataset.name}: sample ids are not unique")
    grouped_by = grouping_record(DEFAULT_RULE, dataset_groups=dataset.groups is not None,
                                 caller_groups=groups is not None)
    overrides = {"epochs": epochs, "folds": folds, "image_size": image_size,
                 "batch_size": batch_size, "scale": scale, "colour": colour,
                 "stain_sigma": stain_sigma, "res_units": res_units}
    config = _config(dataset, prof, hp, seed, overrides, grouped_by)
    rundir = RunDirectory(out_dir, RUN_FORMAT)
    record = rundir.prepare(config, overwrite)
    dev = select_device(device)
    t0 = time.perf_counter()
    data = _load_data(dataset, ScaleSpec.from_config(config), progress)
    stored = (record or {}).get("dataset", {}).get("fingerprints")
    if stored and stored != dict(zip(ids, data.fingerprints, strict=True)):
        if not overwrite:  # ids alone can lie: the run must have seen these very pixels
            raise RunError(f"{rundir.path} holds a U-Net run of the same configuration but "
                           "trained on other pixels; choose another directory or pass "
                           "overwrite=True to replace it")
        rundir.clear()
        record = None
    if record is not None and record.get("status") == "complete":
        if progress:
            print(f"U-Net run in {rundir.path} is complete: nothing to train", flush=True)
        return record
    group_of = split_groups(data.fingerprints, dataset.groups, groups,
                            near_duplicates=data.near_duplicates)
    n_groups = len(np.unique(group_of))
    if not 2 <= config["folds"] <= n_groups:
        raise RunError(f"k-fold cross-validation needs 2 to {n_groups} folds for the "
                       f"{n_groups} groups of images of {dataset.name!r}, got {config['folds']}")
    if record is None:
        root = str(data_root) if data_root else _dataset_root(dataset)
        record = _new_record(config, hp, dataset.name, ids, root, n_groups)
    elif progress:
        print(f"resuming U-Net run in {rundir.path}: {len(record['folds'])} of "
              f"{config['folds']} folds done", flush=True)
    record.update(versions=library_versions(), device=dev)
    record["timings"]["load_seconds"].append(time.perf_counter() - t0)
    record["dataset"]["fingerprints"] = dict(zip(ids, data.fingerprints, strict=True))
    known = [d for d in data.diameters if d is not None]
    # the scale a new image falls back to when its handcrafted mask is empty
    record["dataset"]["median_nucleus_diameter"] = float(np.median(known)) if known else None
    save_thumbnails(rundir.path / THUMBNAILS, ids, data.thumbnails)
    rundir.write(record)  # from now on, an interruption resumes
    num_workers = prof.workers_for(dev)
    if dev.startswith("cuda"):
        record["cuda"] = configure_cuda(prof.cuda_mode)
    done = {int(f["fold"]) for f in record["folds"]}
    fold_list = kfold(len(ids), config["folds"], config["seed"], groups=group_of,
                      val_fraction=config["val_fraction"])
    with fork_rng(dev):  # the caller's random state is left as it was
        for fold in fold_list:
            if fold.index in done:
                continue
            entry = _train_fold(fold, data, config, hp, dev, rundir, progress, num_workers,
                                on_epoch_end, prof.checkpoint_minutes)
            _add_fold(record, entry, rundir, fold.index)
            if progress:
                tqdm.write(f"fold {fold.index + 1}/{config['folds']}: best epoch "
                           f"{entry['best_epoch'] + 1}/{config['epochs']}, val IoU "
                           f"{entry['best_val_iou']:.4f}, test IoU {entry['test_iou']:.4f}, "
                           f"{entry['seconds']:.0f} s ({len(fold.train)} train / "
                           f"{len(fold.val)} val / {len(fold.test)} test)")
    _finish(record, ids, time.perf_counter() - t_call)
    rundir.write(record)
    if progress:
        s = record["oof"]["summary"]
        print(f"U-Net {dataset.name}: out-of-fold IoU {s['iou']['mean']:.4f} ± "
              f"{s['iou']['std']:.4f}, DSC {s['dsc']['mean']:.4f}; "
              f"{record['timings']['total_seconds']:.0f} s in all, "
              f"{record['timings']['mean_epoch_seconds']:.1f} s per epoch", flush=True)
    return record


def _new_record(config: dict[str, Any], hp: UNetHParams, name: str, ids: list[str],
                root: str | None, n_groups: int) -> dict[str, Any]:
    """The record of a run that starts."""
    return {"status": "running", "created": now(), "config": config, "hparams": hp.to_dict(),
            "dataset": {"name": name, "n_images": len(ids), "ids": ids, "root": root,
                        "n_groups": n_groups},
            "folds": [], "oof": {"per_image": [], "summary": None},
            "timings": {"fold_seconds": [], "load_seconds": []}}


def _add_fold(record: dict[str, Any], entry: dict[str, Any], rundir: RunDirectory,
              fold: int) -> None:
    """Record a finished fold (its out-of-fold rows too) and drop its checkpoint."""
    record["oof"]["per_image"].extend(entry.pop("oof"))
    record["folds"].append(entry)
    record["timings"]["fold_seconds"].append(entry["seconds"])
    record["updated"] = now()
    rundir.write(record)
    rundir.checkpoint(fold).unlink(missing_ok=True)


def _finish(record: dict[str, Any], ids: list[str], call_seconds: float) -> None:
    """Sort the folds and out-of-fold rows, summarise, time, mark complete."""
    record["folds"].sort(key=lambda f: f["fold"])
    order = {sid: i for i, sid in enumerate(ids)}
    record["oof"]["per_image"].sort(key=lambda r: order[r["id"]])
    record["oof"]["summary"] = summarize(record["oof"]["per_image"], SEGMENTATION_METRICS)
    hist = [h for f in record["folds"] for h in f["history"]]
    t = record["timings"]
    t.update(total_seconds=float(sum(t["fold_seconds"]) + sum(t["load_seconds"])),
             mean_epoch_seconds=float(np.mean([h["seconds"] for h in hist])),
             mean_epoch_cpu_seconds=float(np.mean([h["cpu_seconds"] for h in hist])),
             last_call_seconds=call_seconds)
    record["status"] = "complete"
    record["updated"] = now()
