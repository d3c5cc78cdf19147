"""Training one classifier by the paper's protocol into a run directory that resumes.

Protocol (the paper's section 4.2, sizes from the run profile)
--------------------------------------------------------------
* The split of :mod:`leukolib.classification.splits`: a stratified, grouped
  hold-out test split, then stratified k-fold on the rest; each fold's model
  is selected (best epoch) on its own validation fold.
* Cross-entropy, Adam with weight decay, ``ReduceLROnPlateau`` on the
  validation loss (:data:`SCHEDULER`, ours: the paper names the scheduler only),
  batch size and epochs from the profile (more epochs where the folds are small: its
  ``min_steps``, ``synthetic_min_steps`` on the synthetic smears), the paper's
  augmentation on the fly
  (:mod:`leukolib.classification.augment`), the shared loop
  :func:`leukolib.training.fit`.
* Learning rate: the profile's ``lr`` when the backbone holds pretrained
  weights (the paper's 1e-5 fine-tunes ImageNet weights), its ``lr_scratch``
  from random initialisation; the run records which (``lr_kind``).
* The test split is predicted by every fold's model and by the average of
  their logits (the ensemble of folds), after every fold is trained.

Run directory
-------------
``run.json`` (config, dataset ids and fingerprints, the split, each fold's
curves and metrics, the test metrics with bootstrap intervals, versions,
timings), ``fold_NN.pt`` (each fold's selected weights), ``fold_NN.npz``
(its validation and test logits) and, once complete, ``logits.npz``
(:func:`leukolib.classification.run.ClassifierRun.saved_logits`). Calling
:func:`train_classifier` again with the same arguments resumes (finished folds
are kept, the fold in progress restarts from its last epoch); another
configuration in the directory is refused unless ``overwrite=True``.

One fold at a time
------------------
``train_classifier(..., fold=K)`` trains fold ``K`` alone and leaves the run
``"partial"``; a later call with another fold, or without ``fold``, continues
it in the same directory, and the call that trains its last fold completes it.
Units of the paper's grid (model x fold) can so run on several GPUs or as the
jobs of a scheduler (a Slurm array, Dask, Ray), each into a directory of its
own: ``run.json`` is rewritten whole after each fold, so two processes writing
one directory would drop each other's folds.
:func:`~leukolib.classification.merge.merge_classifier_runs` then gathers the
parts into the run one call would have written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm

from leukolib.classification.augment import AUGMENTATION, Augmenter
from leukolib.classification.inputs import (
    InputSpec,
    input_size,
    normalise,
    resolve_crop,
    to_tensor,
)
from leukolib.classification.masks import MaskSource, SegmenterSpec
from leukolib.classification.models import build_classifier
from leukolib.classification.splits import classifier_split
from leukolib.classification.views import ImageSet, build_views, spec_key
from leukolib.classification.weights import resolve_weights
from leukolib.data.base import Dataset, Subset
from leukolib.device import configure_cuda, derive_seed, fork_rng, select_device
from leukolib.metrics import classification_metrics
from leukolib.paper import classifier_key
from leukolib.profiles import Profile, get_profile
from leukolib.runs import RunDirectory, RunError, library_versions, now, save_torch
from leukolib.training import Task, adam, fit

__all__ = [
    "RUN_FORMAT",
    "SCHEDULER",
    "classification_task",
    "fold_logits_path",
    "load_fold_logits",
    "predict_logits",
    "train_classifier",
]

RUN_FORMAT = "leukolib.classifier-run/1"
#: ReduceLROnPlateau settings (ours; the paper names the scheduler only).
SCHEDULER: dict[str, Any] = {"name": "ReduceLROnPlateau", "mode": "min", "factor": 0.5,
                             "patience": 2}


def _correct(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (out.argmax(1) == y).float()


def classification_task() -> Task:
    """Cross-entropy, accuracy per image (the selection score)."""
    return Task(nn.CrossEntropyLoss(), _correct, "acc")


class _Augmented(TorchDataset):
    """Network views augmented on access; ``(uint8 (S, S, 3) image, label)`` pairs.

    The batch is normalised after it reaches the device (:func:`normalise`):
    workers then pin and send a quarter of the bytes, and skip the
    conversion to float, a quarter of their time at 224 px.
    """

    def __init__(self, views: np.ndarray, masks: np.ndarray | None, labels: np.ndarray,
                 augmenter: Augmenter) -> None:
        self.views, self.masks, self.labels, self.augmenter = views, masks, labels, augmenter

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.augmenter(self.views[i], None if self.masks is None else self.masks[i])
        return torch.from_numpy(np.ascontiguousarray(img)), torch.tensor(int(self.labels[i]))

    def reseed(self, seed: int) -> None:
        """Restart the augmentation's random stream (each epoch; in each DataLoader worker)."""
        self.augmenter.reseed(seed)


