"""The GPU path, where a GPU is present (skipped without one: the ``gpu`` marker).

On CUDA, training runs under mixed precision and cuDNN picks its kernels, so
these tests compare with tolerances, never bit for bit as the CPU tests do.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leukolib.classification.models import build_classifier
from leukolib.classification.training import predict_logits
from leukolib.device import configure_cuda
from leukolib.training import Task, fit

pytestmark = pytest.mark.gpu


class _Noisy(torch.utils.data.Dataset):
    def __init__(self, n: int = 33) -> None:
        self.n, self.rng = n, np.random.default_rng(0)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        x = torch.full((3, 32, 32), float(i % 3)) + 0.1 * torch.from_numpy(
            self.rng.standard_normal((3, 32, 32))).float()
        return x, torch.tensor(i % 3)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


def _train(workers: int) -> dict:
    configure_cuda("deterministic")
    torch.manual_seed(0)
    net = build_classifier(3, arch="resnet18").to("cuda")
    task = Task(torch.nn.CrossEntropyLoss(), lambda o, y: (o.argmax(1) == y).float(), "acc")
    result = fit(net, task, _Noisy(), None, epochs=2, batch_size=8, device="cuda", seed=1,
                 optimizer=torch.optim.Adam(net.parameters(), lr=1e-3), num_workers=workers,
                 channels_last=True, progress=False)
    assert result.history[0]["train_images"] == 33  # 8 + 8 + 8 + 9: no batch of one
    return result.best_state


def test_training_with_workers_repeats_within_tolerance():
    a, b = _train(2), _train(2)
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-3)


def test_logits_on_the_gpu_are_float32_and_match_the_cpu():
    configure_cuda("deterministic")
    torch.manual_seed(0)
    net = build_classifier(3, arch="resnet18").eval()
    x = torch.randn(16, 3, 64, 64)
    cpu = predict_logits(net, x, "cpu", channels_last=False)
    gpu = predict_logits(net.to("cuda"), x, "cuda")
    assert gpu.dtype == np.float32
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3)


def _graph_fit(warmup: int, scheduler=None, on_epoch_end=None, epochs: int = 2) -> dict:
    from leukolib.training import _GraphedStep, adam

    configure_cuda("deterministic")
    torch.manual_seed(0)
    net = build_classifier(3, arch="resnet18").to("cuda")
    task = Task(torch.nn.CrossEntropyLoss(), lambda o, y: (o.argmax(1) == y).float(), "acc")
    old, _GraphedStep.WARMUP = _GraphedStep.WARMUP, warmup
    try:
        result = fit(net, task, _Noisy(), None, epochs=epochs, batch_size=8, device="cuda",
                     seed=1, optimizer=adam(net.parameters(), 1e-3, 1e-4, capturable=True),
                     scheduler=scheduler, cuda_graph=True, channels_last=True, progress=False,
                     on_epoch_end=on_epoch_end)
    finally:
        _GraphedStep.WARMUP = old
    return result.best_state if on_epoch_end is None else {}


def test_replayed_steps_are_the_eager_steps():
    graph = _graph_fit(warmup=3)
    eager = _graph_fit(warmup=10**9)  # never captured: the same steps, launched one by one
    for k in graph:
        if graph[k].is_floating_point():
            torch.testing.assert_close(graph[k], eager[k], rtol=2e-2, atol=2e-3)


def test_a_scheduler_s_rate_reaches_the_captured_step():
    from leukolib.training import adam

    class ToZero:  # writes a float, as older schedulers do
        def __init__(self, opt):
            self.opt = opt

        def step(self, loss):
            for g in self.opt.param_groups:
                g["lr"] = 0.0

    configure_cuda("deterministic")
    torch.manual_seed(0)
    net = build_classifier(3, arch="resnet18").to("cuda")
    start = [p.detach().clone() for p in net.parameters()]
    task = Task(torch.nn.CrossEntropyLoss(), lambda o, y: (o.argmax(1) == y).float(), "acc")
    opt = adam(net.parameters(), 1e-3, 1e-4, capturable=True)
    weights = []
    # 64 images, 8 full batches: epoch 0 warms up, captures and replays at 1e-3, the scheduler
    # then sets 0, and the replays of epochs 1 and 2 must leave the weights as they are
    fit(net, task, _Noisy(64), None, epochs=3, batch_size=8, device="cuda", seed=1,
        optimizer=opt, scheduler=ToZero(opt), cuda_graph=True, channels_last=True,
        progress=False,
        on_epoch_end=lambda row: weights.append([p.detach().clone() for p in net.parameters()]))
    assert not all(torch.equal(a, b) for a, b in zip(start, weights[0], strict=True))
    assert all(torch.equal(a, b) for a, b in zip(weights[0], weights[2], strict=True))


def test_resnet50_steps_are_captured_in_fast_mode(recwarn):
    from leukolib.training import _GraphedStep, adam

    configure_cuda("fast")  # cuDNN autotuning and TF32, as the paper profile trains
    torch.manual_seed(0)
    net = build_classifier(3, arch="resnet50").to("cuda")
    task = Task(torch.nn.CrossEntropyLoss(), lambda o, y: (o.argmax(1) == y).float(), "acc")
    seen = []
    real = _GraphedStep.__call__

    def spy(self, x, y):
        out = real(self, x, y)
        seen.append(self.graph is not None and not self.failed)
        return out

    _GraphedStep.__call__ = spy
    try:
        result = fit(net, task, _Noisy(41), None, epochs=2, batch_size=8, device="cuda", seed=1,
                     optimizer=adam(net.parameters(), 1e-4, 1e-4, capturable=True),
                     cuda_graph=True, channels_last=True, progress=False)
    finally:
        _GraphedStep.__call__ = real
    assert any(seen) and not [w for w in recwarn if "capture failed" in str(w.message)]
    assert all(np.isfinite(h["train_loss"]) for h in result.history)
