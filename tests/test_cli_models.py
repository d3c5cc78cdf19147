"""The CLI with trained models: train-unet, then segment and evaluate with unet and ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from leukolib.cli import main
from leukolib.data import load_dataset


@pytest.fixture(scope="module")
def paired_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paired")
    ds = load_dataset("synthetic", n_images=8, size=96, seed=5)
    for s in ds:
        (root / "images").mkdir(exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        Image.fromarray(s.image).save(root / "images" / f"{s.id}.png")
        Image.fromarray(s.nucleus.astype(np.uint8) * 255).save(root / "masks" / f"{s.id}.png")
    return root


@pytest.fixture(scope="module")
def run_dir(paired_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "unet"
    argv = ["train-unet", "--dataset", "paired", "--root", str(paired_root), "--out", str(out),
            "--profile", "smoke", "--quiet"]
    assert main(argv) == 0
    assert (out / "run.json").exists() and (out / "fold_00.pt").exists()
    assert main(argv) == 0  # resumes: nothing to do
    return out


@pytest.mark.parametrize("method", ["unet", "ensemble"])
def test_evaluate_on_the_training_set_is_out_of_fold(paired_root, run_dir, tmp_path, method):
    out = tmp_path / f"{method}.json"
    argv = ["evaluate", "--dataset", "paired", "--root", str(paired_root), "--method", method,
            "--model", str(run_dir), "--json", str(out), "--quiet"]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert record["model_mode"] == "out-of-fold"
    assert record["n_images"] == 8 and 0.0 <= record["iou"] <= 1.0
    if method == "ensemble":  # one name, one rule: the library's ensemble, named in the output
        from leukolib.segmentation.ensemble import EnsembleParams
        from leukolib.segmentation.fold_fusion import FOLD_FUSION, PER_FOLD_LABEL

        assert record["fusion"] == EnsembleParams().fusion
        # on its own images, each fold's rule where the library takes them (and which)
        assert record["ensemble"] == EnsembleParams().label() + (PER_FOLD_LABEL if FOLD_FUSION
                                                                 else "")
        if FOLD_FUSION:
            folds = record["fold_rules"]["folds"]
            assert len(folds) == 2 and all(f["chosen"] in f["val_iou"] for f in folds)


def test_evaluate_elsewhere_uses_the_fold_average(run_dir, tmp_path):
    out = tmp_path / "e.json"
    argv = ["evaluate", "--dataset", "synthetic", "--method", "ensemble", "--fusion", "or",
            "--model", str(run_dir), "--limit", "3", "--json", str(out), "--quiet"]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert record["model_mode"] == "fold-average" and record["fusion"] == "or"


def test_segment_new_images_with_the_unet(paired_root, run_dir, tmp_path):
    argv = ["segment", str(paired_root / "images"), "--method", "unet", "--model", str(run_dir),
            "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    assert len(list((tmp_path / "out").glob("*_mask.png"))) == 8


def test_segment_with_a_set_gate_keeps_the_handcrafted_masks_out_of_domain(paired_root, run_dir,
                                                                          tmp_path, capsys):
    from leukolib.data.io import read_image
    from leukolib.segmentation.handcrafted import segment_nucleus

    images = sorted((paired_root / "images").glob("*.png"))

    def masks(gate: float) -> list[np.ndarray]:
        out = tmp_path / f"gate{gate:g}"
        argv = ["segment", str(paired_root / "images"), "--method", "ensemble", "--model",
                str(run_dir), "--gate", f"{gate:g}", "--out", str(out), "--quiet"]
        assert main(argv) == 0
        return [np.asarray(Image.open(out / f"{p.stem}_mask.png")) > 0 for p in images]

    never = masks(0)
    assert "set gate" not in capsys.readouterr().err  # no gate, nothing measured
    gated = masks(1e-9)  # any U-Net is less sure than that: out of its domain
    err = capsys.readouterr().err
    assert "(gate 1e-09 bit), out of its domain" in err
    assert all(np.array_equal(m, segment_nucleus(read_image(p)))
               for m, p in zip(gated, images, strict=True))
    kept = masks(0.999)  # no U-Net answers 0.5 everywhere: in its domain, as without a gate
    assert "(gate 0.999 bit), in its domain" in capsys.readouterr().err
    assert all(np.array_equal(a, b) for a, b in zip(kept, never, strict=True))
    argv = ["segment", str(images[0]), "--method", "unet", "--model", str(run_dir), "--gate",
            "0.3", "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "--gate is for --method ensemble" in capsys.readouterr().err


def test_evaluate_with_mirrored_views(paired_root, run_dir, tmp_path, capsys):
    """``--tta`` reaches the U-Net (recorded), and is refused for a method without one."""
    out = {}
    for tta in ("none", "flips"):
        out[tta] = tmp_path / f"{tta}.json"
        argv = ["evaluate", "--dataset", "paired", "--root", str(paired_root), "--method",
                "unet", "--model", str(run_dir), "--tta", tta, "--json", str(out[tta]),
                "--quiet"]
        assert main(argv) == 0
    one, four = (json.loads(out[k].read_text()) for k in ("none", "flips"))
    assert (one["tta"], four["tta"]) == ("none", "flips")
    # four views average to another map: some image's scores move
    assert [r["iou"] for r in one["per_image"]] != [r["iou"] for r in four["per_image"]]
    argv = ["segment", str(paired_root / "images"), "--tta", "flips", "--out",
            str(tmp_path / "hm")]
    assert main(argv) == 2
    assert "--tta is for --method unet or ensemble" in capsys.readouterr().err


def test_model_errors_are_usage_errors(tmp_path, capsys):
    assert main(["evaluate", "--dataset", "synthetic", "--method", "unet", "--quiet"]) == 2
    assert "needs a trained model" in capsys.readouterr().err
    argv = ["evaluate", "--dataset", "synthetic", "--method", "unet", "--model", str(tmp_path)]
    assert main(argv) == 2
    assert "no run.json" in capsys.readouterr().err
    argv = ["evaluate", "--dataset", "synthetic", "--fusion", "or"]
    assert main(argv) == 2
    assert "--fusion is for --method ensemble" in capsys.readouterr().err
