"""The handcrafted segmentation (Algorithm 1), its registry entry and the evaluation path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

from leukolib.data import Sample, load_dataset
from leukolib.data.base import Dataset
from leukolib.errors import DatasetError
from leukolib.metrics import SEGMENTATION_METRICS
from leukolib.paper import HANDCRAFTED_PARAMS
from leukolib.segmentation import (
    SEGMENTERS,
    MethodError,
    evaluate_segmentation,
    get_method,
    handcrafted_methods,
    register_method,
)
from leukolib.segmentation import handcrafted as hc
from leukolib.segmentation.handcrafted import HandcraftedParams, handcrafted_stages, segment_nucleus

# ----------------------------------------------------------------------------- steps


def test_color_constancy_arithmetic_2x2():
    img = np.array(
        [[[100, 50, 20], [100, 50, 20]], [[200, 100, 40], [200, 100, 40]]], dtype=np.uint8
    )
    # channel means 150, 75, 30; gray = 85; gains 85/150, 85/75, 85/30
    out = hc.color_constancy(img)
    assert out.dtype == np.float32 and out.shape == img.shape
    expected = img.astype(np.float64) * np.array([85 / 150, 85 / 75, 85 / 30])
    np.testing.assert_allclose(out, np.minimum(expected, 255), rtol=1e-5)
    means = out.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(means, [85, 85, 85], rtol=1e-5)  # nothing clipped here


def test_color_constancy_clips_and_keeps_empty_channel():
    img = np.zeros((1, 2, 3), np.uint8)
    img[0, 0] = (250, 10, 0)
    img[0, 1] = (10, 10, 0)  # means 130, 10, 0 -> gray 46.67: gain 4.67 for G
    out = hc.color_constancy(img)
    assert out.max() <= 255.0 and out.min() >= 0.0
    assert np.all(out[..., 2] == 0)  # a zero-mean channel stays 0, no division by zero
    assert out[0, 0, 1] == pytest.approx(10 * (140 / 3) / 10, rel=1e-5)


def test_cmyk_magenta_known_colours():
    colours = {
        (255, 0, 255): 1.0,  # magenta
        (255, 0, 0): 1.0,  # red: M = Y = 1
        (0, 0, 255): 1.0,  # blue: C = M = 1
        (0, 255, 0): 0.0,  # green
        (255, 255, 255): 0.0,  # white
        (0, 0, 0): 0.0,  # black: K = 1, M defined 0
        (128, 128, 128): 0.0,  # gray
        (200, 100, 50): 0.5,  # (max - g) / max
    }
    rgb = np.array([list(colours)], np.uint8)
    np.testing.assert_allclose(hc.cmyk_magenta(rgb)[0], list(colours.values()), atol=1e-6)


def test_cmyk_magenta_matches_the_cmyk_formula():
    rgb = np.random.default_rng(1).integers(1, 256, (16, 16, 3)).astype(np.float64)
    f = rgb / 255
    k = 1 - f.max(axis=-1)
    m = (1 - f[..., 1] - k) / (1 - k)
    np.testing.assert_allclose(hc.cmyk_magenta(rgb.astype(np.float32)), m, atol=1e-5)


def test_hsv_saturation_known_colours_and_opencv():
    rgb = np.array([[[255, 0, 255], [128, 128, 128], [0, 0, 0], [200, 100, 50]]], np.uint8)
    np.testing.assert_allclose(hc.hsv_saturation(rgb)[0], [1, 0, 0, 0.75], atol=1e-6)
    rand = np.random.default_rng(2).random((20, 20, 3)).astype(np.float32)
    s_cv = cv2.cvtColor(rand, cv2.COLOR_RGB2HSV)[..., 1]  # float input: S in [0, 1]
    np.testing.assert_allclose(hc.hsv_saturation(rand * 255), s_cv, atol=1e-5)


def test_hadamard_product():
    m = np.array([[1.0, 0.5], [0.0, 0.2]])
    s = np.array([[0.5, 0.5], [1.0, 0.5]])
    out = hc.hadamard_product(m, s)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.5, 0.25], [0.0, 0.1]], rtol=1e-6)


def test_bilateral_keeps_edges_and_smooths_noise():
    rng = np.random.default_rng(3)
    step = np.zeros((40, 40), np.float32)
    step[:, 20:] = 0.8
    noisy = np.clip(step + rng.normal(0, 0.03, step.shape), 0, 1).astype(np.float32)
    out = hc.bilateral(noisy)
    assert out.dtype == np.uint8
    assert out[:, 22:].std() < (noisy[:, 22:] * 255).std()  # smoothed inside
    assert out[:, :18].max() < 40 and out[:, 22:].min() > 160  # the edge stays sharp


def test_otsu_on_bimodal_toy():
    rng = np.random.default_rng(4)
    low = np.arange(400).reshape(20, 20) < 150
    toy = np.clip(np.where(low, 40.0, 190.0) + rng.normal(0, 8, low.shape), 0, 255)
    mask, t = hc.otsu_threshold(toy)
    assert np.rint(toy[low]).max() <= t < np.rint(toy[~low]).min()  # in the gap
    np.testing.assert_array_equal(mask, ~low)
    from skimage.filters import threshold_otsu

    u8 = np.rint(toy).astype(np.uint8)
    assert abs(t - threshold_otsu(u8)) <= 1.0


def test_otsu_constant_gives_empty():
    mask, t = hc.otsu_threshold(np.full((5, 5), 77.0))
    assert not mask.any() and t == 77


def test_closing_fills_one_pixel_gap_and_not_the_border():
    m = np.zeros((9, 9), bool)
    m[2:7, 0:4] = True  # touches the left border
    m[2:7, 5:8] = True  # column 4 is a 1-px gap
    closed = hc.closing(m, 3)
    assert closed[2:7, 4].all()
    assert not closed[:, 8].any() and not closed[0].any() and not closed[8].any()
    assert closed[2:7, 0].all()  # an object on the border is not eaten
    assert (closed | ~m).all()  # a closing never removes pixels


def test_fill_holes_and_scipy_agree():
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[2:5, 2:5] = False
    filled = hc.fill_holes(ring)
    assert filled[1:6, 1:6].all() and filled.sum() == 25
    open_ring = ring.copy()
    open_ring[0:3, 3] = False  # a channel to the border: not a hole
    assert not hc.fill_holes(open_ring)[3, 3]
    rng = np.random.default_rng(5)
    for _ in range(5):
        m = rng.random((30, 30)) < 0.55
        np.testing.assert_array_equal(hc.fill_holes(m), ndi.binary_fill_holes(m))


def _blob(n: int, shape=(256, 256), at=(10, 10)) -> np.ndarray:
    """A connected object of exactly n pixels (rows of 10)."""
    m = np.zeros(shape, bool)
    flat = np.zeros(100 * 10, bool)
    flat[:n] = True
    y, x = at
    m[y : y + 100, x : x + 10] = flat.reshape(100, 10)
    return m


def test_area_filter_149_removed_151_kept_at_reference_size():
    shape = (256, 256)
    assert HandcraftedParams().reference_area == shape[0] * shape[1]
    min_px = hc.min_area_pixels(shape, 150, HandcraftedParams().reference_area)
    assert min_px == 150
    m = _blob(149, shape, (10, 10)) | _blob(151, shape, (10, 100))
    out = hc.area_filter(m, min_px)
    assert out.sum() == 151 and out[10, 100] and not out[10, 10]
    assert hc.area_filter(_blob(150, shape), min_px).sum() == 150  # "under 150" goes


def test_area_filter_scales_with_image_area():
    assert hc.min_area_pixels((120, 120)) == 33
    assert hc.min_area_pixels((512, 512)) == 600
    assert hc.min_area_pixels((120, 120), reference_area=None) == 150
    assert hc.dilation_radius((120, 120)) == 1
    assert hc.dilation_radius((257, 257)) == 2
    assert hc.dilation_radius((480, 640)) == 4


def test_area_filter_matches_skimage():
    from skimage.morphology import remove_small_objects

    rng = np.random.default_rng(6)
    for _ in range(4):
        m = ndi.binary_opening(rng.random((60, 60)) < 0.45)
        for conn, sk_conn in ((8, 2), (4, 1)):
            try:  # scikit-image >= 0.26 names the largest size removed
                expected = remove_small_objects(m, max_size=9, connectivity=sk_conn)
            except TypeError:
                expected = remove_small_objects(m, min_size=10, connectivity=sk_conn)
            np.testing.assert_array_equal(hc.area_filter(m, 10, conn), expected)


def test_dilate_disk():
    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    assert hc.dilate(m, 2).sum() == 13
    assert hc.dilate(m, 0).sum() == 1


# ----------------------------------------------------------------------------- pipeline


def _toy_cell(size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Pink background, a pale blue cytoplasm and a violet nucleus."""
    yy, xx = np.mgrid[:size, :size]
    c = size / 2
    r2 = (yy - c) ** 2 + (xx - c) ** 2
    img = np.empty((size, size, 3), np.uint8)
    img[:] = (232, 205, 210)
    img[r2 < (0.35 * size) ** 2] = (190, 190, 225)
    nucleus = r2 < (0.2 * size) ** 2
    img[nucleus] = (105, 45, 150)
    return img, nucleus