def predict_logits(model: nn.Module, x: torch.Tensor, device: str, batch_size: int = 32,
                   channels_last: bool = True) -> np.ndarray:
    """Logits ``(N, C)`` of normalised inputs, in batches, in inference mode, in float32.

    ``channels_last`` (the default) runs the convolutions in the NHWC memory
    layout, about a quarter faster on a CPU (``benchmarks/bench_classify.py``);
    the model is converted in place, once. No mixed precision, on a GPU
    either: these logits feed temperature scaling, calibration and the
    cluster analysis, which half precision would round.
    """
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.inference_mode(False):  # converted weights stay normal tensors: CAMs need them
        model.to(memory_format=fmt)
    out = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device).contiguous(memory_format=fmt)
            out.append(model(xb).float().cpu())
    if not out:
        return np.zeros((0, 0), np.float32)
    return torch.cat(out).numpy()


def _dataset_root(dataset: Dataset) -> str | None:
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    records = getattr(dataset, "records", None)
    if not records:
        return None
    parents = {Path(r.image).parent for r in records}
    return str(parents.pop().parent) if len(parents) == 1 else None


def _config(prof: Profile, spec: InputSpec, head: str, act: str, seed: int, weights: str,
            lr: float, seg: SegmenterSpec | None, data: ImageSet, o: dict) -> dict[str, Any]:
    c = prof.classification
    config = {
        "key": classifier_key(f"{spec.input} {act} {head}"),
        "profile": prof.name,
        "arch": str(o.get("arch") or c.arch),
        "input": spec.input, "head": head, "act": act,
        "image_size": spec.image_size, "resize": spec.resize, "crop": spec.crop,
        "crop_min": spec.crop_min, "color": spec.color,
        "segmenter": None if seg is None else seg.to_dict(),
        "weights": weights,
        "lr": float(lr), "lr_kind": "scratch" if weights == "random" else "pretrained",
        "weight_decay": c.weight_decay,
        "batch_size": int(o.get("batch_size") or c.batch_size),
        "epochs": int(o.get("epochs") or c.epochs),
        "folds": int(o.get("folds") or c.folds),
        "test_fraction": c.test_fraction,
        "patience": c.patience,
        "seed": int(seed),
        "optimizer": "Adam", "loss": "cross-entropy", "scheduler": dict(SCHEDULER),
        "selection": "best validation accuracy (first best epoch)",
        "augmentation": dict(AUGMENTATION),
        "normalization": "ImageNet mean and std",
        "groups": o["grouping"],  # what the split kept together (ClassifierSplit.grouping)
        "class_names": list(data.class_names),
        "dataset": {"name": data.name, "ids": list(data.ids)},
    }
    return json.loads(json.dumps(config))  # as it reads back from run.json


def _train_fold(k: int, train: np.ndarray, val: np.ndarray, test: np.ndarray, data: ImageSet,
                vkey: str, cfg: dict[str, Any], dev: str, rundir: RunDirectory,
                progress: bool, on_epoch_end: Callable | None) -> dict[str, Any]:
    """Train and select one fold; its weights and logits on disk, its record entry returned."""
    views, masks, y = data.views[vkey], data.masks[vkey], data.labels
    seed = derive_seed(cfg["seed"], k)
    torch.manual_seed(seed)
    weights = None if cfg["weights"] == "random" else cfg["weights_path"]
    model = build_classifier(len(data.class_names), cfg["head"], cfg["act"], weights,
                             required=weights is not None, download=False,
                             arch=cfg["arch"]).to(dev)
    graph, gpu = cfg["cuda_graphs"], dev.startswith("cuda")
    opt = adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"],
               capturable=graph)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=SCHEDULER["mode"], factor=SCHEDULER["factor"], patience=SCHEDULER["patience"])
    aug = Augmenter(cfg["input"] == "segmented", seed)
    train_set = _Augmented(views[train], None if masks is None else masks[train], y[train], aug)
    x_val = to_tensor(views[val])
    result = fit(model, classification_task(), train_set, (x_val, torch.from_numpy(y[val])),
                 epochs=cfg["epochs"], batch_size=cfg["batch_size"], optimizer=opt,
                 scheduler=sched, device=dev, seed=seed,
                 checkpoint=rundir.checkpoint(k) if cfg["epoch_checkpoints"] else None,
                 patience=cfg["patience"], reseed=aug.reseed, progress=progress,
                 num_workers=cfg["num_workers"], channels_last=gpu, cuda_graph=graph,
                 prepare=normalise,
                 checkpoint_every=60.0 * cfg["checkpoint_minutes"],
                 desc=f"{cfg['key']} fold {k + 1}/{cfg['folds']}",
                 on_epoch_end=(lambda row: on_epoch_end(k, row)) if on_epoch_end else None)
    t0 = time.perf_counter()
    model.load_state_dict(result.best_state)
    save_torch(result.best_state, rundir.weights(k))
    val_logits = predict_logits(model, x_val, dev)
    test_logits = predict_logits(model, to_tensor(views[test]), dev)
    np.savez(rundir.path / f"fold_{k:02d}.npz", val_idx=val, val_logits=val_logits,
             test_logits=test_logits)
    names = data.class_names
    train_seconds = float(sum(h["seconds"] for h in result.history))
    return {
        "fold": k,
        "train_ids": [data.ids[i] for i in train],
        "val_ids": [data.ids[i] for i in val],
        "best_epoch": result.best_epoch,
        "best_val_acc": result.best_score,
        "stopped_early": result.stopped_early,
        "val": classification_metrics(y[val], val_logits.argmax(1), names),
        "test": classification_metrics(y[test], test_logits.argmax(1), names),
        "history": result.history,
        "train_seconds": train_seconds,
        "seconds": train_seconds + time.perf_counter() - t0,
    }


