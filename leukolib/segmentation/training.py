"""k-fold training of the U-Net, with run directories that resume.

Protocol (paper, section 4.1; sizes from the run profile)
---------------------------------------------------------
* ``k``-fold cross-validation (:func:`make_folds`, scikit-learn ``KFold``,
  shuffled with the run's seed): every image is in exactly one test fold and
  is predicted once, by the model that did not train on it. These
  out-of-fold predictions, compared with the ground truth at the image's
  **original** resolution (:func:`leukolib.metrics.segmentation_metrics`), give
  the dataset's metrics (mean and std over images).
* Inside each fold a validation split (``profile.seg_val_fraction`` of the
  training images, never test images) drives ``ReduceLROnPlateau`` on the
  validation loss and selects the kept model: the epoch with the best
  validation IoU (mean of per-image IoU at the network's resolution).
* Adam (learning rate, weight decay), dropout and the Unified Focal Loss
  parameters come from :func:`leukolib.segmentation.hparams.unet_hparams`.
* Images are resized once to the profile's ``seg_image_size``, then augmented
  on the fly (:mod:`leukolib.segmentation.augment`).
* On CUDA, mixed precision (``torch.autocast`` + ``GradScaler``); on the CPU
  the same seed gives bit-identical weights and metrics.

Run directory
-------------
::

    RUN_DIR/run.json       config, dataset (name, root, ids), folds (test and
                           validation ids, per-epoch history, best epoch),
                           out-of-fold per-image metrics and summary,
                           library versions, timings
    RUN_DIR/fold_00.pt     state dict of fold 0's selected model
    RUN_DIR/fold_01.pt     ...
    RUN_DIR/fold_02.ckpt   while fold 2 trains: its last finished epoch (model,
                           optimizer, scheduler, best model so far, history)

``run.json`` is rewritten after every fold. Calling :func:`train_unet` again
with the same arguments resumes: finished folds are skipped and the fold in
progress restarts from its last finished epoch, with the very same result as
an uninterrupted run on the CPU (every epoch reseeds its random generators
from ``(seed, fold, epoch)``). A directory holding a run of another
configuration is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm  # not tqdm.auto: its asyncio wrapper calls iter() twice on a DataLoader

from leukolib.data.base import Dataset, Subset
from leukolib.metrics import SEGMENTATION_METRICS, segmentation_metrics, summarize
from leukolib.profiles import Profile, get_profile
from leukolib.segmentation.augment import (
    describe_augmentation,
    image_to_tensor,
    mask_to_tensor,
    plain_tensor,
    resize_image,
    resize_mask,
    training_transforms,
)
from leukolib.segmentation.hparams import UNetHParams, unet_hparams
from leukolib.segmentation.losses import UnifiedFocalLoss
from leukolib.segmentation.unet import (
    NETWORK,
    RUN_FORMAT,
    RunError,
    build_unet,
    image_fingerprint,
    predict_proba,
    read_record,
)

__all__ = ["Fold", "SCHEDULER", "make_folds", "train_unet"]

#: ReduceLROnPlateau settings (ours; the paper does not give them).
SCHEDULER: dict[str, Any] = {
    "name": "ReduceLROnPlateau",
    "mode": "min",
    "factor": 0.5,
    "patience": 2,
}


@dataclass(frozen=True)
class Fold:
    """Sample indices of one cross-validation fold.

    Attributes
    ----------
    index : int
    train, val, test : ndarray of int
        Disjoint; ``test`` is this fold's share of the dataset, ``val`` is
        taken from the other folds' images.
    """

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def _seed(*parts: int) -> int:
    """A 32-bit seed derived from integers (seed, fold, epoch ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def make_folds(n: int, n_folds: int, val_fraction: float, seed: int) -> list[Fold]:
    """Shuffled k-fold splits with a validation split taken from each training part.

    Parameters
    ----------
    n : int
        Number of samples.
    n_folds : int
        ``k`` (at least 2, at most ``n``).
    val_fraction : float
        Share of each fold's training samples held out for validation, in
        ``[0, 1)``; at least one sample when positive.
    seed : int
        Seed of the shuffling (``KFold(shuffle=True, random_state=seed)``) and
        of the validation draw.

    Returns
    -------
    list of Fold

    Examples
    --------
    >>> folds = make_folds(10, 2, 0.25, seed=0)
    >>> sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(10))
    True
    >>> [(len(f.train), len(f.val), len(f.test)) for f in folds]
    [(3, 2, 5), (3, 2, 5)]
    """
    from sklearn.model_selection import KFold

    if n_folds < 2:
        raise ValueError(f"k-fold cross-validation needs at least 2 folds, got {n_folds}")
    if n < n_folds:
        raise ValueError(f"{n} samples cannot be split into {n_folds} folds")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    folds = []
    kfold = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (rest, test) in enumerate(kfold.split(np.arange(n))):
        rng = np.random.default_rng(_seed(seed, k, 7919))
        rest = rng.permutation(rest)
        n_val = 0 if val_fraction == 0 else max(1, int(math.ceil(val_fraction * len(rest))))
        n_val = min(n_val, len(rest) - 1)  # keep at least one training image
        val, train = np.sort(rest[:n_val]), np.sort(rest[n_val:])
        folds.append(Fold(k, train, val, np.sort(test)))
    return folds


# ----------------------------------------------------------------------------- data


class _Pairs(TorchDataset):
    """Resized image / mask tensors, augmented on access."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, transform) -> None:
        self.images = images
        self.masks = masks
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        d = {"image": self.images[i], "mask": self.masks[i]}
        if self.transform is not None:
            d = self.transform(d)
        return plain_tensor(d["image"]).float(), plain_tensor(d["mask"]).float()


def _worker_init(worker_id: int) -> None:
    # Each DataLoader worker holds a copy of the transform: give each its own
    # stream, derived from the loader's (seeded) base seed.
    info = torch.utils.data.get_worker_info()
    if info is not None and getattr(info.dataset, "transform", None) is not None:
        info.dataset.transform.set_random_state(seed=info.seed % (2**32))


@dataclass
class _Data:
    ids: list[str]
    images: list[np.ndarray]  # original uint8 images
    masks: list[np.ndarray]  # original bool nucleus masks
    x: torch.Tensor  # (N, 3, S, S) float in [0, 1]
    y: torch.Tensor  # (N, 1, S, S) float {0, 1}
    fingerprints: dict[str, str]


def _load_data(dataset: Dataset, size: int, progress: bool) -> _Data:
    images, masks, xs, ys = [], [], [], []
    for s in tqdm(
        dataset, total=len(dataset), desc=f"load {dataset.name}", disable=not progress, leave=False
    ):
        if s.nucleus is None:
            raise RunError(f"{dataset.name}: sample {s.id!r} has no nucleus mask")
        images.append(s.image)
        masks.append(np.asarray(s.nucleus, dtype=bool))
        xs.append(resize_image(image_to_tensor(s.image), size))
        ys.append(resize_mask(mask_to_tensor(s.nucleus), size))
    ids = list(dataset.ids)
    prints = {i: image_fingerprint(im) for i, im in zip(ids, images, strict=True)}
    return _Data(ids, images, masks, torch.stack(xs), torch.stack(ys), prints)


def _dataset_root(dataset: Dataset) -> str | None:
    """The folder ``load_dataset(dataset.name, root)`` reads, guessed from its files.

    Every loader with masks keeps its images in one folder directly under the
    root (``ROOT/Dataset 1``, ``ROOT/img``, ``ROOT/images``), so the guess is
    that folder's parent; it is kept only when the loader accepts it.
    """
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    root = getattr(dataset, "root", None)
    if root is not None:
        return str(root)
    records = getattr(dataset, "records", None)
    if not records:
        return None
    parents = {Path(r.image).parent for r in records}
    guess = parents.pop().parent if len(parents) == 1 else None
    if guess is None:
        return None
    try:
        from leukolib.data import load_dataset

        ok = set(dataset.ids) <= set(load_dataset(dataset.name, guess).ids)
    except Exception:  # noqa: BLE001 - a guess that does not load is simply not recorded
        ok = False
    return str(guess) if ok else None


# ----------------------------------------------------------------------------- metrics


def _iou_per_image(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image IoU of boolean ``(N, 1, H, W)`` masks; 1 when both are empty."""
    p, t = pred.flatten(1), target.flatten(1)
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@torch.no_grad()
def _evaluate(model, x, y, loss_fn, device, batch_size, use_amp) -> tuple[float, float]:
    """Mean loss (per batch, weighted by size) and mean per-image IoU at network size."""
    model.eval()
    total, ious = 0.0, []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device)
        yb = y[start : start + batch_size].to(device)
        with torch.autocast("cuda", enabled=use_amp):
            logits = model(xb)
        total += float(loss_fn(logits, yb)) * len(xb)
        ious.append(_iou_per_image(logits >= 0, yb >= 0.5).cpu())
    return total / len(x), float(torch.cat(ious).mean())


