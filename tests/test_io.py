"""Image and mask reading: conversion rules and clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from leukolib.data.io import read_image, read_mask, to_rgb_uint8
from leukolib.errors import ImageReadError, LeukolibError, LossyMaskWarning, MaskError


@pytest.fixture
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_rgb_roundtrip(tmp_path, rgb, suffix):
    path = tmp_path / f"im{suffix}"
    Image.fromarray(rgb).save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (6, 5, 3)
    np.testing.assert_array_equal(out, rgb)


def test_jpeg_reads_close(tmp_path, rgb):
    path = tmp_path / "im.jpg"
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(path, quality=95)
    out = read_image(path)
    assert out.shape == (16, 16, 3) and abs(int(out.mean()) - 120) <= 2


def test_gray_is_replicated(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(g).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_rgba_is_composited_over_white(tmp_path):
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (200, 0, 0, 255)  # opaque red
    a[0, 1] = (0, 0, 0, 0)  # transparent -> white
    a[1, 0] = (0, 0, 0, 128)  # half black over white -> ~127
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [200, 0, 0]
    assert out[0, 1].tolist() == [255, 255, 255]
    assert out[1, 0].tolist() == [127, 127, 127]


def test_palette_is_expanded(tmp_path, rgb):
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    im.save(tmp_path / "p.png")
    expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.png"), expected)


def test_16bit_gray_png_and_rgb_tiff_are_scaled(tmp_path):
    g = np.array([[0, 257, 65535]], dtype=np.uint16)
    Image.fromarray(g).save(tmp_path / "g16.png")
    assert read_image(tmp_path / "g16.png")[0, :, 0].tolist() == [0, 1, 255]
    t = np.zeros((2, 2, 3), np.uint16)
    t[0, 0] = (65535, 32896, 0)
    tifffile.imwrite(tmp_path / "t16.tif", t)
    assert read_image(tmp_path / "t16.tif")[0, 0].tolist() == [255, 128, 0]


def test_float_arrays_are_taken_as_unit_range():
    assert to_rgb_uint8(np.array([[0.0, 0.5, 1.0]]))[0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ImageReadError, match="NaN"):
        to_rgb_uint8(np.array([[np.nan]]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is not an image at all", "not a readable image"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, LeukolibError)


def test_truncated_file_is_reported(tmp_path, rgb):
    full = tmp_path / "full.png"
    Image.fromarray(np.tile(rgb, (20, 20, 1))).save(full)
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="cut.png: cannot decode"):
        read_image(cut)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.png")


def test_mask_levels(tmp_path):
    m = np.array([[0, 128, 255], [255, 0, 128]], np.uint8)
    Image.fromarray(m).save(tmp_path / "m.png")
    out = read_mask(tmp_path / "m.png", {"nucleus": 255, "cytoplasm": 128}, shape=(2, 3))
    np.testing.assert_array_equal(out["nucleus"], m == 255)
    np.testing.assert_array_equal(out["cytoplasm"], m == 128)


def test_mask_unknown_level_and_wrong_size(tmp_path):
    m = np.array([[0, 77, 255]], np.uint8)
    Image.fromarray(m).save(tmp_path / "m.png")
    with pytest.raises(MaskError, match=r"m\.png: unknown mask level\(s\) 77 in 33\.3 %"):
        read_mask(tmp_path / "m.png", {"nucleus": 255})
    with pytest.raises(MaskError, match="mask is 3x1 .* image is 4x4"):
        read_mask(tmp_path / "m.png", {"nucleus": 255, "cytoplasm": 77}, shape=(4, 4))


def test_mask_nearest_level_for_lossy_rgb_masks(tmp_path):
    # An RGB mask with JPEG-like noise around 0 / 155 / 255.
    m = np.array([[3, 150, 250], [160, 1, 255]], np.uint8)
    rgb = np.repeat(m[..., None], 3, axis=-1)
    Image.fromarray(rgb).save(tmp_path / "m.png")
    out = read_mask(tmp_path / "m.png", {"nucleus": 255, "cytoplasm": 155}, lossy=True)
    assert out["nucleus"].tolist() == [[False, False, True], [False, False, True]]
    assert out["cytoplasm"].tolist() == [[False, True, False], [True, False, False]]
    assert out.repaired == 5  # every pixel but the exact 255


def test_a_few_stray_pixels_are_repaired_counted_and_reported(tmp_path):
    """A clean 0/128/255 mask with a handful of stray grey values (as public masks have)."""
    m = np.zeros((100, 100), np.uint8)
    m[20:80, 20:80] = 128
    m[35:65, 35:65] = 255
    m[0, :5] = [2, 13, 50, 7, 31]  # 5 stray pixels near 0: 0.05 % of the mask
    m[50, 50] = 240  # and one inside the nucleus
    Image.fromarray(m).save(tmp_path / "stray.png")
    with pytest.warns(LossyMaskWarning, match=r"stray\.png: 6 stray pixel\(s\)"):
        out = read_mask(tmp_path / "stray.png", {"nucleus": 255, "cytoplasm": 128})
    assert out.repaired == 6 and out["nucleus"].sum() == 900 and out["nucleus"][50, 50]
    assert not out["cytoplasm"][0, :5].any()
    # above 1 % of the pixels it is not a lossy save any more: the clear error stays
    m[1, :] = 60
    m[2, :] = 70
    Image.fromarray(m).save(tmp_path / "noisy.png")
    with pytest.raises(MaskError, match=r"noisy\.png: unknown mask level\(s\).*2\.1 %"):
        read_mask(tmp_path / "noisy.png", {"nucleus": 255, "cytoplasm": 128})


def test_mask_levels_must_be_distinct_and_8bit(tmp_path):
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match="distinct 8-bit"):
        read_mask(tmp_path / "m.png", {"nucleus": 0})  # the background's level
    with pytest.raises(ValueError, match="distinct 8-bit"):
        read_mask(tmp_path / "m.png", {"nucleus": 300})
    big = np.array([[0, 300]], np.uint16)
    Image.fromarray(big).save(tmp_path / "b.png")
    with pytest.raises(MaskError, match="outside 0-255"):
        read_mask(tmp_path / "b.png", {"nucleus": 255})
