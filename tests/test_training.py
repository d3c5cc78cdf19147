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


def _fit_small(epochs: int, ema_decay: float | None, checkpoint=None):
    from leukolib.classification.training import classification_task
    from leukolib.training import fit

    torch.manual_seed(0)
    x = torch.randn(40, 3, 8, 8)
    y = (x.mean((1, 2, 3)) > 0).long()
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 2))
    result = fit(net, classification_task(), torch.utils.data.TensorDataset(x, y), (x, y),
                 epochs=epochs, batch_size=8, optimizer=adam(net.parameters(), 1e-2, 0.0),
                 progress=False, checkpoint=checkpoint, ema_decay=ema_decay)
    return net, result


def test_moving_average_is_what_is_validated_and_kept(tmp_path):
    net, result = _fit_small(3, ema_decay=0.9)
    # the kept state has the network's own keys (BatchNorm statistics averaged too) ...
    assert set(result.best_state) == set(net.state_dict())
    # ... and is not the last step's weights, nor the plain run's selection
    assert max(h["val_acc"] for h in result.history) == result.best_score
    assert not torch.equal(result.best_state["5.weight"], net.state_dict()["5.weight"])
    _, plain = _fit_small(3, ema_decay=None)
    assert not torch.equal(result.best_state["0.weight"], plain.best_state["0.weight"])
    # an interrupted run resumes its average: the same weights as an uninterrupted one
    ck = tmp_path / "ck.pt"
    _fit_small(2, ema_decay=0.9, checkpoint=ck)
    _, resumed = _fit_small(3, ema_decay=0.9, checkpoint=ck)
    assert all(torch.equal(resumed.best_state[k], result.best_state[k])
               for k in result.best_state)