# ----------------------------------------------------------------------------- run dir


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    from leukolib.notebook import _jsonable

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(payload), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _save_torch(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _our_files(run_dir: Path) -> list[Path]:
    pats = (
        "run.json",
        "run.json.tmp",
        "fold_*.pt",
        "fold_*.ckpt",
        "fold_*.tmp",
        "fold_*.pt.tmp",
        "fold_*.ckpt.tmp",
    )
    return sorted({p for pat in pats for p in run_dir.glob(pat)})


def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k)]


def _same_pixels(record: dict[str, Any], dataset: Dataset, run_dir: Path, overwrite: bool) -> bool:
    """Whether a run found on disk was trained on these very images (ids alone can lie)."""
    stored = record.get("dataset", {}).get("fingerprints") or {}
    if not stored:
        return True  # the run was interrupted before its images were recorded
    for s in dataset:
        if stored.get(s.id) != image_fingerprint(s.image):
            if overwrite:
                return False
            raise RunError(
                f"{run_dir} holds a U-Net run of the same configuration but trained on other "
                f"pixels (sample {s.id!r} differs); choose another directory or pass "
                "overwrite=True to replace it"
            )
    return True


def _prepare_run_dir(run_dir: Path, config: dict[str, Any], overwrite: bool) -> dict | None:
    """The existing record to resume (same config), or None for a fresh start."""
    if not run_dir.exists():
        run_dir.mkdir(parents=True)
        return None
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: exists and is not a directory")
    try:
        record = read_record(run_dir)
    except RunError:
        if not overwrite:
            raise
        record = None
    if record is not None and record.get("config") == config:
        return record
    entries = [p for p in run_dir.iterdir()]
    if entries and not overwrite:
        if record is not None:
            diff = ", ".join(_config_diff(record.get("config", {}), config))
            raise RunError(
                f"{run_dir} holds a U-Net run of another configuration (differs in: {diff}); "
                "choose another directory or pass overwrite=True to replace it"
            )
        raise RunError(
            f"{run_dir} is not empty and holds no U-Net run; choose an empty directory "
            "or pass overwrite=True"
        )
    for p in _our_files(run_dir):
        p.unlink()
    return None


