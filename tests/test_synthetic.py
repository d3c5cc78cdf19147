"""Tests of the synthetic blood smear generator (leukolib.data.synthetic)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from leukolib.data import synthetic
from leukolib.data.base import Dataset
from leukolib.data.sample import Sample
from leukolib.data.synthetic import (
    CLASS_NAMES,
    SmearConfig,
    SyntheticDataset,
    generate_smear,
    generate_smear_layers,
)

# --------------------------------------------------------------------------- helpers


def magenta_saturation(image: np.ndarray) -> np.ndarray:
    """CMYK magenta times HSV saturation, the nucleus feature of the handcrafted pipeline."""
    rgb = image.astype(np.float64) / 255.0
    top = rgb.max(axis=-1)
    black = 1.0 - top
    magenta = (1.0 - rgb[..., 1] - black) / np.maximum(1.0 - black, 1e-6)
    saturation = (top - rgb.min(axis=-1)) / np.maximum(top, 1e-6)
    return magenta * saturation


def largest_component(mask: np.ndarray) -> int:
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return int(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0


def component_areas(mask: np.ndarray) -> np.ndarray:
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return stats[1:, cv2.CC_STAT_AREA]


def best_threshold_accuracy(a: np.ndarray, b: np.ndarray) -> float:
    """Accuracy of the best 1-D threshold separating ``a`` (below) from ``b`` (above)."""
    values = np.concatenate([a, b])
    truth = np.concatenate([np.zeros(a.size, bool), np.ones(b.size, bool)])
    return max(float(np.mean((values > t) == truth)) for t in np.unique(values))


@pytest.fixture(scope="module")
def by_class() -> dict[int, list[synthetic.SmearLayers]]:
    """20 smears per class (default config), rendered once for the module."""
    return {
        label: [generate_smear_layers(label, 10_000 + 100 * label + i) for i in range(20)]
        for label in range(3)
    }


# --------------------------------------------------------------------------- samples


@pytest.mark.parametrize("label", [0, 1, 2])
def test_sample_shapes_and_dtypes(label: int) -> None:
    sample = generate_smear(label, seed=3, id="x")
    assert isinstance(sample, Sample)
    assert sample.image.shape == (256, 256, 3) and sample.image.dtype == np.uint8
    assert sample.nucleus.shape == (256, 256) and sample.nucleus.dtype == bool
    assert sample.cytoplasm.shape == (256, 256) and sample.cytoplasm.dtype == bool
    assert sample.label == label and sample.id == "x" and sample.path is None
    assert sample.shape == (256, 256)


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    a = generate_smear(1, seed=42)
    b = generate_smear(1, seed=42)
    c = generate_smear(1, seed=43)
    assert a.image.tobytes() == b.image.tobytes()
    assert np.array_equal(a.nucleus, b.nucleus) and np.array_equal(a.cytoplasm, b.cytoplasm)
    assert not np.array_equal(a.image, c.image)
    # a SeedSequence is as good as an int; a Generator is advanced
    ss = np.random.SeedSequence(7)
    assert np.array_equal(generate_smear(0, ss).image, generate_smear(0, ss).image)
    rng = np.random.default_rng(7)
    assert not np.array_equal(generate_smear(0, rng).image, generate_smear(0, rng).image)


def test_outputs_are_fresh_arrays() -> None:
    a = generate_smear(0, seed=1)
    b = generate_smear(0, seed=2)
    before = a.image.copy()
    generate_smear(2, seed=3)
    assert np.array_equal(a.image, before)
    assert not np.shares_memory(a.image, b.image)


def test_masks_are_exact_and_disjoint(by_class) -> None:
    for layers in (x for group in by_class.values() for x in group):
        s = layers.sample
        assert s.nucleus.any() and s.cytoplasm.any()
        assert not (s.nucleus & s.cytoplasm).any()
        # red cells are hidden under the white cell, platelets lie away from it
        cell = s.nucleus | s.cytoplasm
        assert not (layers.rbc & cell).any()
        assert not (layers.platelets & cell).any()
        assert layers.wbc_count in (1, 2)
        assert component_areas(s.nucleus).size == layers.wbc_count


def test_masks_do_not_depend_on_blur_or_noise() -> None:
    sharp = SmearConfig(blur_sigma=(0.0, 0.0), noise_sigma=0.0)
    blurred = SmearConfig(blur_sigma=(1.0, 1.0), noise_sigma=0.0)
    noisy = SmearConfig(blur_sigma=(1.0, 1.0), noise_sigma=8.0)
    a, b, c = (generate_smear(2, 5, config) for config in (sharp, blurred, noisy))
    for other in (b, c):
        assert np.array_equal(a.nucleus, other.nucleus)
        assert np.array_equal(a.cytoplasm, other.cytoplasm)
        assert not np.array_equal(a.image, other.image)
    # the blur is slight: the images stay close
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 3


def test_colours_follow_the_stain(by_class) -> None:
    """Nucleus purple and saturated; cytoplasm, red cells and background much less."""
    for group in by_class.values():
        for layers in group[:8]:
            s = layers.sample
            ms = magenta_saturation(s.image)
            background = ~(s.nucleus | s.cytoplasm | layers.rbc | layers.platelets)
            nucleus = ms[s.nucleus].mean()
            assert nucleus > 0.25
            assert nucleus > 3 * ms[background].mean()
            assert nucleus > 2 * ms[layers.rbc].mean()
            assert nucleus > 1.5 * ms[s.cytoplasm].mean()
            r, g, b = s.image[s.nucleus].astype(float).mean(axis=0)
            assert b > g and r > g  # purple / violet
            r, g, b = s.image[s.cytoplasm].astype(float).mean(axis=0)
            assert b > r  # bluish cytoplasm
            r, g, b = s.image[layers.rbc].astype(float).mean(axis=0)
            assert r > g and r > b  # pink red cells
            assert s.image[background].mean() > 180  # pale background
    # L3 cytoplasm is deeply basophilic: bluer and darker than L1's
    l1 = np.mean([x.sample.image[x.sample.cytoplasm].mean() for x in by_class[0]])
    l3 = np.mean([x.sample.image[x.sample.cytoplasm].mean() for x in by_class[2]])
    assert l3 < l1 - 20


def test_nucleus_area_separates_the_classes(by_class) -> None:
    areas = {
        label: np.array([largest_component(x.sample.nucleus) for x in group])
        for label, group in by_class.items()
    }
    means = [areas[label].mean() for label in range(3)]
    assert means[0] < means[1] < means[2]
    assert best_threshold_accuracy(areas[0], areas[2]) >= 0.95
    # L2 varies most (relative spread)
    spread = [areas[label].std() / areas[label].mean() for label in range(3)]
    assert spread[1] == max(spread)


def test_handcrafted_segmentation_finds_the_nucleus(by_class) -> None:
    """The colours are realistic enough for the paper's M * S + Otsu pipeline."""
    handcrafted = pytest.importorskip("leukolib.segmentation.handcrafted")
    params = handcrafted.HandcraftedParams(dilation_position="none")
    for group in by_class.values():
        ious = []
        for layers in group[:10]:
            truth = layers.sample.nucleus
            found = handcrafted.segment_nucleus(layers.sample.image, params)
            ious.append((found & truth).sum() / max((found | truth).sum(), 1))
        assert np.mean(ious) > 0.85 and min(ious) > 0.5