def test_params_defaults_come_from_the_paper():
    p = HandcraftedParams()
    for key in (
        "bilateral_diameter",
        "bilateral_sigma_color",
        "bilateral_sigma_space",
        "closing_kernel",
        "min_area",
        "dilation",
    ):
        assert getattr(p, key) == HANDCRAFTED_PARAMS[key]
    assert p.dilation_position in hc.DILATION_POSITIONS
    assert p.to_dict()["min_area"] == 150
    with pytest.raises(ValueError, match="dilation_position"):
        HandcraftedParams(dilation_position="somewhere")
    with pytest.raises(ValueError, match="connectivity"):
        HandcraftedParams(connectivity=6)
    with pytest.raises(ValueError):
        HandcraftedParams(closing_kernel=0)
    with pytest.raises(AttributeError):
        p.min_area = 3  # frozen


def test_stages_keys_order_and_consistency():
    img, _ = _toy_cell()
    st = handcrafted_stages(img)
    assert list(st) == [
        "rgb",
        "corrected",
        "magenta",
        "saturation",
        "product",
        "filtered",
        "threshold",
        "otsu",
        "closed",
        "filled",
        "area_filtered",
        "dilated",
        "final",
        "masked_rgb",
    ]
    np.testing.assert_allclose(st["magenta"], hc.cmyk_magenta(st["corrected"]), atol=1e-6)
    np.testing.assert_allclose(st["saturation"], hc.hsv_saturation(st["corrected"]), atol=1e-6)
    np.testing.assert_array_equal(st["final"], segment_nucleus(img))
    assert isinstance(st["threshold"], float)
    for key in ("otsu", "closed", "filled", "area_filtered", "dilated", "final"):
        assert st[key].dtype == bool and st[key].shape == img.shape[:2]
    assert (st["masked_rgb"][~st["final"]] == 0).all()
    none = handcrafted_stages(img, HandcraftedParams(dilation_position="none"))
    assert "dilated" not in none
    early = list(handcrafted_stages(img, HandcraftedParams(dilation_position="after_otsu")))
    assert early.index("dilated") == early.index("otsu") + 1