# ----------------------------------------------------------------------------- training


def _train_fold(
    fold: Fold,
    data: _Data,
    cfg: dict[str, Any],
    hp: UNetHParams,
    device: str,
    run_dir: Path,
    progress: bool,
    num_workers: int,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None,
) -> tuple[dict[str, torch.Tensor], int, float, list[dict[str, Any]]]:
    """Train one fold; returns (best state dict, best epoch, best val IoU, history)."""
    k, seed, epochs, bs = fold.index, cfg["seed"], cfg["epochs"], cfg["batch_size"]
    use_amp = device.startswith("cuda")
    torch.manual_seed(_seed(seed, k))
    model = build_unet(dropout=hp.dropout, **cfg["network"]).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=SCHEDULER["mode"], factor=SCHEDULER["factor"], patience=SCHEDULER["patience"]
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    loss_fn = UnifiedFocalLoss(hp.lam, hp.delta, hp.gamma)

    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, best_iou, start = -1, -math.inf, 0
    ckpt_path = run_dir / f"fold_{k:02d}.ckpt"
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        best_state, best_epoch, best_iou = ck["best_state"], ck["best_epoch"], ck["best_iou"]
        history, start = list(ck["history"]), int(ck["epoch"]) + 1

    transform = training_transforms(seed=None)
    train_set = _Pairs(data.x[fold.train], data.y[fold.train], transform)
    xv, yv = data.x[fold.val], data.y[fold.val]
    for epoch in range(start, epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        es = _seed(seed, k, epoch)
        torch.manual_seed(es)  # dropout
        transform.set_random_state(seed=es)
        loader = DataLoader(
            train_set,
            batch_size=bs,
            shuffle=True,
            generator=torch.Generator().manual_seed(es),
            num_workers=num_workers,
            worker_init_fn=_worker_init if num_workers else None,
        )
        model.train()
        loss_sum, ious = 0.0, []
        bar = tqdm(
            loader,
            desc=f"fold {k + 1}/{cfg['folds']} epoch {epoch + 1}/{epochs}",
            leave=False,
            disable=not progress,
            unit="batch",
            mininterval=1.0,
        )
        for xb, yb in bar:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", enabled=use_amp):
                logits = model(xb)
            loss = loss_fn(logits, yb)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            loss_sum += float(loss.detach()) * len(xb)
            ious.append(_iou_per_image(logits.detach() >= 0, yb >= 0.5).cpu())
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        bar.close()
        train_loss = loss_sum / len(train_set)
        train_iou = float(torch.cat(ious).mean())
        if len(xv):
            val_loss, val_iou = _evaluate(model, xv, yv, loss_fn, device, 2 * bs, use_amp)
        else:  # no validation split: schedule on, and keep, the training numbers
            val_loss, val_iou = train_loss, train_iou
        lr = opt.param_groups[0]["lr"]
        sched.step(val_loss)
        if val_iou > best_iou:
            best_iou, best_epoch = val_iou, epoch
            best_state = {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_iou": train_iou,
            "val_loss": val_loss,
            "val_iou": val_iou,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
            # CPU time of this process (all threads): robust to other jobs on the machine
            "cpu_seconds": time.process_time() - c0,
        }
        history.append(row)
        _save_torch(
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "scaler": scaler.state_dict(),
                "best_state": best_state,
                "best_epoch": best_epoch,
                "best_iou": best_iou,
                "history": history,
            },
            ckpt_path,
        )
        if on_epoch_end is not None:
            on_epoch_end(k, dict(row))
    assert best_state is not None
    return best_state, best_epoch, best_iou, history