def test_platelets_are_small(by_class) -> None:
    for layers in (x for group in by_class.values() for x in group):
        areas = component_areas(layers.platelets)
        assert areas.size == 0 or areas.max() < 150
        # purple blobs found by colour outside the white cells are small too
        s = layers.sample
        image = s.image.astype(int)
        purple = (magenta_saturation(s.image) > 0.15) & (image[..., 2] > image[..., 0])
        cell = (s.nucleus | s.cytoplasm).astype(np.uint8)
        near_cell = cv2.dilate(cell, np.ones((5, 5), np.uint8)).astype(bool)
        outside = component_areas(purple & ~near_cell)
        assert outside.size == 0 or outside.max() < 150


def test_platelets_scale_with_the_image() -> None:
    layers = generate_smear_layers(0, 3, SmearConfig(size=512, platelet_count=(5, 5)))
    areas = component_areas(layers.platelets)
    assert areas.size >= 3 and areas.max() < 4 * 150 and areas.mean() > 40


def shortcut_cues(shortcut: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, red-cell area fraction and background tint of 45 smears (15 per class)."""
    config = SmearConfig(shortcut=shortcut, two_wbc_probability=0.0)
    labels, fraction, tint = [], [], []
    for i in range(45):
        layers = generate_smear_layers(i % 3, 500 + i, config)
        s = layers.sample
        background = ~(s.nucleus | s.cytoplasm | layers.rbc | layers.platelets)
        rgb = s.image[background].astype(float).mean(axis=0)
        labels.append(i % 3)
        fraction.append(layers.rbc.mean())
        tint.append((rgb[2] - rgb[1]) / rgb.mean())  # pink > 0 > yellow
    return np.array(labels), np.array(fraction), np.array(tint)


def test_shortcut_makes_the_background_predictive() -> None:
    labels, fraction, tint = shortcut_cues(0.0)
    assert abs(np.corrcoef(labels, fraction)[0, 1]) < 0.35
    assert abs(np.corrcoef(labels, tint)[0, 1]) < 0.35
    assert best_threshold_accuracy(fraction[labels == 0], fraction[labels == 2]) < 0.85

    labels, fraction, tint = shortcut_cues(1.0)
    assert np.corrcoef(labels, fraction)[0, 1] > 0.9
    assert np.corrcoef(labels, tint)[0, 1] > 0.8
    assert best_threshold_accuracy(fraction[labels == 0], fraction[labels == 2]) == 1.0
    # fully determined: one red-cell count per class
    for label, count in ((0, 10), (1, 25), (2, 40)):
        layers = generate_smear_layers(label, 99, SmearConfig(shortcut=1.0))
        assert layers.nuisance == label / 2 and layers.rbc_count == count


def test_reversed_shortcut_reverses_the_cue() -> None:
    labels, fraction, tint = shortcut_cues(-1.0)
    assert np.corrcoef(labels, fraction)[0, 1] < -0.9
    assert np.corrcoef(labels, tint)[0, 1] < -0.8
    assert best_threshold_accuracy(fraction[labels == 2], fraction[labels == 0]) == 1.0
    # a partial shortcut: the nuisance value correlates with the label, with the sign
    # of the shortcut; for the same draw, u(-s) of class c is u(s) of class 2 - c
    labels = np.arange(60) % 3
    for shortcut in (0.7, -0.7):
        config = SmearConfig(shortcut=shortcut, size=64)
        u = [generate_smear_layers(c, 700 + i, config).nuisance for i, c in enumerate(labels)]
        assert np.sign(shortcut) * np.corrcoef(labels, u)[0, 1] > 0.7
    for label in range(3):
        a = generate_smear_layers(label, 5, SmearConfig(shortcut=0.6, size=64)).nuisance
        b = generate_smear_layers(2 - label, 5, SmearConfig(shortcut=-0.6, size=64)).nuisance
        assert a == pytest.approx(b)


def test_full_reversed_shortcut_gives_l1_the_most_red_cells() -> None:
    config = SmearConfig(shortcut=-1.0)
    for label, nuisance in ((0, 1.0), (1, 0.5), (2, 0.0)):
        assert generate_smear_layers(label, 99, config).nuisance == nuisance
    counts = [generate_smear_layers(label, 123, config).rbc_count for label in range(3)]
    assert counts[0] > counts[1] > counts[2] == 10
    assert counts[0] >= 30  # 40 asked for; a few may find no room next to the white cell


def test_two_white_cells_do_not_overlap() -> None:
    config = SmearConfig(two_wbc_probability=1.0)
    for i in range(6):
        layers = generate_smear_layers(2, i, config)
        assert layers.wbc_count == 2
        cells = (layers.sample.nucleus | layers.sample.cytoplasm).astype(np.uint8)
        assert component_areas(cells).size == 2
        assert component_areas(layers.sample.nucleus).size == 2


def test_non_square_and_other_sizes() -> None:
    sample = generate_smear(1, 0, SmearConfig(size=(160, 288)))
    assert sample.image.shape == (160, 288, 3) and sample.nucleus.shape == (160, 288)
    assert sample.nucleus.any() and sample.cytoplasm.any()
    for size in (64, 100, 600):
        s = generate_smear(2, 1, SmearConfig(size=size))
        assert s.image.shape == (size, size, 3) and s.nucleus.any() and s.cytoplasm.any()
    data = SyntheticDataset(n_images=3, size=(96, 128), seed=1)
    assert data[0].image.shape == (96, 128, 3)


# --------------------------------------------------------------------------- dataset


def test_dataset_interface_and_balanced_labels() -> None:
    data = SyntheticDataset(n_images=31, size=64, seed=11)
    assert isinstance(data, Dataset) and len(data) == 31
    assert data.name == "synthetic" and data.class_names == CLASS_NAMES == ("L1", "L2", "L3")
    assert data.has_masks
    assert data.ids[0] == "syn_00000" and data.ids[-1] == "syn_00030"
    counts = np.bincount(data.labels, minlength=3)
    assert counts.sum() == 31 and counts.max() - counts.min() <= 1
    assert np.array_equal(data.labels, SyntheticDataset(31, size=64, seed=11).labels)
    assert not np.array_equal(data.labels, SyntheticDataset(31, size=64, seed=12).labels)
    sample = data[-1]
    assert sample.id == "syn_00030" and sample.label == data.labels[30]
    with pytest.raises(IndexError):
        data[31]


def test_labels_and_ids_render_nothing(monkeypatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("rendered an image")

    monkeypatch.setattr(synthetic, "generate_smear", boom)
    data = SyntheticDataset(n_images=1000, seed=0)
    assert data.labels.shape == (1000,) and len(data.ids) == 1000


def test_dataset_access_order_and_threads_do_not_matter() -> None:
    data = SyntheticDataset(n_images=12, size=96, seed=4)
    forward = [data[i].image for i in range(12)]
    backward = [data[i].image for i in reversed(range(12))][::-1]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda i: data[i].image, [5, 0, 11, 3, 7, 1, 9, 2, 10, 4, 8, 6]))
    threaded_by_index = dict(zip([5, 0, 11, 3, 7, 1, 9, 2, 10, 4, 8, 6], threaded, strict=True))
    for i in range(12):
        assert np.array_equal(forward[i], backward[i])
        assert np.array_equal(forward[i], threaded_by_index[i])
    # a fresh dataset with the same seed gives the same images
    again = SyntheticDataset(n_images=12, size=96, seed=4)
    assert np.array_equal(again[7].image, forward[7])
    # sample i uses the i-th spawned SeedSequence
    ss = np.random.SeedSequence(4).spawn(12)[7]
    expected = generate_smear(int(data.labels[7]), ss, data.config, "syn_00007")
    assert np.array_equal(expected.image, forward[7])


def test_dataset_config_and_shorthands() -> None:
    config = SmearConfig(size=80, shortcut=0.7)
    data = SyntheticDataset(n_images=3, config=config)
    assert data.config is config and data[0].image.shape == (80, 80, 3)
    assert SyntheticDataset(3, size=80, shortcut=0.7).config == config
    with pytest.raises(ValueError, match="size"):
        SyntheticDataset(3, size=96, config=config)
    # lists are accepted and stored as tuples: configs compare and hash by value
    listed = SmearConfig(size=[96, 128], rbc_count=[5, 20])
    assert listed == SmearConfig(size=(96, 128), rbc_count=(5, 20))
    assert hash(listed) == hash(SmearConfig(size=(96, 128), rbc_count=(5, 20)))
    assert listed.shape == (96, 128) and SmearConfig(size=np.int64(80)).size == 80
    with pytest.raises(ValueError, match="shortcut"):
        SyntheticDataset(3, shortcut=0.2, config=config)
    # a negative shortcut reverses the cue (see test_reversed_shortcut_reverses_the_cue)
    reversed_ = SyntheticDataset(3, size=64, shortcut=-0.5)
    assert reversed_.config.shortcut == -0.5 and "shortcut=-0.5" in repr(reversed_)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: generate_smear(3, 0), "label must be 0, 1 or 2"),
        (lambda: generate_smear(-1, 0), "label must be 0, 1 or 2"),
        (lambda: generate_smear(1.0, 0), "label must be an int"),
        (lambda: generate_smear(True, 0), "label must be an int"),
        (lambda: generate_smear(0, -5), "seed must be"),
        (lambda: generate_smear(0, "a"), "seed must be"),
        (lambda: SmearConfig(size=32), "at least 64"),
        (lambda: SmearConfig(size=(256, 40)), "at least 64"),
        (lambda: SmearConfig(size=(256,)), "size must be"),
        (lambda: SmearConfig(size=256.0), "size must be"),
        (lambda: SmearConfig(shortcut=-1.1), r"shortcut must be in \[-1, 1\]"),
        (lambda: SmearConfig(shortcut=1.5), r"shortcut must be in \[-1, 1\]"),
        (lambda: SmearConfig(shortcut="0.5"), "shortcut must be a number"),
        (lambda: SmearConfig(shortcut=float("nan")), "shortcut must be in"),
        (lambda: SmearConfig(two_wbc_probability=2.0), "two_wbc_probability"),
        (lambda: SmearConfig(rbc_count=(40, 10)), "rbc_count"),
        (lambda: SmearConfig(rbc_count=(-1, 10)), "rbc_count"),
        (lambda: SmearConfig(blur_sigma=(0.5, 2.0)), "blur_sigma"),
        (lambda: SmearConfig(noise_sigma=-1.0), "noise_sigma"),
        (lambda: SyntheticDataset(n_images=0), "n_images"),
        (lambda: SyntheticDataset(n_images=3, seed=-1), "seed"),
        (lambda: SyntheticDataset(n_images=3, size=16), "at least 64"),
        (lambda: SyntheticDataset(n_images=3, shortcut=3.0), "shortcut"),
    ],
)
def test_bad_arguments_raise_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_empty_ranges_are_allowed() -> None:
    config = SmearConfig(rbc_count=(0, 0), platelet_count=(0, 0), noise_sigma=0.0)
    layers = generate_smear_layers(0, 1, config)
    assert layers.rbc_count == 0 and not layers.rbc.any() and not layers.platelets.any()
    assert layers.sample.nucleus.any()