def train_classifier(
    dataset: Dataset,
    out_dir: str | os.PathLike,
    *,
    input: str = "segmented",
    head: str = "linear",
    act: str = "relu",
    profile: str | Profile = "cpu",
    seed: int = 0,
    segmenter: str | SegmenterSpec = "handcrafted",
    seg_model: str | os.PathLike | None = None,
    crop: float | str | None = "auto",
    crop_min: float = 0.0,
    color: str = "rgb",
    weights: str | os.PathLike | None = "profile",
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    groups: Sequence[Hashable] | None = None,
    data: ImageSet | None = None,
    mask_cache: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    epochs: int | None = None,
    folds: int | None = None,
    fold: int | None = None,
    image_size: int | None = None,
    resize: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    arch: str | None = None,
    epoch_checkpoints: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one of the eight classifiers by k-fold on the training-validation part (resumable).

    Parameters
    ----------
    dataset : Dataset
        Labelled images (e.g. ``load_dataset("all_idb2", root)``).
    out_dir : path
        The run directory (created). A run of the same configuration there is
        resumed, or returned at once when complete.
    input : {"segmented", "raw"}
    head : {"linear", "medium"}
    act : {"relu", "mish"}
    profile : str or Profile
        Sizes, protocol and learning rates (``profile.classification``).
    seed : int
        Seed of the split, the initialisation, the augmentation.
    segmenter : str or SegmenterSpec
        Mask source of a segmented (or cropped) input
        (:mod:`leukolib.classification.masks`): ``"handcrafted"``,
        ``"ensemble"`` or ``"unet"`` (with ``seg_model``), ``"oracle"``.
    seg_model : path, optional
        The U-Net run of ``ensemble`` and ``unet``; refused when it trained on
        a test image.
    crop : float, None or "auto"
        Crop around the nucleus with this margin; ``"auto"`` (the default):
        the dataset's :func:`~leukolib.classification.inputs.default_crop`
        (``crop_min`` included): a fixed window for whole smear fields,
        nothing for cell crops.
    crop_min : float
        Smallest side of the crop, a fraction of the image's shorter side
        (:class:`~leukolib.classification.inputs.InputSpec`).
    color : {"rgb", "gray"}
        ``"gray"``: the colour-neutralised ablation.
    weights : "profile", "imagenet", None or path
        ``"profile"``: ImageNet weights, required under a profile with
        ``pretrained``, tried under one with ``try_pretrained``, else none.
    device : str, optional
    progress : bool
    overwrite : bool
        Replace a run of another configuration in ``out_dir``.
    groups : sequence, optional
        Patient or smear identifiers, merged with the duplicate groups.
    data : ImageSet, optional
        Views already built from ``dataset`` (:func:`train_grid` shares them).
    mask_cache : path, optional
        Folder of the mask cache.
    data_root : path, optional
        Recorded in ``run.json`` (guessed when not given).
    epochs, folds, image_size, resize, batch_size, lr, arch :
        Override the profile.
    fold : int, optional
        Train only this fold (0-based) and leave the run ``"partial"``, unless
        it was the last one missing (module docstring: one fold at a time).
    epoch_checkpoints : bool, optional
        Checkpoint a fold in progress, so that an interrupted fold resumes
        from its last checkpointed epoch (ResNet-50 with its Adam state: about
        380 MB, one file overwritten, at most every ``checkpoint_minutes`` of
        the profile). Default: when the run has 20 epochs or more; shorter
        folds restart from their first epoch (finished folds are always kept).
    on_epoch_end : callable, optional
        ``on_epoch_end(fold, epoch_row)``.

    Returns
    -------
    dict
        The run record, as written to ``out_dir/run.json``.
    """
    t_call = time.perf_counter()
    prof = get_profile(profile)
    c = prof.classification
    n_folds = int(folds or c.folds)
    if fold is not None and not 0 <= int(fold) < n_folds:
        raise ValueError(f"fold {fold} out of range: the run has {n_folds} folds "
                         f"(0 to {n_folds - 1})")
    if isinstance(crop, str):
        if crop != "auto":
            raise ValueError(f"crop must be a margin, None or 'auto', got {crop!r}")
        crop, crop_min, _ = resolve_crop(dataset, data.name if data is not None else None,
                                         progress)
    native, native_resize = input_size(dataset, c.image_size, c.resize, crop, crop_min,
                                       c.native_size)
    size = int(image_size or native)
    spec = InputSpec(input, size, int(resize or max(native_resize, size)), crop, color, crop_min)
    seg = SegmenterSpec(segmenter, str(seg_model) if seg_model else None) \
        if isinstance(segmenter, str) else segmenter
    if not spec.needs_mask:
        seg = None
    source, weights_path = resolve_weights(weights, prof, arch=arch or c.arch)
    rate = float(lr if lr is not None else (c.lr_scratch if source == "random" else c.lr))
    dev = select_device(device)
    t0 = time.perf_counter()
    vkey = spec_key(spec)
    if data is None or vkey not in data.views:
        masks = MaskSource(seg, mask_cache, dev) if seg is not None else None
        data = build_views(dataset, {vkey: spec}, masks, progress)
    if data.near_duplicates is None or data.thumbnails is None:
        raise ValueError(f"{data.name}: the image set carries no near-duplicate groups; "
                         "make it with build_views, which computes them")
    split = classifier_split(data.fingerprints, data.labels, c.test_fraction, n_folds,
                             int(seed), near_duplicates=data.near_duplicates,
                             dataset_groups=data.groups, groups=groups)
    if epochs is None:  # the profile's epochs, more where the folds are small (steps_for)
        epochs = c.epochs_for(min(len(tr) for tr, _ in split.folds), batch_size, data.name)
    overrides = {"epochs": epochs, "folds": n_folds, "batch_size": batch_size,
                 "groups": groups, "arch": arch, "grouping": split.grouping}
    config = _config(prof, spec, head.lower(), act.lower(), seed, source, rate, seg, data,
                     overrides)
    rundir = RunDirectory(out_dir, RUN_FORMAT)
    record = _open(rundir, config, data, overwrite)
    if record is not None and record["split"]["test_ids"] != [data.ids[i] for i in split.test]:
        raise RunError(f"{rundir.path} holds a run of the same configuration on another split; "
                       "choose another directory or pass overwrite=True to replace it")
    if record is not None and record.get("status") == "complete":
        if progress:
            print(f"{config['key']}: run in {rundir.path.name} is complete", flush=True)
        return record
    if seg is not None and seg.model:
        MaskSource(seg, device=dev).check_unseen([data.fingerprints[i] for i in split.test],
                                                 [data.ids[i] for i in split.test],
                                                 data.thumbnails[split.test])
    if record is None:
        record = _new_record(config, data, split, data_root or _dataset_root(dataset))
    elif progress:
        print(f"{config['key']}: resuming in {rundir.path.name}, {len(record['folds'])} of "
              f"{config['folds']} folds done", flush=True)
    record.update(status="running", versions=library_versions(), device=dev)
    if dev.startswith("cuda"):
        record["cuda"] = {**configure_cuda(prof.cuda_mode),
                          "training_step": "CUDA graph, bfloat16" if prof.cuda_graphs_for(dev)
                          else "eager, float16 with a gradient scaler"}
    record["dataset"]["fingerprints"] = dict(zip(data.ids, data.fingerprints, strict=True))
    record["dataset"]["labels"] = data.labels.tolist()  # finish_run needs no more than the record
    record["timings"]["prepare_seconds"].append(time.perf_counter() - t0)
    rundir.write(record)
    run_cfg = {**config, "weights_path": weights_path,
               "epoch_checkpoints": config["epochs"] >= 20 if epoch_checkpoints is None
               else bool(epoch_checkpoints),
               "num_workers": prof.workers_for(dev),
               "checkpoint_minutes": prof.checkpoint_minutes,
               "cuda_graphs": prof.cuda_graphs_for(dev)}
    with fork_rng(dev):  # the caller's random state is left as it was
        _train_folds(record, split, data, vkey, run_cfg, dev, rundir, progress, on_epoch_end,
                     fold)
    if len(record["folds"]) < n_folds:
        return _leave_partial(record, rundir, progress)
    from leukolib.classification.results import finish_run

    finish_run(record, rundir, time.perf_counter() - t_call)
    if progress:
        s = record["summary"]
        print(f"{config['key']}: test accuracy {s['test_acc']:.3f} [{s['test_acc_ci'][0]:.3f}, "
              f"{s['test_acc_ci'][1]:.3f}] (fold average), validation {s['val_acc_mean']:.3f} "
              f"± {s['val_acc_std']:.3f}", flush=True)
    return rundir.read()  # as a later call reads it back


def _open(rundir: RunDirectory, config: dict[str, Any], data: ImageSet,
          overwrite: bool) -> dict[str, Any] | None:
    """The record to resume (or the complete one), or ``None`` for a fresh start."""
    record = rundir.prepare(config, overwrite)
    prints = dict(zip(data.ids, data.fingerprints, strict=True))
    stored = (record or {}).get("dataset", {}).get("fingerprints")
    if stored and stored != prints:
        if not overwrite:  # ids alone can lie: the run must have seen these very pixels
            raise RunError(f"{rundir.path} holds a classifier run of the same configuration "
                           "but trained on other pixels; choose another directory or pass "
                           "overwrite=True to replace it")
        rundir.clear()
        return None
    return record


def _new_record(config: dict[str, Any], data: ImageSet, split, root) -> dict[str, Any]:
    return {"status": "running", "created": now(), "config": config,
            "dataset": {"name": data.name, "n_images": len(data),
                        "root": None if root is None else str(root),
                        "n_groups": int(len(np.unique(split.groups))),
                        "empty_masks": data.empty_masks},
            "split": {"test_ids": [data.ids[i] for i in split.test],
                      "trainval_ids": [data.ids[i] for i in split.trainval],
                      "grouping": split.grouping},
            "folds": [], "timings": {"prepare_seconds": [], "fold_seconds": []}}


def _leave_partial(record: dict[str, Any], rundir: RunDirectory,
                   progress: bool) -> dict[str, Any]:
    """Mark a run whose other folds train later (or elsewhere) ``"partial"``; its record."""
    record["status"] = "partial"
    rundir.write(record)
    if progress:
        done = ", ".join(str(f["fold"]) for f in sorted(record["folds"], key=lambda f: f["fold"]))
        print(f"{record['config']['key']}: fold(s) {done} of {record['config']['folds']} in "
              f"{rundir.path.name} (partial)", flush=True)
    return rundir.read()


def _train_folds(record: dict[str, Any], split, data: ImageSet, vkey: str,
                 cfg: dict[str, Any], dev: str, rundir: RunDirectory, progress: bool,
                 on_epoch_end: Callable | None, only: int | None = None) -> None:
    """Train the folds not yet in ``record`` (or fold ``only``), writing the record after each."""
    done = {int(f["fold"]) for f in record["folds"]}
    for k, (train, val) in enumerate(split.folds):
        if k in done or (only is not None and k != int(only)):
            continue
        entry = _train_fold(k, train, val, split.test, data, vkey, cfg, dev, rundir, progress,
                            on_epoch_end)
        record["folds"].append(entry)
        record["timings"]["fold_seconds"].append(entry["seconds"])
        record["updated"] = now()
        rundir.write(record)
        rundir.checkpoint(k).unlink(missing_ok=True)
        if progress:
            tqdm.write(f"{cfg['key']} fold {k + 1}/{cfg['folds']}: best epoch "
                       f"{entry['best_epoch'] + 1}, val acc {entry['best_val_acc']:.3f}, "
                       f"test acc {entry['test']['accuracy']:.3f}, {entry['seconds']:.0f} s")


def fold_logits_path(rundir: RunDirectory, k: int) -> Path:
    """``RUN_DIR/fold_NN.npz``: one fold's validation indices and logits, its test logits."""
    return rundir.path / f"fold_{int(k):02d}.npz"


def load_fold_logits(rundir: RunDirectory, k: int) -> dict[str, np.ndarray]:
    """One fold's saved validation and test logits."""
    path = fold_logits_path(rundir, k)
    if not path.is_file():
        raise RunError(f"{path}: not found (the run is incomplete?)")
    with np.load(path) as z:
        return {key: z[key] for key in z.files}

