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
