"""The ``leukolib`` command line, mostly in-process (fast), once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from leukolib.cli import main
from leukolib.data import load_dataset
from leukolib.metrics import SEGMENTATION_METRICS
from leukolib.plotting import CYAN
from leukolib.segmentation import segment_nucleus

REQUIRED_JSON_KEYS = {
    "dataset",
    "method",
    "n_images",
    *SEGMENTATION_METRICS,
    "images_per_s",
    "per_image",
}


@pytest.fixture(scope="module")
def smears():
    ds = load_dataset("synthetic", n_images=3, size=96, seed=1)
    return [ds[i] for i in range(3)]


@pytest.fixture
def inputs(tmp_path, smears):
    """3 good images (PNG, BMP, TIFF), a corrupt x.png and an empty file."""
    folder = tmp_path / "in"
    folder.mkdir()
    for s, name in zip(smears, ("a.png", "b.bmp", "c.tif"), strict=True):
        Image.fromarray(s.image).save(folder / name)
    (folder / "x.png").write_bytes(np.random.default_rng(0).bytes(300))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image: ignored in a folder")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_segment_folder_continues_past_bad_files(inputs, tmp_path, smears, capsys):
    out = tmp_path / "out"
    before = _snapshot(inputs)
    assert main(["segment", str(inputs), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "2 input(s) failed" in err
    assert "x.png" in err and "not a readable image" in err
    assert "empty.jpg" in err and "empty" in err.split("empty.jpg", 1)[1].splitlines()[0]
    expected = sorted(f"{s}_{k}.png" for s in "abc" for k in ("mask", "overlay"))
    assert sorted(p.name for p in out.iterdir()) == expected  # nothing for x / empty
    assert _snapshot(inputs) == before  # the input folder is untouched

    mask = np.asarray(Image.open(out / "a_mask.png"))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask > 0, segment_nucleus(smears[0].image))
    overlay = np.asarray(Image.open(out / "a_overlay.png").convert("RGB"))
    assert overlay.shape == smears[0].image.shape
    contour = (overlay == CYAN).all(axis=-1)
    assert contour.any()  # cyan in RGB: the RGB -> BGR swap before cv2.imwrite was done
    assert not (overlay == (255, 255, 0)).all(axis=-1).any()  # no swapped (yellow) contour


def test_segment_refuses_to_overwrite(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    main(["segment", str(inputs / "a.png"), "--out", str(out), "-q"])
    (out / "a_mask.png").write_bytes(b"sentinel")
    capsys.readouterr()
    assert main(["segment", str(inputs), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "a_mask.png" in err and "a_overlay.png" in err
    # nothing written: not even the outputs of b and c, which did not exist
    assert (out / "a_mask.png").read_bytes() == b"sentinel"
    assert sorted(p.name for p in out.iterdir()) == ["a_mask.png", "a_overlay.png"]
    assert main(["segment", str(inputs / "a.png"), "--out", str(out), "-q", "--overwrite"]) == 0
    assert (out / "a_mask.png").read_bytes()[:4] == b"\x89PNG"


def test_segment_same_stem_is_refused(inputs, tmp_path, smears, capsys):
    other = tmp_path / "other"
    other.mkdir()
    Image.fromarray(smears[1].image).save(other / "a.jpg")
    out = tmp_path / "out"
    assert main(["segment", str(inputs / "a.png"), str(other / "a.jpg"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "same stem" in err and "a.png" in err and "a.jpg" in err
    assert not out.exists()
    # the same file twice is not a clash
    assert (
        main(["segment", str(inputs / "a.png"), str(inputs / "a.png"), "--out", str(out), "-q"])
        == 0
    )


def test_segment_recursive_mirrors_subfolders_and_skips_own_outputs(tmp_path, smears):
    root = tmp_path / "tree"
    for sub in ("L1", "L2"):
        (root / sub).mkdir(parents=True)
        Image.fromarray(smears[0].image).save(root / sub / "cell.png")
    assert main(["segment", str(root), "--out", str(root), "-q"]) == 2  # no images at top level
    assert main(["segment", str(root), "--out", str(root / "seg"), "-r", "-q"]) == 0
    assert (root / "seg" / "L1" / "cell_mask.png").exists()
    assert (root / "seg" / "L2" / "cell_overlay.png").exists()
    # a second run over the same tree does not take its own outputs as inputs
    assert main(["segment", str(root), "--out", str(root / "seg"), "-r", "-q", "--overwrite"]) == 0
    assert not list((root / "seg").rglob("*_mask_mask.png"))


def test_segment_missing_input_and_model_errors(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            ["segment", str(inputs / "a.png"), str(tmp_path / "nope.png"), "--out", str(out), "-q"]
        )
        == 1
    )
    assert "nope.png: no such file" in capsys.readouterr().err
    assert (out / "a_mask.png").exists()
    assert main(["segment", str(inputs / "a.png"), "--out", str(out), "--model", "m.pt"]) == 2
    assert "takes no model" in capsys.readouterr().err
    assert main(["segment", str(inputs / "a.png"), "--out", str(out), "--method", "nope"]) == 2


@pytest.fixture
def paired_root(tmp_path, smears):
    root = tmp_path / "paired"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, s in enumerate(smears):
        Image.fromarray(s.image).save(root / "images" / f"s{i}.png")
        Image.fromarray(s.nucleus.astype(np.uint8) * 255).save(root / "masks" / f"s{i}.png")
    return root


def test_evaluate_paired_writes_json(paired_root, tmp_path, capsys):
    js = tmp_path / "res" / "hm.json"
    argv = ["evaluate", "--dataset", "paired", "--root", str(paired_root), "--json", str(js), "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "iou" in out and "mean" in out and "images/s" in out
    record = json.loads(js.read_text())
    assert REQUIRED_JSON_KEYS <= set(record)
    assert record["dataset"] == "paired" and record["method"] == "handcrafted"
    assert record["n_images"] == 3 and len(record["per_image"]) == 3
    assert all(f"{m}_std" in record for m in SEGMENTATION_METRICS)
    assert 0.5 < record["iou"] <= 1.0
    before = js.read_text()
    assert main(argv) == 2  # exists: refused before running
    assert "--overwrite" in capsys.readouterr().err and js.read_text() == before
    assert main([*argv, "--overwrite", "--limit", "2"]) == 0
    assert json.loads(js.read_text())["n_images"] == 2


def test_evaluate_repairs_stray_mask_pixels_and_reports_them(tmp_path, smears, capsys):
    """CellaVision-like masks with a few stray grey values: every image is evaluated."""
    root = tmp_path / "cv"
    for i, s in enumerate(smears):
        (root / "Dataset 2").mkdir(parents=True, exist_ok=True)
        Image.fromarray(s.image).save(root / "Dataset 2" / f"{i + 1:03d}.bmp")
        m = np.where(s.nucleus, 255, np.where(s.cytoplasm, 128, 0)).astype(np.uint8)
        if i != 1:
            m[0, :4] = [2, 11, 35, 50]
        Image.fromarray(m).save(root / "Dataset 2" / f"{i + 1:03d}.png")
    js = tmp_path / "cv.json"
    argv = ["evaluate", "--dataset", "cellavision", "--root", str(root), "--json", str(js), "-q"]
    with pytest.warns(UserWarning, match="stray pixel"):
        assert main(argv) == 0
    record = json.loads(js.read_text())
    assert record["n_images"] == 3 and record["n_failures"] == 0
    assert record["mask_repaired_images"] == 2 and record["mask_repaired_pixels"] == 8
    assert [r["mask_repaired"] for r in record["per_image"]] == [4, 0, 4]
    assert "masks repaired: 8 stray pixel(s) in 2 mask(s)" in capsys.readouterr().out


def test_evaluate_bad_dataset_is_one_line(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "jtsc", "--root", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err and "Traceback" not in err
    assert main(["evaluate", "--dataset", "nope", "--root", str(tmp_path)]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["evaluate", "--dataset", "all_idb2"]) == 2  # no root, and no download
    assert "root" in capsys.readouterr().err


@pytest.mark.shared
def test_evaluate_jtsc_limit(jtsc_root, tmp_path):
    js = tmp_path / "jtsc.json"
    assert (
        main(
            [
                "evaluate",
                "--dataset",
                "jtsc",
                "--root",
                str(jtsc_root),
                "--limit",
                "10",
                "--json",
                str(js),
                "-q",
            ]
        )
        == 0
    )
    record = json.loads(js.read_text())
    assert record["n_images"] == 10 and record["iou"] > 0.7


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["segment", "--help"],
        ["evaluate", "--help"],
        ["datasets", "--help"],
        ["--version"],
    ],
)
def test_help_exits_0(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().out.strip()


def test_datasets_and_no_command(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "jtsc" in out and "all_idb2" in out and "paired" in out
    assert main([]) == 2


def test_console_entry_point(inputs, tmp_path):
    """The installed script (or ``python -m leukolib.cli``) runs end to end."""
    exe = Path(sys.executable).with_name("leukolib")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "leukolib.cli"]
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [*cmd, "segment", str(inputs), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "x.png" in proc.stderr and "empty.jpg" in proc.stderr
    assert (out / "c_mask.png").exists()
    ver = subprocess.run(
        [sys.executable, "-m", "leukolib.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ver.returncode == 0 and ver.stdout.startswith("leukolib ")
    mask = cv2.imread(str(out / "c_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and mask.dtype == np.uint8
