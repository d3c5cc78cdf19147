"""Where computations run, and how they are seeded.

One place decides the device and seeds every generator, so that every stage
behaves the same way:

* :func:`select_device`: the device a caller names (``"cpu"``, ``"cuda"``,
  ``"cuda:1"``), else the ``LEUKOLIB_DEVICE`` environment variable (the test
  suite sets it to ``"cpu"``, so that its bit-exact assertions never run
  under mixed precision on a GPU machine), else CUDA when a GPU is visible,
  else the CPU.
* On the CPU the same seed gives the same numbers, bit for bit.
* On CUDA training uses mixed precision (:func:`use_amp`); losses and saved
  logits are computed in float32 (:mod:`leukolib.training`). Two cuDNN modes
  (:func:`configure_cuda`): ``"fast"`` (the default: cuDNN picks the fastest
  kernels, TF32 matrix products) and ``"deterministic"`` (deterministic cuDNN
  kernels, no autotuning, no TF32): the same seed then gives the same numbers
  on the same GPU and software, at some cost in speed. Some operations have no
  deterministic CUDA kernel at all (PyTorch's reproducibility notes), so even
  that mode is "as deterministic as cuDNN allows", never the CPU's guarantee.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = [
    "CUDA_MODES",
    "configure_cuda",
    "derive_seed",
    "device_name",
    "fork_rng",
    "seed_everything",
    "select_device",
    "use_amp",
]

#: The cuDNN modes of :func:`configure_cuda`.
CUDA_MODES = ("fast", "deterministic")

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def device_name(value: str) -> str:
    """``value`` if it names a device leukolib accepts, else a ``ValueError``.

    Examples
    --------
    >>> device_name("cuda:1"), device_name("cpu")
    ('cuda:1', 'cpu')
    >>> device_name("gpu")
    Traceback (most recent call last):
    ...
    ValueError: unknown device 'gpu': use cpu, cuda, cuda:N or mps
    """
    name = str(value).strip().lower()
    if not _DEVICE.match(name):
        raise ValueError(f"unknown device {value!r}: use cpu, cuda, cuda:N or mps")
    return name


def select_device(prefer: str | None = None) -> str:
    """The device to run on: ``prefer``, else ``$LEUKOLIB_DEVICE``, else CUDA when present.

    Raises
    ------
    ValueError
        For an unknown name, or a CUDA device that is not there.

    Examples
    --------
    >>> select_device("cpu")
    'cpu'
    """
    chosen = prefer or os.environ.get("LEUKOLIB_DEVICE") or None
    import torch

    if not chosen:
        return "cuda" if torch.cuda.is_available() else "cpu"
    name = device_name(chosen)
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= count:
            raise ValueError(f"device {name!r} asked for, but this machine has "
                             f"{count} CUDA device{'s' if count != 1 else ''}")
    return name


def use_amp(device: str) -> bool:
    """Mixed precision (``torch.autocast``) on CUDA only: the CPU stays exact."""
    return str(device).startswith("cuda")


def configure_cuda(mode: str = "fast") -> dict[str, Any]:
    """Set PyTorch's cuDNN and TF32 switches for ``mode``; return them (for run records).

    Parameters
    ----------
    mode : {"fast", "deterministic"}
        ``"fast"``: ``cudnn.benchmark`` (the fastest kernel for each input
        shape, chosen once) and TF32 matrix products and convolutions;
        ``"deterministic"``: ``cudnn.deterministic``, no autotuning, no TF32.

    Returns
    -------
    dict
        The settings in force (``mode``, ``cudnn_benchmark``,
        ``cudnn_deterministic``, ``tf32``).

    Examples
    --------
    >>> configure_cuda("deterministic")["cudnn_benchmark"]
    False
    """
    if mode not in CUDA_MODES:
        raise ValueError(f"unknown CUDA mode {mode!r}; choose one of {', '.join(CUDA_MODES)}")
    import torch

    fast = mode == "fast"
    torch.backends.cudnn.benchmark = fast
    torch.backends.cudnn.deterministic = not fast
    torch.backends.cuda.matmul.allow_tf32 = fast
    torch.backends.cudnn.allow_tf32 = fast
    return {"mode": mode, "cudnn_benchmark": fast, "cudnn_deterministic": not fast,
            "tf32": fast}


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
