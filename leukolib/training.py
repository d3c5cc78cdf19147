"""The training loop every model of leukolib shares.

:func:`fit` trains one model on one fold: epochs of mini-batches with
on-the-fly augmentation, a validation pass after each epoch, the learning
rate lowered by ``ReduceLROnPlateau`` on the validation loss, the **model
selected on its validation score** (the best epoch is kept, not the last),
optional early stopping, learning curves, progress bars, and resumption
from a checkpoint written after every epoch. What differs between tasks is
passed in as a :class:`Task`: the loss and a per-sample score (IoU per image
for the U-Net, correctness per image for a classifier).

Reproducibility: every epoch reseeds PyTorch, the shuffling and the
augmentation from ``(seed, epoch)``, so an interrupted fold resumed from its
checkpoint ends with the very weights of an uninterrupted one on the CPU. On
CUDA the forward pass runs under mixed precision (``torch.autocast`` and a
gradient scaler).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm  # not tqdm.auto: its asyncio wrapper calls iter() twice on a DataLoader

from leukolib.device import derive_seed, use_amp
from leukolib.runs import load_torch, save_torch

__all__ = ["FitResult", "Task", "adam", "fit"]


def adam(params, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with its fused kernel where PyTorch has one for the parameters' device.

    The fused step is one kernel per parameter group instead of one Python loop
    over the tensors: for a ResNet-18 on two CPU cores it takes 12 ms instead
    of 74 ms, against about 100 ms for the forward and backward pass of a batch
    of eight 48 px images. It computes the same update (up to rounding), and is
    deterministic on the CPU.

    Parameters
    ----------
    params : iterable of torch.nn.Parameter
        The parameters to optimize (all on one device).
    lr, weight_decay : float
        Adam's learning rate and L2 weight decay.

    Returns
    -------
    torch.optim.Adam
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@dataclass(frozen=True)
class Task:
    """The task-specific parts of training.

    Attributes
    ----------
    loss : callable
        ``loss(outputs, targets) -> scalar tensor``.
    score : callable
        ``score(outputs, targets) -> tensor (N,)``: a per-sample score, higher
        is better (e.g. IoU per image, or 1.0 for a correct class). Its mean
        over the validation set selects the model.
    score_name : str
        Name of the score in the learning curves (``"iou"``, ``"acc"``).
    """

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    score_name: str


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    best_state : dict
        State dict (on the CPU) of the selected epoch's model.
    best_epoch : int
    best_score : float
        Mean validation score of the selected epoch.
    history : list of dict
        One row per epoch: ``epoch, train_loss, train_<score>, val_loss,
        val_<score>, lr, seconds, cpu_seconds``.
    stopped_early : bool
    """

    best_state: dict[str, torch.Tensor]
    best_epoch: int
    best_score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


def _batches(data: TorchDataset | tuple[torch.Tensor, torch.Tensor], batch_size: int):
    if isinstance(data, tuple):
        x, y = data
        for start in range(0, len(x), batch_size):
            yield x[start : start + batch_size], y[start : start + batch_size]
    else:
        yield from DataLoader(data, batch_size=batch_size, shuffle=False)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: TorchDataset | tuple[torch.Tensor, torch.Tensor],
    task: Task,
    device: str,
    batch_size: int,
) -> tuple[float, float]:
    """Mean loss (batches weighted by size) and mean per-sample score of ``model`` on ``data``."""
    model.eval()
    total, n, scores = 0.0, 0, []
    for xb, yb in _batches(data, batch_size):
        xb, yb = xb.to(device), yb.to(device)
        with torch.autocast("cuda", enabled=use_amp(device)):
            out = model(xb)
        total += float(task.loss(out, yb)) * len(xb)
        n += len(xb)
        scores.append(task.score(out, yb).float().cpu())
    return total / max(n, 1), float(torch.cat(scores).mean()) if scores else float("nan")


def _train_epoch(model: nn.Module, loader: DataLoader, task: Task,
                 optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, device: str,
                 desc: str, progress: bool) -> tuple[float, float]:
    """One pass over the training loader; the mean loss and mean per-sample score."""
    amp = use_amp(device)
    model.train()
    loss_sum, n, scores = 0.0, 0, []
    bar = tqdm(loader, desc=desc.strip(), leave=False, disable=not progress, unit="batch",
               mininterval=1.0)
    for xb, yb in bar:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", enabled=amp):
            out = model(xb)
        loss = task.loss(out, yb)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_value = float(loss.detach())
        loss_sum += loss_value * len(xb)
        n += len(xb)
        scores.append(task.score(out.detach(), yb).float().cpu())
        bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
    bar.close()
    return loss_sum / max(n, 1), float(torch.cat(scores).mean())


