"""The shared training machinery: Adam's fused step."""

from __future__ import annotations

import torch

from leukolib.training import adam


def _two_steps(make_opt) -> list[torch.Tensor]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.LazyLinear(3))
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    net(x)
    opt = make_opt(net.parameters())
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def test_fused_adam_on_the_cpu_is_adam_and_deterministic():
    opt = adam(torch.nn.Linear(2, 2).parameters(), lr=1e-3, weight_decay=1e-4)
    assert opt.defaults["fused"] is True
    fused = _two_steps(lambda p: adam(p, lr=1e-3, weight_decay=1e-4))
    again = _two_steps(lambda p: adam(p, lr=1e-3, weight_decay=1e-4))
    plain = _two_steps(lambda p: torch.optim.Adam(p, lr=1e-3, weight_decay=1e-4))
    assert all(torch.equal(a, b) for a, b in zip(fused, again, strict=True))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fused, plain, strict=True))


# --- batches, workers ---------------------------------------------------------------------

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from leukolib.training import Task, _EpochSeeded, _ShuffledBatches, fit  # noqa: E402


@pytest.mark.parametrize("n", [16, 17, 18, 23])
def test_shuffled_batches_are_the_data_loader_s_unless_one_image_is_left(n):
    """The CPU's results stay those of DataLoader(shuffle=True): only a lone last image moves."""
    # the loader draws its base seed from the generator first, then the permutation
    gen = torch.Generator().manual_seed(5)
    ours = list(DataLoader(TensorDataset(torch.arange(n)), generator=gen,
                           batch_sampler=_ShuffledBatches(n, 4, gen)))
    theirs = list(DataLoader(TensorDataset(torch.arange(n)), batch_size=4, shuffle=True,
                             generator=torch.Generator().manual_seed(5)))
    flat = lambda bs: [int(i) for b in bs for i in b[0]]  # noqa: E731
    assert flat(ours) == flat(theirs)  # the same order, every image once
    sizes = [len(b[0]) for b in ours]
    if n % 4 == 1:
        assert sizes == [4] * (n // 4 - 1) + [5]
    else:
        assert sizes == [len(b[0]) for b in theirs]
    assert len(_ShuffledBatches(n, 4, gen)) == len(sizes)


class _Noisy(torch.utils.data.Dataset):
    """Random 'augmentation': each item is a draw of the dataset's own generator."""

    def __init__(self, n: int = 9) -> None:
        self.n, self.rng = n, np.random.default_rng(0)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        x = torch.full((3, 4, 4), float(i)) + torch.from_numpy(self.rng.random((3, 4, 4))).float()
        return x, torch.tensor(i % 2)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


def _bn_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2))


def _fit(num_workers: int, n: int = 9, epochs: int = 2) -> tuple[dict, list]:
    net = _bn_net()
    task = Task(torch.nn.CrossEntropyLoss(), lambda o, y: (o.argmax(1) == y).float(), "acc")
    result = fit(net, task, _Noisy(n), None, epochs=epochs, batch_size=4,
                 optimizer=torch.optim.SGD(net.parameters(), lr=0.1), seed=3,
                 num_workers=num_workers, progress=False)
    return result.best_state, result.history


def test_a_last_batch_of_one_image_never_reaches_batch_norm():
    # 9 images in batches of 4: 4 + 5, not 4 + 4 + 1 (BatchNorm cannot train on one value)
    state, history = _fit(0, n=9)
    assert history[0]["train_images"] == 9


def test_workers_give_the_same_result_for_the_same_seed_and_their_own_streams():
    a, _ = _fit(2)
    b, _ = _fit(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # inside an epoch, each worker draws its own stream (none repeats another's)
    gen = torch.Generator().manual_seed(1)
    sampler = _ShuffledBatches(8, 2, gen)
    sampler.tag = 11
    loader = DataLoader(_EpochSeeded(_Noisy(8)), batch_sampler=sampler, num_workers=2)
    noise = [x - x.floor() for x, _ in loader]
    assert not torch.allclose(noise[0], noise[1])  # batches 0 and 1 come from workers 0 and 1
    gen.manual_seed(1)
    again = [x - x.floor() for x, _ in DataLoader(_EpochSeeded(_Noisy(8)),
                                                   batch_sampler=sampler, num_workers=2)]
    assert all(torch.equal(p, q) for p, q in zip(noise, again, strict=True))


def test_workers_need_a_dataset_that_reseeds():
    with pytest.raises(TypeError, match="reseed"):
        _EpochSeeded(TensorDataset(torch.zeros(2)))