def train_unet(
    dataset: Dataset,
    out_dir: str | os.PathLike,
    profile: str | Profile = "cpu",
    seed: int = 0,
    hparams: dict[str, float] | UNetHParams | None = None,
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    epochs: int | None = None,
    folds: int | None = None,
    *,
    data_root: str | os.PathLike | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train the U-Net by k-fold cross-validation into a run directory (resumable).

    Parameters
    ----------
    dataset : Dataset
        Images with nucleus masks (e.g. ``load_dataset("jtsc", root)``).
    out_dir : path
        The run directory (created). If it holds a run of the same
        configuration, training resumes (or returns at once when finished).
    profile : str or Profile
        Sizes: ``seg_image_size``, ``seg_folds``, ``seg_epochs``,
        ``seg_batch_size``, ``seg_val_fraction``.
    seed : int
        Seed of the folds, the initialisation, the augmentation and dropout.
    hparams : mapping or UNetHParams, optional
        Overrides of :func:`~leukolib.segmentation.hparams.unet_hparams` for
        the dataset (e.g. ``{"lr": 3e-4}``).
    device : str, optional
        ``"cpu"`` or ``"cuda"``; default: CUDA when present (then with mixed
        precision).
    progress : bool
        Show a progress bar per epoch and print one line per fold.
    overwrite : bool
        Replace a run of another configuration found in ``out_dir`` (only
        ``run.json``, ``fold_*.pt`` and ``fold_*.ckpt`` are deleted). A run of
        the same configuration is always resumed, never retrained: delete the
        directory to train it again.
    epochs, folds : int, optional
        Override the profile's ``seg_epochs`` / ``seg_folds``.
    data_root : path, optional
        The dataset folder, recorded in ``run.json`` (guessed from the
        dataset's files when not given).
    image_size, batch_size : int, optional
        Override the profile's ``seg_image_size`` / ``seg_batch_size``.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(fold, epoch_row)`` after each epoch (after the
        checkpoint is written), e.g. to plot live curves.

    Returns
    -------
    dict
        The run record, as written to ``out_dir/run.json``: ``config``,
        ``dataset``, ``folds`` (test/val ids, history, best epoch), ``oof``
        (``per_image`` metrics and ``summary``), ``versions``, ``timings``.

    Raises
    ------
    RunError
        When ``out_dir`` holds something else and ``overwrite`` is False, or a
        sample has no mask.

    Examples
    --------
    >>> from leukolib.data import load_dataset
    >>> ds = load_dataset("synthetic", n_images=6, size=64, seed=0)  # doctest: +SKIP
    >>> rec = train_unet(ds, "/tmp/unet_demo", profile="smoke", progress=False)  # doctest: +SKIP
    >>> rec["oof"]["summary"]["iou"]["mean"]  # doctest: +SKIP
    """
    from leukolib.notebook import library_versions, select_device

    t_call = time.perf_counter()
    prof = get_profile(profile)
    hp = unet_hparams(dataset.name, hparams)
    size = int(image_size or prof.seg_image_size)
    if size < 8 or size % 8:
        raise ValueError(f"seg_image_size must be a positive multiple of 8, got {size}")
    ids = [str(i) for i in dataset.ids]
    if len(set(ids)) != len(ids):
        raise RunError(f"{dataset.name}: sample ids are not unique")
    if not dataset.has_masks:
        raise RunError(f"{dataset.name}: the dataset has no nucleus masks to train on")
    n_folds = int(folds or prof.seg_folds)
    if not 2 <= n_folds <= len(dataset):
        raise RunError(
            f"k-fold cross-validation needs 2 to {len(dataset)} folds for the {len(dataset)} "
            f"images of {dataset.name!r}, got {n_folds}"
        )
    config = {
        "profile": prof.name,
        "image_size": size,
        "folds": n_folds,
        "epochs": int(epochs or prof.seg_epochs),
        "batch_size": int(batch_size or prof.seg_batch_size),
        "val_fraction": float(prof.seg_val_fraction),
        "seed": int(seed),
        "hparams": hp.values(),
        "hparams_source": hp.source,
        "network": dict(NETWORK),
        "loss": "UnifiedFocalLoss (asymmetric, Yeung et al. 2022)",
        "optimizer": "Adam",
        "scheduler": dict(SCHEDULER),
        "selection": "best validation IoU",
        "augmentation": describe_augmentation(),
        "dataset": {"name": dataset.name, "ids": ids},
    }
    config = json.loads(json.dumps(config))  # as it reads back from run.json
    run_dir = Path(out_dir).expanduser()
    record = _prepare_run_dir(run_dir, config, overwrite)
    if record is not None and not _same_pixels(record, dataset, run_dir, overwrite):
        for path in _our_files(run_dir):
            path.unlink()
        record = None
    if record is not None and record.get("status") == "complete":
        if progress:
            print(f"U-Net run in {run_dir} is complete: nothing to train", flush=True)
        return record

    dev = select_device(device)
    fold_list = make_folds(len(ids), n_folds, config["val_fraction"], config["seed"])
    if record is None:
        record = {
            "format": RUN_FORMAT,
            "status": "running",
            "created": _now(),
            "config": config,
            "hparams": hp.to_dict(),
            "dataset": {
                "name": dataset.name,
                "root": str(data_root) if data_root is not None else _dataset_root(dataset),
                "description": repr(dataset),
                "n_images": len(ids),
                "ids": ids,
            },
            "folds": [],
            "oof": {"per_image": [], "summary": None},
            "timings": {"fold_seconds": [], "load_seconds": []},
        }
    elif progress:
        done = len(record["folds"])
        print(f"resuming U-Net run in {run_dir}: {done} of {n_folds} folds done", flush=True)
    record["versions"] = library_versions()
    record["device"] = dev

    t0 = time.perf_counter()
    data = _load_data(dataset, size, progress)
    record["timings"]["load_seconds"].append(time.perf_counter() - t0)
    record["dataset"]["fingerprints"] = data.fingerprints
    _write_json(run_dir / "run.json", record)  # from now on, an interruption resumes
    num_workers = prof.num_workers if dev.startswith("cuda") else 0

    done_folds = {int(f["fold"]) for f in record["folds"]}
    # Seed inside a forked RNG state: the caller's generators are left as they were.
    cuda_devices = list(range(torch.cuda.device_count())) if dev.startswith("cuda") else []
    with torch.random.fork_rng(devices=cuda_devices):
        for fold in fold_list:
            if fold.index in done_folds:
                continue
            state, best_epoch, best_iou, history = _train_fold(
                fold, data, config, hp, dev, run_dir, progress, num_workers, on_epoch_end
            )
            t_test = time.perf_counter()
            _save_torch(state, run_dir / f"fold_{fold.index:02d}.pt")
            # Out-of-fold predictions of the test images, at their original size.
            model = build_unet(dropout=hp.dropout, **config["network"])
            model.load_state_dict(state)
            model = model.to(dev).eval()
            probs = predict_proba(
                [model], [data.images[i] for i in fold.test], size, dev, config["batch_size"] * 2
            )
            rows = []
            for i, prob in zip(fold.test, probs, strict=True):
                m = segmentation_metrics(prob >= 0.5, data.masks[i])
                rows.append({"id": ids[i], "fold": fold.index, **m})
            test_iou = float(np.mean([r["iou"] for r in rows]))
            # Epoch times are kept across interruptions; the test predictions are timed here.
            train_seconds = float(sum(h["seconds"] for h in history))
            seconds = train_seconds + (time.perf_counter() - t_test)
            record["folds"].append(
                {
                    "fold": fold.index,
                    "train_ids": [ids[i] for i in fold.train],
                    "val_ids": [ids[i] for i in fold.val],
                    "test_ids": [ids[i] for i in fold.test],
                    "best_epoch": best_epoch,
                    "best_val_iou": best_iou,
                    "test_iou": test_iou,
                    "seconds": seconds,
                    "train_seconds": train_seconds,
                    "history": history,
                }
            )
            record["oof"]["per_image"].extend(rows)
            record["timings"]["fold_seconds"].append(seconds)
            record["updated"] = _now()
            _write_json(run_dir / "run.json", record)
            ck = run_dir / f"fold_{fold.index:02d}.ckpt"
            if ck.exists():
                ck.unlink()
            if progress:
                tqdm.write(
                    f"fold {fold.index + 1}/{n_folds}: "
                    f"best epoch {best_epoch + 1}/{config['epochs']}, "
                    f"val IoU {best_iou:.4f}, test IoU {test_iou:.4f}, {seconds:.0f} s "
                    f"({len(fold.train)} train / {len(fold.val)} val / {len(fold.test)} test)"
                )

    record["folds"].sort(key=lambda f: f["fold"])
    order = {sid: i for i, sid in enumerate(ids)}
    record["oof"]["per_image"].sort(key=lambda r: order[r["id"]])
    record["oof"]["summary"] = summarize(record["oof"]["per_image"], SEGMENTATION_METRICS)
    epoch_secs = [h["seconds"] for f in record["folds"] for h in f["history"]]
    record["timings"].update(
        {
            "total_seconds": float(
                sum(record["timings"]["fold_seconds"]) + sum(record["timings"]["load_seconds"])
            ),
            "mean_epoch_seconds": float(np.mean(epoch_secs)),
            "mean_epoch_cpu_seconds": float(
                np.mean(
                    [h.get("cpu_seconds", np.nan) for f in record["folds"] for h in f["history"]]
                )
            ),
            "last_call_seconds": time.perf_counter() - t_call,
        }
    )
    record["status"] = "complete"
    record["updated"] = _now()
    _write_json(run_dir / "run.json", record)
    if progress:
        s = record["oof"]["summary"]
        print(
            f"U-Net {dataset.name}: out-of-fold IoU {s['iou']['mean']:.4f} "
            f"± {s['iou']['std']:.4f}, "
            f"DSC {s['dsc']['mean']:.4f}; {record['timings']['total_seconds']:.0f} s in all, "
            f"{record['timings']['mean_epoch_seconds']:.1f} s per epoch",
            flush=True,
        )
    return record