def fit(
    model: nn.Module,
    task: Task,
    train_set: TorchDataset,
    val_set: TorchDataset | tuple[torch.Tensor, torch.Tensor] | None,
    *,
    epochs: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None,
    device: str = "cpu",
    seed: int = 0,
    checkpoint: Path | None = None,
    patience: int | None = None,
    reseed: Callable[[int], None] | None = None,
    num_workers: int = 0,
    worker_init_fn: Callable[[int], None] | None = None,
    progress: bool = True,
    desc: str = "",
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> FitResult:
    """Train ``model`` for one fold and keep its best validation epoch.

    Parameters
    ----------
    model : nn.Module
        On ``device``.
    task : Task
        Loss and per-sample score.
    train_set : torch Dataset
        ``(input, target)`` pairs, augmented on access.
    val_set : torch Dataset, (inputs, targets) tensors, or None
        Drives the scheduler and the selection; without it the training loss
        and score stand in (documented in the run record by the caller).
    epochs, batch_size : int
    optimizer : torch.optim.Optimizer
    scheduler : ReduceLROnPlateau, optional
        Stepped on the validation loss after every epoch.
    device : str
    seed : int
        Seed of the fold: epoch ``e`` reseeds everything from ``(seed, e)``.
    checkpoint : Path, optional
        Written after every epoch (model, optimizer, scheduler, scaler, best
        model, history) and read back to resume.
    patience : int, optional
        Stop when the validation score has not improved for this many epochs.
    reseed : callable, optional
        ``reseed(epoch_seed)``, e.g. to reseed the augmentation pipeline.
    num_workers, worker_init_fn :
        Of the training ``DataLoader``.
    progress : bool
        A progress bar per epoch.
    desc : str
        Prefix of the progress bar.
    on_epoch_end : callable, optional
        Called with each epoch's history row.

    Returns
    -------
    FitResult
    """
    amp = use_amp(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_epoch, best_score, start, bad, stopped = -1, -math.inf, 0, 0, False
    if checkpoint is not None and checkpoint.is_file():
        ck = load_torch(checkpoint, device)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        best_state, best_epoch, best_score = ck["best_state"], ck["best_epoch"], ck["best_score"]
        history, start, bad = list(ck["history"]), int(ck["epoch"]) + 1, int(ck["bad_epochs"])
        stopped = bool(ck.get("stopped", False))
    name = task.score_name
    for epoch in range(start, 0 if stopped else epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        es = derive_seed(seed, epoch)
        torch.manual_seed(es)  # dropout and any torch randomness of the model
        if reseed is not None:
            reseed(es)
        loader = DataLoader(train_set, batch_size=batch_size, shuffle=True,
                            generator=torch.Generator().manual_seed(es),
                            num_workers=num_workers, worker_init_fn=worker_init_fn)
        train_loss, train_score = _train_epoch(model, loader, task, optimizer, scaler, device,
                                               f"{desc} epoch {epoch + 1}/{epochs}", progress)
        if val_set is not None and len(val_set[0] if isinstance(val_set, tuple) else val_set):
            val_loss, val_score = evaluate(model, val_set, task, device, 2 * batch_size)
        else:
            val_loss, val_score = train_loss, train_score
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step(val_loss)
        if val_score > best_score:
            best_score, best_epoch, bad = val_score, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        stopped = patience is not None and bad >= patience and epoch + 1 < epochs
        row = {"epoch": epoch, "train_loss": train_loss, f"train_{name}": train_score,
               "val_loss": val_loss, f"val_{name}": val_score, "lr": lr,
               "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
        history.append(row)
        if checkpoint is not None:
            save_torch({"epoch": epoch, "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict() if scheduler is not None else {},
                        "scaler": scaler.state_dict(), "best_state": best_state,
                        "best_epoch": best_epoch, "best_score": best_score, "history": history,
                        "bad_epochs": bad, "stopped": stopped}, checkpoint)
        if on_epoch_end is not None:
            on_epoch_end(dict(row))
        if stopped:
            break
    if best_state is None:
        raise RuntimeError("fit: no epoch was trained (epochs must be at least 1)")
    return FitResult(best_state, best_epoch, best_score, history, stopped)
