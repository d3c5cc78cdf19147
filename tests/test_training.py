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
