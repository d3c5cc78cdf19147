"""The training loop every model of leukolib shares.

:func:`fit` trains one model on one fold: epochs of mini-batches with
on-the-fly augmentation, a validation pass after each epoch, the learning
rate lowered by ``ReduceLROnPlateau`` on the validation loss, the **model
selected on its validation score** (the best epoch is kept, not the last),
optional early stopping, learning curves, progress bars, and resumption
from a checkpoint. What differs between tasks is passed in as a
:class:`Task`: the loss and a per-sample score (IoU per image for the U-Net,
correctness per image for a classifier).

Reproducibility: every epoch reseeds PyTorch, the shuffling and the
augmentation from ``(seed, epoch)``, so an interrupted fold resumed from its
checkpoint ends with the very weights of an uninterrupted one on the CPU.

Batches: shuffled from the epoch's seed; a last batch of a single image is
merged into the one before (BatchNorm cannot normalise one value per channel,
and a step on one image is mostly noise), so every image is still seen once
an epoch.

On a GPU
--------
* The forward pass runs under mixed precision (``torch.autocast`` and a
  gradient scaler); the loss is computed in float32 from the autocast
  outputs, and validation runs in float32 (the selection sees what the saved
  logits will be).
* ``num_workers > 0`` augments in DataLoader worker processes, kept alive for
  the whole fold (``persistent_workers``: starting them every epoch would
  cost more than a small dataset's epoch). Each worker reseeds the dataset's
  augmentation from ``(epoch seed, worker id)`` at the first sample of every
  epoch (:class:`_EpochSeeded`), so the same seed and worker count give the
  same augmented images, and no two workers repeat one random stream. The
  dataset then needs a ``reseed(seed)`` method. Batches are pinned and
  copied without blocking; ``channels_last`` converts model and inputs to
  the NHWC layout (faster convolutions under autocast on tensor cores).
* ``cuda_graph``: each full batch's whole step (forward, loss, backward,
  Adam) is replayed from a CUDA graph, in bfloat16 (:class:`_GraphedStep`);
  at small batches this removes the host's kernel launches, which otherwise
  bound the speed.
* The loop never waits for the GPU inside an epoch: losses and scores are
  gathered on the device and read once the epoch ends. The history records
  the time spent waiting for the DataLoader (``data_seconds``) beside the
  epoch's training time, the share a slow input pipeline costs.
* Checkpoints (the last epoch's model, optimizer, scheduler and scaler, the
  best epoch's weights) overwrite one file, at most every
  ``checkpoint_every`` seconds: an epoch of a small dataset on a GPU takes
  less time than writing 400 MB of ResNet-50 and Adam state.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, get_worker_info
from torch.utils.data import Dataset as TorchDataset
from tqdm import tqdm  # not tqdm.auto: its asyncio wrapper calls iter() twice on a DataLoader

from leukolib.device import derive_seed, use_amp
from leukolib.runs import load_torch, save_torch

__all__ = ["FitResult", "Task", "adam", "fit"]


def adam(params, lr: float, weight_decay: float, capturable: bool = False) -> torch.optim.Adam:
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
    capturable : bool
        An optimizer whose step a CUDA graph can capture (:class:`_GraphedStep`):
        its step counts and learning rate live on the GPU (the scheduler
        updates the rate in place).

    Returns
    -------
    torch.optim.Adam
    """
    params = list(params)
    if capturable:
        rate = torch.tensor(float(lr), device=params[0].device)
        return torch.optim.Adam(params, lr=rate, weight_decay=weight_decay, fused=True,
                                capturable=True)
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