def test_toy_cell_is_segmented_and_deterministic():
    img, nucleus = _toy_cell()
    a = segment_nucleus(img)
    b = segment_nucleus(img.copy())
    np.testing.assert_array_equal(a, b)
    assert a.dtype == bool and a.shape == nucleus.shape
    iou = (a & nucleus).sum() / (a | nucleus).sum()
    assert iou > 0.9


@pytest.mark.parametrize("colour", [(128, 128, 128), (0, 0, 0), (255, 255, 255), (200, 30, 160)])
def test_constant_image_gives_empty_mask(colour):
    img = np.full((40, 50, 3), colour, np.uint8)
    mask = segment_nucleus(img)
    assert mask.shape == (40, 50) and not mask.any()
    assert handcrafted_stages(img)["final"].sum() == 0


def test_degenerate_inputs_do_not_crash():
    assert segment_nucleus(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1)
    gray = np.random.default_rng(7).integers(0, 255, (30, 30), dtype=np.uint8)
    assert segment_nucleus(gray).shape == (30, 30)  # gray is replicated to RGB
    red = np.zeros((20, 20, 3), np.uint8)
    red[5:15, 5:15, 0] = 200  # only one non-zero channel
    assert segment_nucleus(red).shape == (20, 20)


def test_synthetic_smears_reasonable_iou():
    ds = load_dataset("synthetic", n_images=6, size=256, seed=0)
    ev = evaluate_segmentation(ds, handcrafted_methods(), progress=False)
    assert ev.n_images == 6 and not ev.failures
    assert ev.summary().loc[("synthetic", "none", "HM"), "iou"] > 0.7


# ----------------------------------------------------------------------------- registry


