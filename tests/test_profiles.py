from __future__ import annotations

import pytest

from leukolib import paper
from leukolib.profiles import PROFILES, get_profile


def test_three_profiles_with_growing_sizes():
    smoke, cpu, full = (get_profile(n) for n in ("smoke", "cpu", "paper"))
    assert set(PROFILES) == {"smoke", "cpu", "paper"}
    for field in ("seg_image_size", "seg_folds", "seg_epochs", "cls_image_size", "cls_epochs"):
        assert getattr(smoke, field) <= getattr(cpu, field) <= getattr(full, field), field


def test_paper_profile_follows_the_paper():
    p = get_profile("paper")
    proto = paper.TRAINING_PROTOCOL
    assert (p.seg_folds, p.seg_epochs, p.seg_batch_size) == (
        proto["folds"], proto["epochs"], proto["batch_size"]
    )
    assert (p.cls_folds, p.cls_epochs, p.cls_batch_size) == (
        proto["folds"], proto["epochs"], proto["batch_size"]
    )
    assert p.seg_image_size == p.cls_image_size == proto["image_size"]


def test_unet_sizes_divide_by_the_strides():
    for p in PROFILES.values():
        assert p.seg_image_size % 8 == 0, p.name


def test_unknown_profile_and_overrides():
    with pytest.raises(ValueError, match="choose one of smoke, cpu, paper"):
        get_profile("fast")
    p = get_profile("smoke").with_overrides(seg_epochs=3)
    assert p.seg_epochs == 3 and get_profile("smoke").seg_epochs == 1
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("smoke").with_overrides(epochs=3)