class _ShuffledBatches(Sampler[list]):
    """Shuffled index batches from a generator; a last batch of one joins the one before.

    The permutation is ``torch.randperm(n, generator)``, as in PyTorch's
    ``RandomSampler``, so the batches are those of ``DataLoader(shuffle=True,
    generator=...)`` whenever no single image is left over. With ``tag`` set,
    each index is sent as ``(tag, index)`` (:class:`_EpochSeeded`).
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = int(n), int(batch_size), generator
        self.tag: int | None = None

    def __iter__(self):
        order = torch.randperm(self.n, generator=self.generator).tolist()
        batches = [order[s : s + self.batch_size] for s in range(0, self.n, self.batch_size)]
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches[-2].extend(batches.pop())
        for b in batches:
            yield b if self.tag is None else [(self.tag, i) for i in b]

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (rest > 1 or (rest == 1 and full == 0))


class _EpochSeeded(TorchDataset):
    """A dataset whose items are asked for as ``(epoch_seed, index)``, in a worker process.

    At the first item of a new epoch seed, the worker reseeds the dataset's
    augmentation (``dataset.reseed``) and PyTorch from ``(epoch seed, worker
    id)``: persistent workers then follow the same streams as fresh ones would.
    """

    def __init__(self, dataset: TorchDataset) -> None:
        if not callable(getattr(dataset, "reseed", None)):
            raise TypeError("DataLoader workers need a dataset with a reseed(seed) method")
        self.dataset, self._seed = dataset, None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        seed, i = key
        if seed != self._seed:
            info = get_worker_info()
            s = derive_seed(seed, 0 if info is None else info.id)
            self.dataset.reseed(s)
            torch.manual_seed(s)
            self._seed = seed
        return self.dataset[i]


class _GraphedStep:
    """Whole training steps replayed from a CUDA graph: forward, float32 loss, backward, Adam.

    At the paper's batch of 8 images a large GPU mostly waits for the host to
    launch ResNet-50's thousand-odd kernels of a step: replayed as one graph,
    a step ran at 1,601 images/s against 624 launched one by one on an H200
    (``benchmarks/gpu_step.py``). What this costs, and how it is kept right:

    * bfloat16 autocast and no gradient scaler (its overflow checks cannot be
      captured; bfloat16 has float32's range and needs none);
    * a capturable optimizer (:func:`adam` with ``capturable=True``), whose
      learning rate the scheduler changes in place on the GPU;
    * the first ``WARMUP`` full batches step eagerly on a side stream (as
      PyTorch's notes on whole-network capture require), the next is captured
      and every later full batch replays it; a smaller batch (the epoch's
      last) steps eagerly into the same gradient tensors;
    * BatchNorm's running statistics and dropout's random numbers advance at
      every replay, as in an eager step.
    """

    WARMUP = 3

    def __init__(self, model: nn.Module, task: Task, optimizer: torch.optim.Optimizer,
                 batch_size: int, memory_format: torch.memory_format) -> None:
        self.model, self.task, self.optimizer = model, task, optimizer
        self.batch_size, self.fmt = int(batch_size), memory_format
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm, self.failed = 0, False

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor):
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            out = self.model(x)
        return out, self.task.loss(out.float(), y)

    def eager(self, x: torch.Tensor, y: torch.Tensor):
        """One step without the graph (into the graph's gradient tensors, once captured).

        Returns detached tensors: an autograd graph kept alive would keep its
        gradient-accumulation nodes, made on the warm-up's stream, for the capture.
        """
        self.optimizer.zero_grad(set_to_none=self.graph is None)
        out, loss = self._forward_loss(x, y)
        loss.backward()
        self.optimizer.step()
        return out.detach(), loss.detach()

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        """Step on a batch already on the GPU; ``(outputs, loss, targets)``."""
        if len(x) != self.batch_size:
            return (*self.eager(x, y), y)
        if self.warm < self.WARMUP:
            self.warm += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out, loss = self.eager(x, y)
            torch.cuda.current_stream().wait_stream(side)
            return out, loss, y
        if self.failed:
            return (*self.eager(x, y), y)
        if self.graph is None:
            self.x = torch.empty_like(x, memory_format=self.fmt)
            self.y = torch.empty_like(y)
            self.x.copy_(x)
            self.y.copy_(y)
            self.optimizer.zero_grad(set_to_none=True)  # gradients allocated by the capture
            graph = torch.cuda.CUDAGraph()
            try:  # thread_local: the DataLoader's pinning thread goes on during the capture
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    out, loss = self._forward_loss(self.x, self.y)
                    loss.backward()
                    self.optimizer.step()
                # detached: the static outputs must not keep the captured autograd graph
                # (and its accumulation nodes, made on the capture's stream) alive
                self.out, self.loss = out.detach(), loss.detach()
                del out, loss
            except RuntimeError as exc:  # a model or PyTorch build that cannot be captured
                warnings.warn(f"CUDA graph capture failed ({str(exc).splitlines()[0]}); the "
                              "steps run eagerly", RuntimeWarning, stacklevel=3)
                self.failed = True
                torch.cuda.synchronize()
                return (*self.eager(x, y), y)
            self.graph = graph
        else:
            self.x.copy_(x, non_blocking=True)
            self.y.copy_(y, non_blocking=True)
        self.graph.replay()  # a capture records without running: the first step runs here
        return self.out, self.loss.detach().clone(), self.y


def _keep_rate_tensors(optimizer: torch.optim.Optimizer, rates: list) -> None:
    """Put a scheduler's new rates into the captured rate tensors (a float would be ignored)."""
    for group, rate in zip(optimizer.param_groups, rates, strict=True):
        if isinstance(rate, torch.Tensor) and group["lr"] is not rate:
            rate.fill_(float(group["lr"]))
            group["lr"] = rate


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: TorchDataset | tuple[torch.Tensor, torch.Tensor],
    task: Task,
    device: str,
    batch_size: int,
) -> tuple[float, float]:
    """Mean loss (batches weighted by size) and mean per-sample score of ``model`` on ``data``.

    In float32 on every device (no autocast): the selection of the best epoch
    sees the numbers the saved logits will hold.
    """
    model.eval()
    total, n, scores = 0.0, 0, []
    for xb, yb in _batches(data, batch_size):
        xb, yb = xb.to(device), yb.to(device)
        out = model(xb).float()
        total += float(task.loss(out, yb)) * len(xb)
        n += len(xb)
        scores.append(task.score(out, yb).float().cpu())
    return total / max(n, 1), float(torch.cat(scores).mean()) if scores else float("nan")


@dataclass
class _EpochStats:
    loss: float
    score: float
    images: int
    seconds: float
    data_seconds: float


def _train_epoch(model: nn.Module, loader, task: Task, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, device: str, desc: str, progress: bool,
                 channels_last: bool = False, graphed: _GraphedStep | None = None,
                 prepare: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> _EpochStats:
    """One pass over the training loader: mean loss and score, images, times."""
    amp, cpu = use_amp(device), str(device) == "cpu"
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.train()
    losses, sizes, scores, waited = [], [], [], 0.0
    t0 = time.perf_counter()
    bar = tqdm(total=len(loader), desc=desc.strip(), leave=False, disable=not progress,
               unit="batch", mininterval=1.0)
    batches = iter(loader)
    while True:
        tw = time.perf_counter()
        try:
            xb, yb = next(batches)
        except StopIteration:
            break
        waited += time.perf_counter() - tw
        xb = xb.to(device, non_blocking=True)
        if prepare is not None:
            xb = prepare(xb)
        xb = xb.contiguous(memory_format=fmt)  # no copy where the layout is already that
        yb = yb.to(device, non_blocking=True)
        if graphed is not None:
            out, loss, yb = graphed(xb, yb)
        else:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", enabled=amp):
                out = model(xb)
            loss = task.loss(out.float(), yb)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        losses.append(loss.detach())
        sizes.append(len(xb))
        scores.append(task.score(out.detach(), yb).float())
        if cpu:  # reading the loss waits for the device: only where that costs nothing
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", refresh=False)
        bar.update()
    bar.close()
    # one transfer for the epoch; the same float64 arithmetic as a per-batch float()
    values = torch.stack(losses).float().cpu().tolist() if losses else []
    loss_sum = sum(v * n for v, n in zip(values, sizes, strict=True))
    n = sum(sizes)
    score = float(torch.cat(scores).cpu().mean()) if scores else float("nan")
    return _EpochStats(loss_sum / max(n, 1), score, n, time.perf_counter() - t0, waited)


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
    channels_last: bool = False,
    cuda_graph: bool = False,
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
    checkpoint_every: float = 0.0,
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
        Written after an epoch (model, optimizer, scheduler, scaler, best
        model, history; one file, overwritten) and read back to resume.
    patience : int, optional
        Stop when the validation score has not improved for this many epochs.
    reseed : callable, optional
        ``reseed(epoch_seed)``, e.g. to reseed the augmentation pipeline
        (in this process; workers call ``train_set.reseed``).
    num_workers : int
        DataLoader worker processes (``0``: augment in this process). With
        workers, ``train_set`` needs a ``reseed(seed)`` method.
    channels_last : bool
        Train in the NHWC memory layout (on CUDA, for convolutional networks).
    prepare : callable, optional
        Applied to each training batch once on ``device`` (e.g. normalising
        ``uint8`` images there rather than in the workers).
    cuda_graph : bool
        On CUDA, replay each full batch's step from a CUDA graph
        (:class:`_GraphedStep`: bfloat16, a capturable optimizer; the forward
        pass and loss must be capturable). Ignored on the CPU.
    checkpoint_every : float
        Least seconds between two checkpoint writes (``0``: after every epoch).
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
    graphed = None
    if cuda_graph and amp:
        graphed = _GraphedStep(model, task, optimizer, batch_size, torch.channels_last
                               if channels_last else torch.contiguous_format)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and graphed is None)
    rates = [g["lr"] for g in optimizer.param_groups]
    if channels_last:
        model.to(memory_format=torch.channels_last)
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
    shuffle = torch.Generator()
    batches = _ShuffledBatches(len(train_set), batch_size, shuffle)
    pin = str(device).startswith("cuda")
    workers = None
    if num_workers > 0:  # one set of workers for the fold; reseeded per epoch (_EpochSeeded)
        workers = DataLoader(_EpochSeeded(train_set), batch_sampler=batches,
                             num_workers=num_workers, persistent_workers=True, pin_memory=pin,
                             generator=torch.Generator().manual_seed(derive_seed(seed)))
    last_write = time.perf_counter()
    for epoch in range(start, 0 if stopped else epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        es = derive_seed(seed, epoch)
        torch.manual_seed(es)  # dropout and any torch randomness of the model
        if reseed is not None:
            reseed(es)
        shuffle.manual_seed(es)
        if workers is not None:
            batches.tag, loader = es, workers
        else:  # the generator's first draw is the loader's base seed, then the permutation
            loader = DataLoader(train_set, batch_sampler=batches, generator=shuffle,
                                pin_memory=pin)
        ep = _train_epoch(model, loader, task, optimizer, scaler, device,
                          f"{desc} epoch {epoch + 1}/{epochs}", progress, channels_last,
                          graphed, prepare)
        train_loss, train_score = ep.loss, ep.score
        if val_set is not None and len(val_set[0] if isinstance(val_set, tuple) else val_set):
            val_loss, val_score = evaluate(model, val_set, task, device, 2 * batch_size)
        else:
            val_loss, val_score = train_loss, train_score
        lr = float(optimizer.param_groups[0]["lr"])  # a tensor where the step is captured
        if scheduler is not None:
            scheduler.step(val_loss)
            if graphed is not None:
                _keep_rate_tensors(optimizer, rates)
        if val_score > best_score:
            best_score, best_epoch, bad = val_score, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        stopped = patience is not None and bad >= patience and epoch + 1 < epochs
        row = {"epoch": epoch, "train_loss": train_loss, f"train_{name}": train_score,
               "val_loss": val_loss, f"val_{name}": val_score, "lr": lr,
               "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
               "train_seconds": ep.seconds, "data_seconds": ep.data_seconds,
               "train_images": ep.images}
        history.append(row)
        if checkpoint is not None and time.perf_counter() - last_write >= checkpoint_every:
            last_write = time.perf_counter()
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