def test_registry_handcrafted_and_errors():
    assert "handcrafted" in SEGMENTERS
    img, nucleus = _toy_cell()
    seg = get_method("HandCrafted")
    sample = Sample(img, nucleus, None, None, "toy")
    np.testing.assert_array_equal(seg(sample), segment_nucleus(img))
    np.testing.assert_array_equal(seg(img), segment_nucleus(img))  # a bare image works too
    custom = get_method("handcrafted", dilation_position="none")
    assert custom.params.dilation_position == "none"
    with pytest.raises(MethodError, match="unknown segmentation method"):
        get_method("nope")
    with pytest.raises(MethodError, match="no model"):
        get_method("handcrafted", model="weights.pt")
    with pytest.raises(MethodError):
        get_method("handcrafted", not_a_param=1)


def test_registry_method_needing_a_model():
    register_method(
        "_needs_model",
        lambda model, **o: lambda s: s.image[..., 0] > 0,
        "test only",
        needs_model=True,
    )
    try:
        with pytest.raises(MethodError, match="needs a trained model"):
            get_method("_needs_model")
        assert get_method("_needs_model", model="m")(
            Sample(np.ones((2, 2, 3)), None, None, None, "x")
        ).all()
    finally:
        SEGMENTERS.pop("_needs_model")


# ----------------------------------------------------------------------------- evaluate


class _Flaky(Dataset):
    """Four toy cells; sample 1 cannot be loaded."""

    name = "flaky"

    def __len__(self) -> int:
        return 4

    @property
    def ids(self) -> list[str]:
        return [f"s{i}" for i in range(4)]

    def _load(self, index: int) -> Sample:
        if index == 1:
            raise OSError("disk on fire")
        img, nucleus = _toy_cell(64 + 16 * index)
        return Sample(img, nucleus, None, None, f"s{index}")


def test_evaluate_goes_on_past_failures():
    def predict(sample):
        if sample.id == "s2":
            raise RuntimeError("boom")
        return segment_nucleus(sample.image)

    ev = evaluate_segmentation(_Flaky(), predict, progress=False)
    assert ev.per_image["id"].tolist() == ["s0", "s3"]
    assert [f[1] for f in ev.failures] == ["s1", "s2"]
    assert "disk on fire" in ev.failures[0][2] and "boom" in ev.failures[1][2]
    info = ev.info["flaky"]
    assert info["images_per_s"] >= info["images_per_s_with_io"] > 0
    assert set(SEGMENTATION_METRICS) <= set(ev.per_image.columns)
    assert ev.per_image["mask_repaired"].tolist() == [0, 0]


def test_every_method_goes_on_past_a_bad_image():
    """Rules computed from shared parts (HM, DEEP) skip a failing image too."""

    class Deep:
        mode = "fold-average"

        def proba(self, sample):
            if sample.id == "s3":
                raise RuntimeError("network down")
            return sample.nucleus.astype(np.float32)

    from leukolib.segmentation.evaluate import standard_methods

    ev = evaluate_segmentation(_Flaky(), standard_methods(Deep()), progress=False)
    assert sorted(ev.per_image["id"].unique()) == ["s0", "s2"]
    assert [f[1] for f in ev.failures] == ["s1", "s3"] and "network down" in ev.failures[1][2]
    assert set(ev.methods) == {"HM", "DEEP", "ENSEMBLE"}


def test_evaluate_limit_and_wrong_shape_and_no_masks():
    ev = evaluate_segmentation(_Flaky(), lambda s: segment_nucleus(s.image), limit=1,
                               progress=False)
    assert ev.n_images == 1
    bad = evaluate_segmentation(_Flaky(), lambda s: np.zeros((3, 3), bool), progress=False)
    assert bad.n_images == 0 and len(bad.failures) == 4
    no_masks = _Flaky()
    no_masks.has_masks = False
    with pytest.raises(DatasetError, match="no nucleus masks"):
        evaluate_segmentation(no_masks, lambda s: s.nucleus, progress=False)


def test_the_step_by_step_figure_shows_the_colour_corrected_image_not_a_white_panel():
    """Colour constancy returns grey levels (0-255) as floats; the figure must not clip them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from leukolib.data import load_dataset
    from leukolib.plotting import show_stages
    from leukolib.segmentation.handcrafted import HandcraftedParams, handcrafted_stages

    stages = handcrafted_stages(load_dataset("synthetic", n_images=1)[0].image, HandcraftedParams())
    assert stages["corrected"].dtype.kind == "f" and stages["corrected"].max() > 1
    fig = show_stages([stages], ["rgb", "corrected"])
    shown = np.asarray(fig.axes[1].get_images()[0].get_array())
    plt.close(fig)
    assert shown.dtype == np.uint8 and 0 < shown.mean() < 250  # a picture, not white
