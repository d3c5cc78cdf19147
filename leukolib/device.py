"""Where computations run, and how they are seeded.

One place decides the device (CUDA when present, else the CPU) and seeds
every generator, so that every stage behaves the same way: on the CPU the same
seed gives the same numbers; on a GPU some cuDNN kernels stay
nondeterministic (PyTorch's reproducibility notes), and training uses mixed
precision (:func:`use_amp`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["derive_seed", "fork_rng", "seed_everything", "select_device", "use_amp"]


def select_device(prefer: str | None = None) -> str:
    """``prefer`` when given, else ``"cuda"`` when a GPU is visible, else ``"cpu"``.

    Examples
    --------
    >>> select_device("cpu")
    'cpu'
    """
    if prefer:
        return str(prefer)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def use_amp(device: str) -> bool:
    """Mixed precision (``torch.autocast``) on CUDA only: the CPU stays exact."""
    return str(device).startswith("cuda")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy's legacy global generator and PyTorch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may still use the legacy global
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def derive_seed(*parts: int) -> int:
    """A 32-bit seed derived from integers, e.g. ``(seed, fold, epoch)``.

    Examples
    --------
    >>> derive_seed(0, 1, 2) == derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    True
    """
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@contextmanager
def fork_rng(device: str) -> Iterator[None]:
    """Run a block with its own PyTorch random state; the caller's is restored after.

    Training seeds PyTorch many times; inside this block it leaves the
    notebook's or caller's generators as they were.
    """
    import torch

    cuda = list(range(torch.cuda.device_count())) if use_amp(device) else []
    with torch.random.fork_rng(devices=cuda):
        yield
