"""The ``paper`` profile's code path without a GPU: ImageNet weights loaded, its rule followed.

The paper fine-tunes ImageNet weights; no test may download them. A fake
checkpoint (a ResNet-50 state dict of seeded random numbers) stands in for
torchvision's file, once in a temporary torch hub cache and once as a weights
file, and the paper's protocol runs end to end on tiny images (its folds,
epochs and sizes overridden).
"""

from __future__ import annotations

import pytest
import torch
import torchvision

from leukolib.classification import load_classifier_run, train_classifier
from leukolib.classification.models import imagenet_weights_file
from leukolib.data import load_dataset
from leukolib.profiles import get_profile

SMALL = {"folds": 2, "epochs": 1, "image_size": 32, "resize": 34, "device": "cpu",
         "progress": False}


@pytest.fixture(scope="module")
def tiny():
    # 30 small smears: the paper's 10 % test split is one of 10 stratified folds, so every
    # class needs 10 members
    return load_dataset("synthetic", n_images=30, size=96, seed=0)


@pytest.fixture(scope="module")
def fake_imagenet(tmp_path_factory):
    torch.manual_seed(1234)
    state = torchvision.models.resnet50(weights=None).state_dict()
    hub = tmp_path_factory.mktemp("hub")
    return hub, state


def _conv1(run_dir) -> torch.Tensor:
    run = load_classifier_run(run_dir, device="cpu")
    return run.model(0).conv1.weight.detach()


def _check_run(record, run_dir, state, source: str) -> None:
    c = get_profile("paper").classification
    cfg = record["config"]
    assert cfg["profile"] == "paper" and cfg["arch"] == "resnet50"
    assert cfg["weights"] == source
    assert cfg["lr_kind"] == "pretrained" and cfg["lr"] == c.lr  # the paper's 1e-5
    assert record["status"] == "complete"
    # the first layer holds the file's weights: one epoch at 1e-5 moves them by far less
    # than the distance to any random initialisation
    w, file_w = _conv1(run_dir), state["conv1.weight"]
    assert (w - file_w).abs().max() < 1e-3
    torch.manual_seed(0)
    other = torchvision.models.resnet50(weights=None).conv1.weight.detach()
    assert (other - file_w).abs().max() > 0.1


def test_paper_protocol_from_the_torch_hub_cache(tiny, fake_imagenet, monkeypatch, tmp_path):
    hub, state = fake_imagenet
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    target = imagenet_weights_file("resnet50")
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    record = train_classifier(tiny, tmp_path / "hub_run", input="raw", profile="paper", **SMALL)
    _check_run(record, tmp_path / "hub_run", state, "imagenet")


def test_paper_protocol_from_a_weights_file(tiny, fake_imagenet, tmp_path):
    _, state = fake_imagenet
    path = tmp_path / "my_resnet50.pth"
    torch.save(state, path)
    record = train_classifier(tiny, tmp_path / "file_run", input="raw", profile="paper",
                              weights=path, **SMALL)
    assert record["config"]["weights"].startswith("file:my_resnet50.pth:")
    _check_run(record, tmp_path / "file_run", state, record["config"]["weights"])


def test_paper_protocol_refuses_random_initialisation(tiny, tmp_path, monkeypatch):
    from leukolib.classification.models import WeightsError

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    with pytest.raises(WeightsError, match="requires ImageNet weights|not available"):
        train_classifier(tiny, tmp_path / "none", input="raw", profile="paper",
                         weights=None, **SMALL)
